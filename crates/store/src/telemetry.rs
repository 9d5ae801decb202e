//! The metrics this crate records, through the `metrics` facade: nothing is recorded until the
//! embedding program installs a recorder (the `agentvista` binary does when `metrics.bind` is
//! set), and then [`describe_metrics`] gives each its unit and help text.

use metrics::{Unit, describe_counter, describe_histogram};

/// Describes the store's metrics to the installed recorder (call once, after installing it).
pub fn describe_metrics() {
    describe_counter!(
        "agentvista_events_accepted_total",
        Unit::Count,
        "Events stored and counted against an account's monthly allowance."
    );
    describe_counter!(
        "agentvista_events_duplicated_total",
        Unit::Count,
        "Events skipped as duplicates of an event id the account has (stored once, counted once)."
    );
    describe_counter!(
        "agentvista_events_deleted_by_retention_total",
        Unit::Count,
        "Events deleted because they were past their plan's retention (their counts stay)."
    );
    describe_counter!(
        "agentvista_quota_refusals_total",
        Unit::Count,
        "Requests refused because their events do not fit the monthly allowance (429)."
    );
    describe_counter!(
        "agentvista_db_errors_total",
        Unit::Count,
        "Database errors by kind: unavailable (503, retried by clients), invalid_input (400), \
         other (500)."
    );
    describe_histogram!(
        "agentvista_group_commit_requests",
        Unit::Count,
        "Requests committed together in one SQLite transaction (group commit)."
    );
    describe_counter!(
        "agentvista_key_cache_hits_total",
        Unit::Count,
        "Key verifications answered from this replica's memory (verified or known unknown)."
    );
    describe_counter!(
        "agentvista_key_cache_misses_total",
        Unit::Count,
        "Key verifications that read the database (not in memory, or the lease lapsed)."
    );
    describe_histogram!(
        "agentvista_revocation_barrier_seconds",
        Unit::Seconds,
        "From a revocation's commit until every live replica acknowledged it, or a lease."
    );
    describe_counter!(
        "agentvista_revocation_barrier_timeouts_total",
        Unit::Count,
        "Revocations answered at the lease bound, with a replica not acknowledging."
    );
}
