//! Properties of allowances and periods that hold for every input.
#![allow(clippy::unwrap_used, missing_docs)]

use agentvista_quota::{Allowance, Period, Plan};
use chrono::{DateTime, Datelike, TimeDelta, Utc};
use proptest::prelude::*;

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 1970 to 2200, to the second.
    (0i64..7_258_118_400).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

proptest! {
    #[test]
    fn spend_cap_buys_exactly_the_events_it_can_pay_for(
        included in 0u64..10_000_000,
        price in 1u64..10_000,
        cap in 0u64..100_000_000,
    ) {
        let plan = Plan { monthly_events: included, overage_cents_per_1000_events: price, retention_days: 30 };
        let limit = Allowance::new(&plan, Some(cap)).limit().unwrap();
        let bought = u128::from(limit - included);
        // The bought events cost at most the cap, and one more event would cost more.
        prop_assert!(bought * u128::from(price) <= u128::from(cap) * 1000);
        prop_assert!((bought + 1) * u128::from(price) > u128::from(cap) * 1000);
    }

    #[test]
    fn a_bigger_cap_never_allows_fewer_events(
        price in 1u64..10_000, cap in 0u64..1_000_000, more in 0u64..1_000_000,
    ) {
        let plan = Plan { monthly_events: 100, overage_cents_per_1000_events: price, retention_days: 30 };
        let small = Allowance::new(&plan, Some(cap)).limit().unwrap();
        let big = Allowance::new(&plan, Some(cap + more)).limit().unwrap();
        prop_assert!(big >= small);
    }

    #[test]
    fn check_admits_exactly_what_fits(limit in 0u64..1_000, used in 0u64..1_000, n in 0u64..1_000) {
        let period = Period::containing(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let fits = Allowance::Limited(limit).check(used, n, &period).is_ok();
        prop_assert_eq!(fits, used + n <= limit);
    }

    #[test]
    fn every_instant_lies_in_its_period(now in instant()) {
        let period = Period::containing(now);
        prop_assert!(period.start() <= now && now < period.end());
        prop_assert_eq!(period.start().day(), 1);
        prop_assert_eq!(period.end().day(), 1);
        prop_assert_eq!(period.next().start(), period.end());
        let days = (period.end() - period.start()).num_days();
        prop_assert!((28..=31).contains(&days));
        let wait = period.seconds_until_reset(now);
        prop_assert!(wait >= 1);
        let wait = TimeDelta::seconds(i64::try_from(wait).unwrap());
        prop_assert!(now + wait >= period.end() && now + wait - TimeDelta::seconds(1) < period.end());
    }
}
