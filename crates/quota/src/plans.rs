//! [`Plans`]: the configured plans by name, and what they make of an account's plan name,
//! spend cap and usage: its [`Allowance`] and its [`UsageSummary`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use std::sync::Arc;

use crate::{Allowance, Period, Plan};

/// The configured plans by name: what turns an account's plan name and spend cap into its
/// [`Allowance`]. Cheap to clone (the map is shared).
///
/// ```
/// use agentvista_quota::{Allowance, Plan, Plans, UnknownPlan};
///
/// let plans = Plans::from_iter([
///     ("free".to_owned(), Plan { monthly_events: 50_000, overage_cents_per_1000_events: 0, retention_days: 30 }),
///     ("pro".to_owned(), Plan { monthly_events: 1_000_000, overage_cents_per_1000_events: 50, retention_days: 30 }),
/// ]);
/// assert_eq!(plans.allowance("free", Some(500)), Ok(Allowance::Limited(50_000)));
/// assert_eq!(plans.allowance("pro", Some(1_000)), Ok(Allowance::Limited(1_020_000)));
/// assert_eq!(
///     plans.allowance("gold", None),
///     Err(UnknownPlan { plan: "gold".to_owned() })
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plans {
    by_name: Arc<BTreeMap<String, Plan>>,
}

/// An account names a plan that the configuration does not define: an operator's error
/// (HTTP 500), never the client's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("no plan named {plan:?} is configured")]
pub struct UnknownPlan {
    /// The plan name the account carries.
    pub plan: String,
}

impl Plans {
    /// The plans of `by_name`.
    #[must_use]
    pub fn new(by_name: BTreeMap<String, Plan>) -> Self {
        Plans {
            by_name: Arc::new(by_name),
        }
    }

    /// The plan called `name`, if configured.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Plan> {
        self.by_name.get(name)
    }

    /// Whether a plan called `name` is configured.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The configured plan names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Each plan's retention cutoff at `now`: its events received before it are past retention.
    ///
    /// ```
    /// use agentvista_quota::{Plan, Plans};
    /// use chrono::{TimeZone, Utc};
    ///
    /// let plans = Plans::new(Plan::defaults());
    /// let now = Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap();
    /// let cutoffs: Vec<_> = plans.retention_cutoffs(now).collect();
    /// assert_eq!(cutoffs[0], ("free", Utc.with_ymd_and_hms(2026, 10, 29, 0, 0, 0).unwrap()));
    /// assert_eq!(cutoffs[1], ("pro", Utc.with_ymd_and_hms(2026, 8, 30, 0, 0, 0).unwrap()));
    /// ```
    pub fn retention_cutoffs(
        &self,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (&str, DateTime<Utc>)> {
        self.by_name
            .iter()
            .map(move |(name, plan)| (name.as_str(), now - plan.retention()))
    }

    /// The allowance of an account on plan `plan` under `spend_cap_cents` (see
    /// [`Allowance::new`]).
    ///
    /// # Errors
    /// [`UnknownPlan`] when no plan of that name is configured.
    pub fn allowance(
        &self,
        plan: &str,
        spend_cap_cents: Option<u64>,
    ) -> Result<Allowance, UnknownPlan> {
        self.plan(plan).map(|p| Allowance::new(&p, spend_cap_cents))
    }

    /// The plan called `name`, or why there is none.
    fn plan(&self, name: &str) -> Result<Plan, UnknownPlan> {
        self.get(name).copied().ok_or_else(|| UnknownPlan {
            plan: name.to_owned(),
        })
    }

    /// An account's usage this period as every view shows it, from its plan name, spend cap
    /// and the events counted so far: the API's usage object and the dashboard's billing page
    /// render this one summary, with the allowance ingestion enforces.
    ///
    /// ```
    /// use agentvista_quota::{Period, Plan, Plans};
    /// use chrono::{TimeZone, Utc};
    ///
    /// let plans = Plans::new(Plan::defaults());
    /// let period = Period::containing(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());
    /// let usage = plans.usage("pro", Some(1_000), 1_200, period).unwrap();
    /// assert_eq!(usage.limit, Some(1_020_000)); // 1M included + $10 of overage
    /// assert!(plans.usage("gold", None, 0, period).is_err());
    /// ```
    ///
    /// # Errors
    /// [`UnknownPlan`] when no plan of that name is configured (an operator's error, as for
    /// ingestion).
    pub fn usage(
        &self,
        plan: &str,
        spend_cap_cents: Option<u64>,
        used: u64,
        period: Period,
    ) -> Result<UsageSummary, UnknownPlan> {
        let terms = self.plan(plan)?;
        Ok(UsageSummary {
            plan: plan.to_owned(),
            terms,
            spend_cap_cents,
            period,
            used,
            limit: Allowance::new(&terms, spend_cap_cents).limit(),
        })
    }
}

/// An account's usage in a period, against its plan: see [`Plans::usage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageSummary {
    /// The plan's name.
    pub plan: String,
    /// What the plan includes and charges.
    pub terms: Plan,
    /// The account's spend cap, if any.
    pub spend_cap_cents: Option<u64>,
    /// The period counted.
    pub period: Period,
    /// Events counted in it so far.
    pub used: u64,
    /// Most events the period allows; `None` where plan and cap set no limit.
    pub limit: Option<u64>,
}

impl From<BTreeMap<String, Plan>> for Plans {
    fn from(by_name: BTreeMap<String, Plan>) -> Self {
        Plans::new(by_name)
    }
}

impl FromIterator<(String, Plan)> for Plans {
    fn from_iter<I: IntoIterator<Item = (String, Plan)>>(plans: I) -> Self {
        Plans::new(plans.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> Plans {
        Plans::from_iter([
            (
                "free".to_owned(),
                Plan {
                    monthly_events: 25,
                    overage_cents_per_1000_events: 0,
                    retention_days: 30,
                },
            ),
            (
                "pro".to_owned(),
                Plan {
                    monthly_events: 1_000,
                    overage_cents_per_1000_events: 50,
                    retention_days: 30,
                },
            ),
        ])
    }

    #[test]
    fn the_allowance_follows_the_named_plan_and_the_cap() {
        let plans = plans();
        assert_eq!(plans.allowance("free", None), Ok(Allowance::Limited(25)));
        assert_eq!(
            plans.allowance("free", Some(10)),
            Ok(Allowance::Limited(25))
        );
        assert_eq!(plans.allowance("pro", None), Ok(Allowance::Unlimited));
        assert_eq!(
            plans.allowance("pro", Some(100)),
            Ok(Allowance::Limited(3_000))
        );
    }

    #[test]
    fn an_unknown_plan_is_named_in_the_error() {
        let plans = plans();
        let err = plans.allowance("Free", None).unwrap_err();
        assert_eq!(
            err,
            UnknownPlan {
                plan: "Free".to_owned()
            }
        );
        assert_eq!(err.to_string(), r#"no plan named "Free" is configured"#);
        assert_eq!(
            Plans::default().allowance("free", None),
            Err(err_for("free"))
        );
    }

    fn err_for(plan: &str) -> UnknownPlan {
        UnknownPlan {
            plan: plan.to_owned(),
        }
    }

    #[test]
    fn lookups_and_names() {
        let plans = plans();
        assert!(plans.contains("pro") && !plans.contains("gold"));
        assert_eq!(plans.get("free").map(|p| p.monthly_events), Some(25));
        assert_eq!(plans.names().collect::<Vec<_>>(), ["free", "pro"]);
        let clone = plans.clone();
        assert_eq!(clone, plans);
    }
}
