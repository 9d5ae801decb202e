//! The usage-ledger port: where events are stored and counted, implemented elsewhere
//! (`agentvista-store` on SQLite and PostgreSQL).

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::{Period, Plans, QuotaExceeded, UnknownPlan};

/// The account whose usage is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub i64);

/// What a ledger did with a batch it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// Items stored and counted by this call.
    pub accepted: u64,
    /// Items skipped because the same id was already stored for the account.
    pub duplicates: u64,
    /// The period's usage after this call.
    pub used: u64,
}

/// Why a ledger did not record a batch. In both cases nothing of it was stored or counted.
#[derive(Debug, thiserror::Error)]
pub enum RecordError<E> {
    /// The new items do not fit the allowance (HTTP 429).
    #[error(transparent)]
    Exceeded(QuotaExceeded),
    /// The account's plan is not among the configured plans (HTTP 500: an operator's error,
    /// such as a plan removed from the configuration while accounts still use it).
    #[error(transparent)]
    UnknownPlan(UnknownPlan),
    /// The storage failed (HTTP 503 when unreachable, else 500).
    #[error("the usage ledger failed")]
    Storage(#[source] E),
}

/// Stores batches and counts them against a period's allowance, exactly.
///
/// An implementation must make [`UsageLedger::record`] all or nothing: store the batch's items
/// that are new for the account, learn how many that was, and add exactly that number to the
/// period's usage **only if** the total stays within the allowance — in one atomic step that
/// holds under any concurrency and across processes sharing the storage. The allowance is
/// computed from the account's plan and spend cap as read **inside** that step, in a way that
/// orders it with any change of plan or cap: once such a change has committed, no batch is
/// counted against the old allowance. Otherwise it stores
/// nothing, counts nothing, and returns [`RecordError::Exceeded`] with the usage it saw. The
/// usage count therefore always equals the items stored.
pub trait UsageLedger: Send + Sync {
    /// What is recorded (for AgentVista, a batch of events).
    type Batch: Send;
    /// The storage's failure.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores and counts `batch` for `account` in `period`, if it fits the allowance that
    /// `plans` give the account's current plan and spend cap.
    fn record(
        &self,
        account: AccountId,
        period: Period,
        plans: &Plans,
        batch: Self::Batch,
    ) -> impl Future<Output = Result<Recorded, RecordError<Self::Error>>> + Send;

    /// Events counted for `account` in `period` so far (0 for a period not yet started).
    fn used(
        &self,
        account: AccountId,
        period: Period,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}
