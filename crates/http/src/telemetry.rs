//! The metrics this crate records, through the `metrics` facade (see `agentvista-store`'s
//! `describe_metrics` for how they reach an exporter).

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Describes the HTTP layer's metrics to the installed recorder, and starts recording the
/// per-request ones (call once, after installing it: until then [`crate::request_log`] builds
/// no metric labels, which would cost every request an allocation or two for nothing).
pub fn describe_metrics() {
    crate::log::RECORDING.store(true, std::sync::atomic::Ordering::Relaxed);
    describe_counter!(
        "agentvista_password_checks_total",
        Unit::Count,
        "Passwords checked (login, first-run setup): one argon2 run each, known e-mail or not."
    );
    describe_counter!(
        "agentvista_http_requests_total",
        Unit::Count,
        "Requests answered, by route template, method and status."
    );
    describe_histogram!(
        "agentvista_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a request, by route template and method."
    );
    describe_counter!(
        "agentvista_auth_refusals_total",
        Unit::Count,
        "Requests refused authentication or authorisation, by reason: missing, malformed, \
         unknown, revoked, expired, scope."
    );
    describe_gauge!(
        "agentvista_memory_budget_in_use_bytes",
        Unit::Bytes,
        "Bytes of the memory budget held by requests in flight (limits.memory_budget_bytes)."
    );
    describe_counter!(
        "agentvista_overloaded_total",
        Unit::Count,
        "Requests answered 503 overloaded because the memory budget, or their account's \
         share of it, stayed taken, by endpoint."
    );
}
