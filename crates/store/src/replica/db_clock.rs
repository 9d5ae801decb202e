//! The database's clock as a replica estimates it between reads: expiry is judged on one
//! clock, the database's, so that a replica whose wall clock is behind does not accept a key
//! past its expiry (or a rolled key past its grace).
//!
//! Each renewal reads the database's time, at some instant between the moment the statement
//! was sent and the moment its answer came back. Anchoring that time at the moment it was sent
//! gives an estimate that is never behind the database: it runs ahead by at most the round
//! trip (so a key is refused up to one round trip early, never late), and it is re-anchored
//! every renewal (a third of a lease), so drift between the two clocks cannot build up.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// No reading yet.
const UNSET: i64 = i64::MIN;

/// How far below the database's time a reading may be: it comes in whole milliseconds, cut
/// rather than rounded, and SQLite's passes through a floating-point day count on the way.
/// The estimate adds it, erring early.
const READING_MARGIN_MICROS: i64 = 2_000;

/// The offset between the database's clock and the boot clock, in microseconds.
#[derive(Debug)]
pub(super) struct DbClock {
    offset_micros: AtomicI64,
}

impl DbClock {
    pub(super) fn new() -> Self {
        DbClock {
            offset_micros: AtomicI64::new(UNSET),
        }
    }

    /// The database read `db_millis` (milliseconds since the epoch) in a statement sent at
    /// `sent` on the boot clock (nanoseconds).
    pub(super) fn read(&self, db_millis: i64, sent: u64) {
        let sent_micros = i64::try_from(sent / 1_000).unwrap_or(i64::MAX);
        let offset = db_millis
            .saturating_mul(1_000)
            .saturating_add(READING_MARGIN_MICROS)
            .saturating_sub(sent_micros);
        self.offset_micros.store(offset, Ordering::Relaxed);
    }

    /// The database's time at `now` on the boot clock (nanoseconds), estimated never behind
    /// it; `None` before the first reading.
    pub(super) fn at(&self, now: u64) -> Option<DateTime<Utc>> {
        let offset = self.offset_micros.load(Ordering::Relaxed);
        if offset == UNSET {
            return None;
        }
        let now_micros = i64::try_from(now / 1_000).unwrap_or(i64::MAX);
        DateTime::from_timestamp_micros(offset.saturating_add(now_micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn the_estimate_follows_the_database_not_the_wall_clock_and_is_never_behind() {
        let clock = DbClock::new();
        assert_eq!(clock.at(5 * SECOND), None, "no reading, no estimate");
        // The database says 12:00:00.000 in a statement sent at boot second 100 and answered
        // 40 ms later; this host's wall clock, minutes behind, plays no part.
        let noon = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .to_utc();
        clock.read(noon.timestamp_millis(), 100 * SECOND);
        let answered = 100 * SECOND + 40_000_000;
        // The database read its clock somewhere in those 40 ms: at the answer its time is
        // at most noon + 40 ms (and the reading's last millisecond, cut: 2 ms of margin), and
        // the estimate says exactly that.
        let ms = chrono::TimeDelta::milliseconds;
        assert_eq!(clock.at(answered), Some(noon + ms(40 + 2)));
        // Ten seconds later on the boot clock, ten seconds later on the database's.
        assert_eq!(
            clock.at(answered + 10 * SECOND),
            Some(noon + ms(10_040 + 2))
        );
        // A later reading replaces the anchor.
        clock.read(noon.timestamp_millis() + 60_000, 200 * SECOND);
        assert_eq!(clock.at(200 * SECOND), Some(noon + ms(60_000 + 2)));
    }
}
