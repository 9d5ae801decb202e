//! The usage ledger on SQL: one transaction reads the account's allowance, stores the new
//! events (and the contexts they share), updates their traces' summaries and counts exactly
//! them, only if they fit the allowance.
//!
//! - `batch`: what a request brings, checked and hashed before the transaction;
//! - `memo`: what the ledger remembers of committed transactions (terms, context ids);
//! - `contexts`, `write`, `usage`: the transaction's parts, in the order it runs them;
//! - this module: the job, the transaction, and where it runs (alone, or in a group commit).

mod batch;
mod contexts;
mod memo;
mod usage;
mod write;

use std::sync::Arc;

use agentvista_quota::{Period, Plans, QuotaExceeded, RecordError, Recorded, UnknownPlan};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr};

pub use batch::{EventBatch, NewContext, NewEvent};
pub(crate) use usage::used_in;

use crate::db::db_time;
use crate::group::{Committer, Work, commit_alone};
use crate::{AccountId, KeyId, StoreError};
use batch::{HashedContext, ROWS_PER_INSERT, bad_references, hashed, without_repeats};
use contexts::store_contexts;
use memo::{Learned, Memo, Remembered};
use usage::{
    Count, Counted, Daily, count, count_statement, daily_statement_sqlite, key_is_live, live_key,
    locked_terms, opening_read,
};
use write::{EventWriter, Trip, summarise_sqlite};

/// A job holding an event with this id panics the writer task (tests of the group commit).
#[cfg(test)]
pub(crate) const PANIC_MARKER: &str = "panic-the-writer";

/// Where accounting transactions run: on SQLite through the group commit's single writer, on
/// PostgreSQL each in a transaction of its own (it commits concurrent transactions in parallel).
#[derive(Clone, Debug)]
pub(crate) struct Ledger {
    write: DatabaseConnection,
    committer: Option<Committer<Job>>,
    memo: Arc<Memo>,
}

