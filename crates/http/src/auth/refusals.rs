//! Authentication refusals by reason, counted as `agentvista_auth_refusals_total{reason}`. The
//! answer tells a client only `invalid_api_key`, whatever the cause; the operator's metric
//! tells them apart.

/// Why a request was refused authentication or authorisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No credentials at all.
    Missing,
    /// Not a Bearer token, or not a key by format or checksum.
    Malformed,
    /// A well-formed key nobody issued.
    Unknown,
    /// A revoked key.
    Revoked,
    /// A key past its expiry.
    Expired,
    /// A valid key without the scope the endpoint needs.
    Scope,
}

impl Refusal {
    /// The reason as the metric's label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Unknown => "unknown",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
            Refusal::Scope => "scope",
        }
    }
}

/// Counts one refusal.
pub(crate) fn count(refusal: Refusal) {
    metrics::counter!("agentvista_auth_refusals_total", "reason" => refusal.as_str()).increment(1);
}
