//! [`Allowance`]: how many events a period allows, and the refusal when a request does not fit.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Period, Plan};

/// The events an account may store in one period.
///
/// ```
/// use agentvista_quota::{Allowance, Plan};
///
/// let pro = Plan { monthly_events: 1_000_000, overage_cents_per_1000_events: 50, retention_days: 30 };
/// assert_eq!(Allowance::new(&pro, None), Allowance::Unlimited);
/// // $10 of overage at 50¢ per 1,000 events buys 20,000 more.
/// assert_eq!(Allowance::new(&pro, Some(1_000)), Allowance::Limited(1_020_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Allowance {
    /// At most this many events in the period.
    Limited(u64),
    /// No limit: a plan with overage and no spend cap.
    Unlimited,
}

/// A request whose events do not fit in what the period still allows.
///
/// Becomes HTTP 429 `monthly_event_limit_exceeded` with these fields and `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("the monthly event limit of {limit} is used up ({used} used); it resets at {resets_at}")]
pub struct QuotaExceeded {
    /// The period's allowance.
    pub limit: u64,
    /// Events counted before the refused request.
    pub used: u64,
    /// When the period ends and usage starts again from zero.
    pub resets_at: DateTime<Utc>,
}

impl Allowance {
    /// The allowance of `plan` under an optional spend cap, exactly as the contract says:
    ///
    /// - hard-limit plan (no overage price): `monthly_events`, whatever the cap;
    /// - overage without a cap: unlimited;
    /// - overage under a cap: `monthly_events + ⌊cap × 1000 / price⌋`.
    ///
    /// Integer arithmetic throughout; sums beyond `u64` saturate.
    #[must_use]
    pub fn new(plan: &Plan, spend_cap_cents: Option<u64>) -> Self {
        if !plan.has_overage() {
            return Allowance::Limited(plan.monthly_events);
        }
        match spend_cap_cents {
            None => Allowance::Unlimited,
            Some(cap) => {
                let bought =
                    u128::from(cap) * 1000 / u128::from(plan.overage_cents_per_1000_events);
                let bought = u64::try_from(bought).unwrap_or(u64::MAX);
                Allowance::Limited(plan.monthly_events.saturating_add(bought))
            }
        }
    }

    /// The limit, `None` when unlimited (the API's `events_limit: null`).
    #[must_use]
    pub const fn limit(&self) -> Option<u64> {
        match self {
            Allowance::Limited(limit) => Some(*limit),
            Allowance::Unlimited => None,
        }
    }

    /// Whether `additional` more events fit after `used`.
    #[must_use]
    pub const fn admits(&self, used: u64, additional: u64) -> bool {
        match self {
            Allowance::Limited(limit) => match used.checked_add(additional) {
                Some(total) => total <= *limit,
                None => false,
            },
            Allowance::Unlimited => true,
        }
    }

    /// Admits `additional` events after `used`, or says why not.
    ///
    /// # Errors
    /// [`QuotaExceeded`] when they do not fit; nothing of the request may then be counted.
    pub fn check(&self, used: u64, additional: u64, period: &Period) -> Result<(), QuotaExceeded> {
        match self {
            Allowance::Limited(limit) if !self.admits(used, additional) => Err(QuotaExceeded {
                limit: *limit,
                used,
                resets_at: period.resets_at(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const FREE: Plan = Plan {
        monthly_events: 50_000,
        overage_cents_per_1000_events: 0,
        retention_days: 30,
    };
    const PRO: Plan = Plan {
        monthly_events: 1_000_000,
        overage_cents_per_1000_events: 50,
        retention_days: 30,
    };

    fn period() -> Period {
        Period::containing(Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap())
    }

    #[test]
    fn a_hard_limit_plan_ignores_the_spend_cap() {
        assert_eq!(Allowance::new(&FREE, None), Allowance::Limited(50_000));
        assert_eq!(
            Allowance::new(&FREE, Some(10_000)),
            Allowance::Limited(50_000)
        );
        assert_eq!(Allowance::new(&FREE, Some(0)), Allowance::Limited(50_000));
    }

    #[test]
    fn overage_without_a_cap_is_unlimited() {
        let allowance = Allowance::new(&PRO, None);
        assert_eq!(allowance.limit(), None);
        assert!(allowance.admits(u64::MAX - 1, 1));
        assert!(allowance.check(u64::MAX, u64::MAX, &period()).is_ok());
    }

    #[test]
    fn a_cap_of_zero_leaves_only_the_included_events() {
        assert_eq!(Allowance::new(&PRO, Some(0)), Allowance::Limited(1_000_000));
    }

    #[test]
    fn a_cap_that_is_not_a_multiple_of_the_price_rounds_down() {
        // 99¢ at 50¢ per 1,000 buys 1,980 events, not 2,000.
        assert_eq!(
            Allowance::new(&PRO, Some(99)),
            Allowance::Limited(1_001_980)
        );
        // 1¢ at 3¢ per 1,000 buys 333 events.
        let odd = Plan {
            monthly_events: 10,
            overage_cents_per_1000_events: 3,
            retention_days: 30,
        };
        assert_eq!(Allowance::new(&odd, Some(1)), Allowance::Limited(343));
    }

    #[test]
    fn huge_caps_saturate_instead_of_overflowing() {
        let cheap = Plan {
            monthly_events: u64::MAX - 5,
            overage_cents_per_1000_events: 1,
            retention_days: 30,
        };
        assert_eq!(
            Allowance::new(&cheap, Some(u64::MAX)),
            Allowance::Limited(u64::MAX)
        );
    }

    #[test]
    fn exactly_at_the_limit_fits_and_one_over_does_not() {
        let allowance = Allowance::Limited(25);
        assert!(allowance.check(20, 5, &period()).is_ok());
        assert!(allowance.check(25, 0, &period()).is_ok());
        let refused = allowance.check(20, 6, &period()).unwrap_err();
        assert_eq!(
            refused,
            QuotaExceeded {
                limit: 25,
                used: 20,
                resets_at: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            }
        );
        assert!(!allowance.admits(25, 1));
        assert!(!allowance.admits(u64::MAX, 1));
    }

    #[test]
    fn quota_exceeded_serializes_the_contract_fields() {
        let refused = QuotaExceeded {
            limit: 25,
            used: 24,
            resets_at: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        };
        assert_eq!(
            serde_json::to_value(refused).unwrap(),
            serde_json::json!({"limit": 25, "used": 24, "resets_at": "2026-12-01T00:00:00Z"})
        );
    }
}