impl Ledger {
    /// A ledger writing through `write`; `grouped` starts the group commit's writer task on the
    /// current tokio runtime.
    pub(crate) fn new(write: DatabaseConnection, grouped: bool) -> Self {
        let committer = grouped.then(|| Committer::start(write.clone()));
        Ledger {
            write,
            committer,
            memo: Arc::new(Memo::new()),
        }
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
        let remembered = self
            .memo
            .recall(account, &contexts, received_at.date_naive());
        let job = Job {
            account,
            period,
            plans: plans.clone(),
            api_key_id,
            received_at,
            contexts,
            events,
            remembered,
        };
        let outcome = match &self.committer {
            Some(committer) => committer.submit(job).await,
            None => commit_alone(&self.write, &job).await,
        };
        match outcome {
            Ok(Accounted::Recorded(mut recorded, learned)) => {
                // Committed: what the transaction read or wrote is now true for every other.
                self.memo.learn(account, learned);
                recorded.duplicates += repeated_in_batch;
                metrics::counter!("agentvista_events_accepted_total").increment(recorded.accepted);
                metrics::counter!("agentvista_events_duplicated_total")
                    .increment(recorded.duplicates);
                Ok(recorded)
            }
            Ok(Accounted::Exceeded(exceeded)) => {
                metrics::counter!("agentvista_quota_refusals_total").increment(1);
                Err(RecordError::Exceeded(exceeded))
            }
            Ok(Accounted::UnknownPlan(unknown)) => Err(RecordError::UnknownPlan(unknown)),
            Ok(Accounted::CredentialEnded) => Err(RecordError::CredentialEnded),
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
    /// The account's terms and the contexts' ids, when the ledger remembers them all.
    remembered: Option<Remembered>,
}

/// How one job's transaction ended when the database did its part.
#[derive(Debug)]
pub(crate) enum Accounted {
    /// Stored and counted: committed, with what the ledger may remember of it.
    Recorded(Recorded, Learned),
    /// The events do not fit the allowance: nothing stored.
    Exceeded(QuotaExceeded),
    /// The account's plan is not configured: nothing stored.
    UnknownPlan(UnknownPlan),
    /// The key the batch came with was revoked or expired before it was counted: nothing
    /// stored.
    CredentialEnded,
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
        matches!(answer, Accounted::Recorded(..))
    }
}

/// The body of the accounting transaction: anything but [`Accounted::Recorded`] is rolled back.
///
/// Round trips count more than anything else here (each is a hop to SQLite's worker thread or
/// to the PostgreSQL server), so the transaction is as few calls as the two databases allow:
/// - one read of the account's terms and of the contexts it has already, skipped when the
///   ledger remembers them all;
/// - on SQLite, for a job of at most one statement's events: the events, their count and their
///   traces' summaries in one call ([`EventWriter::insert_counted`]); when some event was a
///   duplicate, or the count was refused or its terms had changed, the count (again) and the
///   summaries follow as statements of their own;
/// - on PostgreSQL: the events with their traces' summaries in one statement, then the count.
///
/// The summaries are written only once the events are counted (on PostgreSQL in the same
/// statement as the events, and a refusal rolls both back).
async fn record_in(txn: &DatabaseTransaction, job: &Job) -> Result<Accounted, DbErr> {
    let Job {
        account,
        period,
        ref plans,
        api_key_id,
        received_at,
        ref contexts,
        ref events,
        ref remembered,
    } = *job;

    // Remembered terms whose plan is no longer configured are read again, not refused.
    let remembered = remembered
        .as_ref()
        .and_then(|r| Some((r, r.terms.allowance(plans).ok()?)));
    let (terms, allowance, context_ids, new_contexts, confirm) = match remembered {
        // Remembered terms are confirmed when counting, on both databases.
        Some((r, allowance)) => (
            r.terms.clone(),
            allowance,
            r.context_ids.clone(),
            Vec::new(),
            true,
        ),
        None => {
            let day = received_at.date_naive();
            let (terms, known) = opening_read(txn, account, contexts, day).await?;
            // On SQLite these terms hold: the transaction has the write lock. On PostgreSQL
            // they are a snapshot, confirmed under the account row's lock when counting.
            let allowance = match terms.allowance(plans) {
                Ok(allowance) => allowance,
                Err(unknown) => return Ok(Accounted::UnknownPlan(unknown)),
            };
            let context_ids = store_contexts(txn, account, contexts, known, day).await?;
            let new_contexts = contexts
                .iter()
                .map(|c| c.hash.clone())
                .zip(context_ids.iter().copied())
                .collect();
            let confirm = txn.get_database_backend() == DbBackend::Postgres;
            (terms, allowance, context_ids, new_contexts, confirm)
        }
    };
    let writer = EventWriter {
        account,
        api_key_id,
        received_at: db_time(received_at),
        context_ids: &context_ids,
    };
    let learned = |terms| Learned {
        terms,
        contexts: new_contexts,
        seen: received_at.date_naive(),
    };
    let backend = txn.get_database_backend();
    let first = Count {
        account,
        key: api_key_id,
        period,
        allowance,
        confirm: confirm.then_some(&terms),
        daily: Daily::of(received_at, api_key_id),
    };
    let n = events.len() as u64;
    let one_trip = backend == DbBackend::Sqlite
        && !events.is_empty()
        && events.len() <= ROWS_PER_INSERT
        && allowance.admits(0, n);
    // SQLite: the key is read inside the request's savepoint, under the write lock, so a
    // revocation commits before this transaction (the key reads revoked) or after it;
    // PostgreSQL's count checks and locks it (`live_key`).
    if backend == DbBackend::Sqlite
        && !one_trip
        && let Some(key) = api_key_id
        && !key_is_live(txn, key).await?
    {
        return Ok(Accounted::CredentialEnded);
    }
    let inserted = if one_trip {
        let count = count_statement(backend, &first, n, Some(n))?;
        let daily = daily_statement_sqlite(account, first.daily, n, true);
        let key = api_key_id.map(|key| backend.build(&live_key(backend, key)));
        match writer
            .insert_counted(txn, key, events, count, daily)
            .await?
        {
            Trip::CredentialEnded => return Ok(Accounted::CredentialEnded),
            Trip::Counted(used) => {
                return Ok(Accounted::Recorded(
                    Recorded {
                        accepted: n,
                        duplicates: 0,
                        used,
                    },
                    learned(terms.clone()),
                ));
            }
            Trip::Inserted(inserted) => inserted,
        }
    } else {
        writer.insert(txn, events).await?
    };
    let duplicates = n - inserted;
    if inserted == 0 {
        // Nothing to count, so no count to check the key: a revoked key's repeat is refused
        // all the same.
        if backend == DbBackend::Postgres
            && let Some(key) = api_key_id
            && !key_is_live(txn, key).await?
        {
            return Ok(Accounted::CredentialEnded);
        }
        // Only duplicates: nothing to count, whatever is left of the allowance.
        let used = used_in(txn, account, period).await?;
        return Ok(Accounted::Recorded(
            Recorded {
                accepted: 0,
                duplicates,
                used,
            },
            learned(terms.clone()),
        ));
    }

    let (terms, allowance, used) = match count(txn, &first, inserted).await? {
        Counted::Confirmed(used) => (terms.clone(), allowance, used),
        Counted::TermsChanged => {
            // Refused, the plan or cap changed since they were read or remembered, or (on
            // PostgreSQL) the key stopped working: the key first, under its lock, which the
            // second count keeps; then the terms, locked, and count once more.
            if let Some(key) = api_key_id
                && !key_is_live(txn, key).await?
            {
                return Ok(Accounted::CredentialEnded);
            }
            let terms = locked_terms(txn, account).await?;
            let allowance = match terms.allowance(plans) {
                Ok(allowance) => allowance,
                Err(unknown) => return Ok(Accounted::UnknownPlan(unknown)),
            };
            let again = Count {
                allowance,
                confirm: None,
                ..first
            };
            match count(txn, &again, inserted).await? {
                Counted::Confirmed(used) => (terms, allowance, used),
                Counted::TermsChanged => (terms, allowance, None),
            }
        }
    };
    if used.is_some() && backend == DbBackend::Sqlite {
        // On PostgreSQL the insert wrote them.
        summarise_sqlite(txn, account, inserted).await?;
    }
    match used {
        Some(used) => Ok(Accounted::Recorded(
            Recorded {
                accepted: inserted,
                duplicates,
                used,
            },
            learned(terms),
        )),
        None => Ok(Accounted::Exceeded(QuotaExceeded {
            limit: allowance.limit().unwrap_or(u64::MAX),
            used: used_in(txn, account, period).await?,
            resets_at: period.resets_at(),
        })),
    }
}
