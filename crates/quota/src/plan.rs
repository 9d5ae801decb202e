//! [`Plan`]: a billing plan's quota terms, and the plans a configuration starts from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a plan includes each month and what it charges beyond that.
///
/// ```
/// use agentvista_quota::Plan;
///
/// let free = Plan { monthly_events: 50_000, overage_cents_per_1000_events: 0, retention_days: 30 };
/// assert!(!free.has_overage()); // a hard limit
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plan {
    /// Events included in every calendar month.
    pub monthly_events: u64,
    /// Price of each further 1,000 events, in cents; 0 makes `monthly_events` a hard limit.
    pub overage_cents_per_1000_events: u64,
    /// Days a stored event is kept after it was received; older ones are deleted (their
    /// counts stay). At least 1.
    pub retention_days: u32,
}

impl Plan {
    /// The contract's `free` plan: 50,000 events a month, a hard limit, kept 30 days.
    pub const FREE: Plan = Plan {
        monthly_events: 50_000,
        overage_cents_per_1000_events: 0,
        retention_days: 30,
    };

    /// The contract's `pro` plan: 1,000,000 events a month, then 50¢ per 1,000 more, kept 90
    /// days.
    pub const PRO: Plan = Plan {
        monthly_events: 1_000_000,
        overage_cents_per_1000_events: 50,
        retention_days: 90,
    };

    /// The plans a configuration starts from, by name: [`Plan::FREE`] and [`Plan::PRO`]. The
    /// one place they are written; the server's settings and `HttpConfig::default` read them.
    ///
    /// ```
    /// use agentvista_quota::Plan;
    /// assert_eq!(Plan::defaults()["free"], Plan::FREE);
    /// ```
    #[must_use]
    pub fn defaults() -> BTreeMap<String, Plan> {
        BTreeMap::from([
            ("free".to_owned(), Plan::FREE),
            ("pro".to_owned(), Plan::PRO),
        ])
    }

    /// How long its events are kept: [`Plan::retention_days`] days, at least one.
    ///
    /// ```
    /// use agentvista_quota::Plan;
    /// assert_eq!(Plan::PRO.retention(), chrono::TimeDelta::days(90));
    /// ```
    #[must_use]
    pub fn retention(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::days(i64::from(self.retention_days.max(1)))
    }

    /// Whether events beyond `monthly_events` are sold rather than refused.
    #[must_use]
    pub const fn has_overage(&self) -> bool {
        self.overage_cents_per_1000_events > 0
    }
}
