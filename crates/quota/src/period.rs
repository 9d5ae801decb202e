//! [`Period`]: the calendar month in UTC in which events are counted.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};

/// A calendar month in UTC, the unit of usage accounting.
///
/// ```
/// use agentvista_quota::Period;
/// use chrono::{TimeZone, Utc};
///
/// let now = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 30).unwrap();
/// let period = Period::containing(now);
/// assert_eq!(period.start(), Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
/// assert_eq!(period.resets_at(), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
/// assert_eq!(period.seconds_until_reset(now), 30);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    first_day: NaiveDate,
}

impl Period {
    /// The month that contains `now`.
    #[must_use]
    pub fn containing(now: DateTime<Utc>) -> Self {
        let day = now.date_naive();
        Period {
            first_day: day - TimeDelta::days(i64::from(day.day0())),
        }
    }

    /// The period that starts on `first_day`, if it is the first day of a month.
    #[must_use]
    pub fn starting_on(first_day: NaiveDate) -> Option<Self> {
        (first_day.day() == 1).then_some(Period { first_day })
    }

    /// The first day of the month, the key under which usage is stored.
    #[must_use]
    pub const fn first_day(&self) -> NaiveDate {
        self.first_day
    }

    /// The period's first instant, midnight UTC on the first of the month.
    #[must_use]
    pub fn start(&self) -> DateTime<Utc> {
        self.first_day.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// The instant the period ends and the next begins (exclusive end).
    #[must_use]
    pub fn end(&self) -> DateTime<Utc> {
        self.next().start()
    }

    /// When usage starts again from zero: the same instant as [`Period::end`].
    #[must_use]
    pub fn resets_at(&self) -> DateTime<Utc> {
        self.end()
    }

    /// The following month.
    #[must_use]
    pub fn next(&self) -> Self {
        Period {
            // Only fails past chrono's last representable year; saturate rather than panic.
            first_day: self
                .first_day
                .checked_add_months(Months::new(1))
                .unwrap_or(NaiveDate::MAX),
        }
    }

    /// Whole seconds from `now` until the reset, rounded up so a client that waits this long
    /// is never early; at least 1 while `now` is inside the period, 0 once it is over.
    #[must_use]
    pub fn seconds_until_reset(&self, now: DateTime<Utc>) -> u64 {
        let left = self.resets_at() - now;
        if left <= TimeDelta::zero() {
            return 0;
        }
        let whole = left.num_seconds();
        let partial = left.subsec_nanos() > 0;
        u64::try_from(whole).unwrap_or(0) + u64::from(partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
    }

    #[test]
    fn december_rolls_over_into_january_of_the_next_year() {
        let period = Period::containing(at(2026, 12, 15, 8, 0, 0));
        assert_eq!(period.start(), at(2026, 12, 1, 0, 0, 0));
        assert_eq!(period.end(), at(2027, 1, 1, 0, 0, 0));
        assert_eq!(period.next(), Period::containing(at(2027, 1, 1, 0, 0, 0)));
    }

    #[test]
    fn february_has_29_days_in_leap_years_only() {
        let leap = Period::containing(at(2028, 2, 29, 23, 59, 59));
        assert_eq!(leap.end(), at(2028, 3, 1, 0, 0, 0));
        assert_eq!(
            leap.seconds_until_reset(at(2028, 2, 1, 0, 0, 0)),
            29 * 86_400
        );
        let plain = Period::containing(at(2027, 2, 10, 0, 0, 0));
        assert_eq!(
            plain.seconds_until_reset(at(2027, 2, 1, 0, 0, 0)),
            28 * 86_400
        );
        let century = Period::containing(at(2100, 2, 1, 0, 0, 0));
        assert_eq!(century.end(), at(2100, 3, 1, 0, 0, 0));
    }

    #[test]
    fn the_first_and_last_instants_belong_to_their_month() {
        assert_eq!(
            Period::containing(at(2026, 11, 1, 0, 0, 0)).start(),
            at(2026, 11, 1, 0, 0, 0)
        );
        let last = at(2026, 11, 30, 23, 59, 59) + TimeDelta::nanoseconds(999_999_999);
        assert_eq!(Period::containing(last).end(), at(2026, 12, 1, 0, 0, 0));
    }

    #[test]
    fn seconds_until_reset_round_up_and_stop_at_zero() {
        let period = Period::containing(at(2026, 11, 27, 0, 0, 0));
        let end = period.end();
        assert_eq!(
            period.seconds_until_reset(end - TimeDelta::milliseconds(1)),
            1
        );
        assert_eq!(period.seconds_until_reset(end - TimeDelta::seconds(1)), 1);
        assert_eq!(
            period.seconds_until_reset(end - TimeDelta::milliseconds(1_001)),
            2
        );
        assert_eq!(period.seconds_until_reset(end), 0);
        assert_eq!(period.seconds_until_reset(end + TimeDelta::days(3)), 0);
    }

    #[test]
    fn only_first_days_start_periods() {
        let first = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert_eq!(Period::starting_on(first).unwrap().first_day(), first);
        assert!(Period::starting_on(NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()).is_none());
    }
}
