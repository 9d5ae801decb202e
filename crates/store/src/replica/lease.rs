//! The lease arithmetic (`docs/architecture.md`, rule 3), with time as a parameter: when a
//! replica may serve keys from memory, and when its lease has lapsed.
//!
//! A renewal is trusted from the instant *before* it was sent: the database granted the lease
//! at some point after that, so measuring from the earlier instant can only end it sooner. A
//! margin of a tenth of the lease absorbs clock-rate differences between this machine and the
//! database's.

/// A replica's lease as its follower keeps it. Times are nanoseconds on the boot clock.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    /// The lease the database grants (`auth.lease_ms`).
    length: u64,
    /// Taken off the end: at least a tenth of the lease.
    margin: u64,
    /// When the last successful renewal was sent.
    renewed_at: Option<u64>,
    /// Whether the round under way began while the previous lease still ran.
    round_in_lease: bool,
}

/// What the start of a round means for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoundStart {
    /// The previous lease still runs: the cache stays.
    InLease,
    /// The lease lapsed (or never was): stop serving, flush everything. Serving resumes only
    /// after a renewal by a round that itself began inside the re-acquired lease.
    Lapsed,
}

impl Lease {
    /// A lease of `length_nanos`, not yet held.
    pub(crate) fn new(length_nanos: u64) -> Self {
        Lease {
            length: length_nanos,
            margin: (length_nanos / 10).max(1),
            renewed_at: None,
            round_in_lease: false,
        }
    }

    /// Until when a renewal sent at `sent` lets the replica serve.
    pub(crate) fn deadline_after(&self, sent: u64) -> u64 {
        sent.saturating_add(self.length - self.margin)
    }

    /// A round starts at `now` (before its renewal is sent).
    pub(crate) fn begin(&mut self, now: u64) -> RoundStart {
        self.round_in_lease = self
            .renewed_at
            .is_some_and(|at| now < self.deadline_after(at));
        if self.round_in_lease {
            RoundStart::InLease
        } else {
            RoundStart::Lapsed
        }
    }

    /// The round that began at `sent` renewed the lease: the deadline until which the cache may
    /// serve, or `None` while the lease is only being re-acquired.
    pub(crate) fn renewed(&mut self, sent: u64) -> Option<u64> {
        self.renewed_at = Some(sent);
        self.round_in_lease.then(|| self.deadline_after(sent))
    }

    /// The replica's row was gone (removed as dead): whatever was granted is void.
    pub(crate) fn lost(&mut self) {
        self.renewed_at = None;
        self.round_in_lease = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const LEASE: u64 = 3_000 * MS;

    #[test]
    fn a_new_replica_serves_only_after_a_second_renewal() {
        let mut lease = Lease::new(LEASE);
        assert_eq!(lease.begin(0), RoundStart::Lapsed);
        assert_eq!(lease.renewed(0), None, "the first renewal only acquires");
        assert_eq!(lease.begin(5 * MS), RoundStart::InLease);
        assert_eq!(lease.renewed(5 * MS), Some(5 * MS + 2_700 * MS));
    }

    #[test]
    fn the_deadline_counts_from_before_the_renewal_was_sent_minus_a_tenth() {
        let mut lease = Lease::new(LEASE);
        lease.begin(0);
        lease.renewed(0);
        lease.begin(1_000 * MS);
        let deadline = lease.renewed(1_000 * MS).unwrap();
        assert_eq!(deadline, 1_000 * MS + LEASE - LEASE / 10);
        assert!(
            deadline < 1_000 * MS + LEASE,
            "never past what the database granted"
        );
    }

    #[test]
    fn a_round_that_starts_after_the_deadline_finds_the_lease_lapsed() {
        let mut lease = Lease::new(LEASE);
        lease.begin(0);
        lease.renewed(0);
        lease.begin(MS);
        let deadline = lease.renewed(MS).unwrap();
        assert_eq!(lease.begin(deadline - 1), RoundStart::InLease);
        assert_eq!(lease.begin(deadline), RoundStart::Lapsed);
        // The renewal of a lapsed round re-acquires, and does not serve yet...
        assert_eq!(lease.renewed(deadline), None);
        // ...the next round, inside the new lease, does.
        assert_eq!(lease.begin(deadline + MS), RoundStart::InLease);
        assert!(lease.renewed(deadline + MS).is_some());
    }

    #[test]
    fn failed_renewals_let_the_lease_run_out() {
        let mut lease = Lease::new(LEASE);
        lease.begin(0);
        lease.renewed(0);
        lease.begin(MS);
        lease.renewed(MS);
        // Rounds at lease/3 whose renewals fail (the database is away): nothing renews.
        assert_eq!(lease.begin(MS + LEASE / 3), RoundStart::InLease);
        assert_eq!(lease.begin(MS + 2 * LEASE / 3), RoundStart::InLease);
        assert_eq!(lease.begin(MS + LEASE), RoundStart::Lapsed);
    }

    #[test]
    fn a_lost_row_voids_the_lease() {
        let mut lease = Lease::new(LEASE);
        lease.begin(0);
        lease.renewed(0);
        lease.lost();
        assert_eq!(lease.begin(MS), RoundStart::Lapsed);
    }

    #[test]
    fn a_suspended_machine_wakes_up_lapsed() {
        // The boot clock counts the suspend: an hour later is past any deadline.
        let mut lease = Lease::new(LEASE);
        lease.begin(0);
        lease.renewed(0);
        lease.begin(MS);
        lease.renewed(MS);
        assert_eq!(lease.begin(3_600_000 * MS), RoundStart::Lapsed);
    }
}
