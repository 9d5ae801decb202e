//! What recording a batch against an allowance answers. The recording itself is storage's
//! (`agentvista-store`, one SQL transaction): no port, as nothing else implements it and the
//! exactness lives in that transaction (`docs/architecture.md`).

use serde::Serialize;

use crate::{QuotaExceeded, UnknownPlan};

/// What recording did with a batch it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// Items stored and counted by this call.
    pub accepted: u64,
    /// Items skipped because the same id was already stored for the account.
    pub duplicates: u64,
    /// The period's usage after this call.
    pub used: u64,
}

/// Why a batch was not recorded. In every case nothing of it was stored or counted.
#[derive(Debug, thiserror::Error)]
pub enum RecordError<E> {
    /// The new items do not fit the allowance (HTTP 429).
    #[error(transparent)]
    Exceeded(QuotaExceeded),
    /// The account's plan is not among the configured plans (HTTP 500: an operator's error,
    /// such as a plan removed from the configuration while accounts still use it).
    #[error(transparent)]
    UnknownPlan(UnknownPlan),
    /// The credential the batch came with stopped working (its key was revoked, or expired)
    /// before the batch was counted (HTTP 401): the revocation committed first.
    #[error("the batch's credential was revoked or expired before it was recorded")]
    CredentialEnded,
    /// The storage failed (HTTP 503 when unreachable, else 500).
    #[error("recording the usage failed")]
    Storage(#[source] E),
}
