//! The usage ledger on SQL: one transaction reads the account's allowance, stores the new
//! events (and the contexts they share), updates their traces' summaries and counts exactly
//! them, only if they fit the allowance.
//!
//! - `batch`: what a request brings, checked and hashed before the transaction;
//! - `contexts`, `write`, `usage`: the transaction's parts, in the order it runs them;
//! - this module: the job, the transaction, and where it runs (alone, or in a group commit).

mod batch;
mod contexts;
mod usage;
mod write;

use agentvista_quota::{Period, Plans, QuotaExceeded, RecordError, Recorded, UnknownPlan};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr};

pub use batch::{EventBatch, NewContext, NewEvent};
pub(crate) use usage::used_in;

use crate::db::db_time;
use crate::group::{Committer, Work, commit_alone};
use crate::{AccountId, KeyId, StoreError};
use batch::{HashedContext, bad_references, hashed, without_repeats};
use contexts::store_contexts;
use usage::{Counted, count, locked_terms, opening_read};
use write::EventWriter;

/// A job holding an event with this id panics the writer task (tests of the group commit).
#[cfg(test)]
pub(crate) const PANIC_MARKER: &str = "panic-the-writer";

/// Where accounting transactions run: on SQLite through the group commit's single writer, on
/// PostgreSQL each in a transaction of its own (it commits concurrent transactions in parallel).
#[derive(Clone, Debug)]
pub(crate) struct Ledger {
    write: DatabaseConnection,
    committer: Option<Committer<Job>>,
}

impl Ledger {
    /// A ledger writing through `write`; `grouped` starts the group commit's writer task on the
    /// current tokio runtime.
    pub(crate) fn new(write: DatabaseConnection, grouped: bool) -> Self {
        let committer = grouped.then(|| Committer::start(write.clone()));
        Ledger { write, committer }
    }

    /// The group commit, on SQLite.
    pub(crate) fn committer(&self) -> Option<&Committer<Job>> {
        self.committer.as_ref()
    }

    /// Stores and counts `batch` for `account` in `period`, all or nothing (see
    /// [`Store::record`](crate::Store::record)).
    pub(crate) async fn record(
        &self,
        account: AccountId,
        period: Period,
        plans: &Plans,
        batch: EventBatch,
    ) -> Result<Recorded, RecordError<StoreError>> {
        let EventBatch {
            api_key_id,
            received_at,
            contexts,
            events,
        } = batch;
        if let Some(problem) = bad_references(&contexts, &events) {
            // The decoder built the batch: a bug there, not the client's fault.
            return Err(RecordError::Storage(StoreError::Database(DbErr::Custom(
                problem,
            ))));
        }
        let contexts = hashed(contexts);
        let (events, repeated_in_batch) = without_repeats(events);
        let job = Job {
            account,
            period,
            plans: plans.clone(),
            api_key_id,
            received_at,
            contexts,
            events,
        };
        let outcome = match &self.committer {
            Some(committer) => committer.submit(job).await,
            None => commit_alone(&self.write, &job).await,
        };
        match outcome {
            Ok(Accounted::Recorded(mut recorded)) => {
                recorded.duplicates += repeated_in_batch;
                Ok(recorded)
            }
            Ok(Accounted::Exceeded(exceeded)) => Err(RecordError::Exceeded(exceeded)),
            Ok(Accounted::UnknownPlan(unknown)) => Err(RecordError::UnknownPlan(unknown)),
            Err(e) => Err(RecordError::Storage(e.into())),
        }
    }
}

/// One request's events, deduplicated and sorted, with what they are counted against.
pub(crate) struct Job {
    pub(crate) account: AccountId,
    pub(crate) period: Period,
    /// The allowance is computed from these and the account row read inside the transaction.
    pub(crate) plans: Plans,
    pub(crate) api_key_id: Option<KeyId>,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) contexts: Vec<HashedContext>,
    pub(crate) events: Vec<NewEvent>,
}

/// How one job's transaction ended when the database did its part.
#[derive(Debug)]
pub(crate) enum Accounted {
    /// Stored and counted: committed.
    Recorded(Recorded),
    /// The events do not fit the allowance: nothing stored.
    Exceeded(QuotaExceeded),
    /// The account's plan is not configured: nothing stored.
    UnknownPlan(UnknownPlan),
}

impl Work for Job {
    type Answer = Accounted;

    async fn run(&self, txn: &DatabaseTransaction) -> Result<Accounted, DbErr> {
        #[cfg(test)]
        assert!(
            !self
                .events
                .iter()
                .any(|e| e.client_event_id.as_deref() == Some(PANIC_MARKER)),
            "the writer panics, as a test asked"
        );
        record_in(txn, self).await
    }

    fn keeps(answer: &Accounted) -> bool {
        matches!(answer, Accounted::Recorded(_))
    }
}

/// The body of the accounting transaction: anything but [`Accounted::Recorded`] is rolled back.
///
/// Round trips count more than anything else here (each is a hop to SQLite's worker thread or
/// to the PostgreSQL server), so the transaction is as few statements as the two databases
/// allow: one read of the account's terms and of the contexts it has already, the events
/// (with, on PostgreSQL, their traces' summaries in the same statement), the summaries (on
/// SQLite), and the count.
async fn record_in(txn: &DatabaseTransaction, job: &Job) -> Result<Accounted, DbErr> {
    let Job {
        account,
        period,
        ref plans,
        api_key_id,
        received_at,
        ref contexts,
        ref events,
    } = *job;

    let (terms, known) = opening_read(txn, account, contexts).await?;
    // On SQLite these terms hold: the transaction has the write lock. On PostgreSQL they are
    // a snapshot, confirmed under the account row's lock when counting.
    let allowance = match terms.allowance(plans) {
        Ok(allowance) => allowance,
        Err(unknown) => return Ok(Accounted::UnknownPlan(unknown)),
    };
    let context_ids = store_contexts(txn, account, contexts, known).await?;
    let writer = EventWriter {
        account,
        api_key_id,
        received_at: db_time(received_at),
        context_ids: &context_ids,
    };
    let inserted = writer.insert(txn, events).await?;
    let duplicates = events.len() as u64 - inserted;
    if inserted == 0 {
        // Only duplicates: nothing to count, whatever is left of the allowance.
        let used = used_in(txn, account, period).await?;
        return Ok(Accounted::Recorded(Recorded {
            accepted: 0,
            duplicates,
            used,
        }));
    }

    let confirm = (txn.get_database_backend() == DbBackend::Postgres).then_some(&terms);
    let (allowance, used) = match count(txn, account, period, inserted, allowance, confirm).await? {
        Counted::Confirmed(used) => (allowance, used),
        Counted::TermsChanged => {
            // Refused, or the plan or cap changed since the opening read: read them again,
            // locked, and count once more.
            let allowance = match locked_terms(txn, account).await?.allowance(plans) {
                Ok(allowance) => allowance,
                Err(unknown) => return Ok(Accounted::UnknownPlan(unknown)),
            };
            match count(txn, account, period, inserted, allowance, None).await? {
                Counted::Confirmed(used) => (allowance, used),
                Counted::TermsChanged => (allowance, None),
            }
        }
    };
    match used {
        Some(used) => Ok(Accounted::Recorded(Recorded {
            accepted: inserted,
            duplicates,
            used,
        })),
        None => Ok(Accounted::Exceeded(QuotaExceeded {
            limit: allowance.limit().unwrap_or(u64::MAX),
            used: used_in(txn, account, period).await?,
            resets_at: period.resets_at(),
        })),
    }
}
