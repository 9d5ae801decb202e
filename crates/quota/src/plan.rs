//! [`Plan`]: a billing plan's quota terms.

use serde::{Deserialize, Serialize};

/// What a plan includes each month and what it charges beyond that.
///
/// ```
/// use agentvista_quota::Plan;
///
/// let free = Plan { monthly_events: 50_000, overage_cents_per_1000_events: 0 };
/// assert!(!free.has_overage()); // a hard limit
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plan {
    /// Events included in every calendar month.
    pub monthly_events: u64,
    /// Price of each further 1,000 events, in cents; 0 makes `monthly_events` a hard limit.
    pub overage_cents_per_1000_events: u64,
}

impl Plan {
    /// Whether events beyond `monthly_events` are sold rather than refused.
    #[must_use]
    pub const fn has_overage(&self) -> bool {
        self.overage_cents_per_1000_events > 0
    }
}
