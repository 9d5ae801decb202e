//! The usage ledger on SQL: one transaction stores the new events and counts exactly them,
//! only if they fit the allowance.

use std::collections::HashSet;

use agentvista_quota::{Allowance, Period, QuotaExceeded, RecordError, Recorded, UsageLedger};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::entities::{events, usage_periods};
use crate::events::{EventBatch, NewEvent};
use crate::{AccountId, KeyId, Store, StoreError, connect::db_time};

/// Rows per INSERT statement: 10 values each stays far below both databases' parameter limits.
const ROWS_PER_INSERT: usize = 500;

/// One request's events, deduplicated and sorted, with what they are counted against.
pub(crate) struct Job {
    pub(crate) account: AccountId,
    pub(crate) period: Period,
    pub(crate) allowance: Allowance,
    pub(crate) api_key_id: Option<KeyId>,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) events: Vec<NewEvent>,
}

/// Committed (`Ok(Ok)`), refused for the quota with nothing stored (`Ok(Err)`), or failed.
pub(crate) type Outcome = Result<Result<Recorded, QuotaExceeded>, DbErr>;

impl UsageLedger for Store {
    type Batch = EventBatch;
    type Error = StoreError;

    async fn record(
        &self,
        account: AccountId,
        period: Period,
        allowance: Allowance,
        batch: EventBatch,
    ) -> Result<Recorded, RecordError<StoreError>> {
        let (events, repeated_in_batch) = without_repeats(batch.events);
        let job = Job {
            account,
            period,
            allowance,
            api_key_id: batch.api_key_id,
            received_at: batch.received_at,
            events,
        };
        let outcome = match &self.committer {
            Some(committer) => committer.submit(job).await,
            None => commit_alone(&self.write, &job).await,
        };
        match outcome {
            Ok(Ok(mut recorded)) => {
                recorded.duplicates += repeated_in_batch;
                Ok(recorded)
            }
            Ok(Err(exceeded)) => Err(RecordError::Exceeded(exceeded)),
            Err(e) => Err(RecordError::Storage(e.into())),
        }
    }

    async fn used(&self, account: AccountId, period: Period) -> Result<u64, StoreError> {
        Ok(used_in(self.reader(), account, period).await?)
    }
}

/// Takes SQLite's write lock at `BEGIN`: a deferred transaction that must upgrade later fails at
/// once under concurrent writers (the busy timeout cannot help). PostgreSQL ignores the mode.
pub(crate) async fn begin_immediate(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// One job, one transaction.
pub(crate) async fn commit_alone(db: &DatabaseConnection, job: &Job) -> Outcome {
    let txn = begin_immediate(db).await?;
    finish(txn, job).await
}

/// Runs `job` in `txn` (a transaction or a savepoint) and commits or rolls it back.
pub(crate) async fn finish(txn: DatabaseTransaction, job: &Job) -> Outcome {
    match record_in(&txn, job).await {
        Ok(Ok(recorded)) => txn.commit().await.map(|()| Ok(recorded)),
        Ok(Err(exceeded)) => txn.rollback().await.map(|()| Err(exceeded)),
        Err(e) => {
            // The job's error is the answer. A rollback that fails as well is no less an
            // error: the connection is then in an unknown state, and SQLite's write pool
            // closes it on release (`connect.rs`); a group this job belongs to aborts whole
            // (`group.rs`). Nothing more can be done here but say it.
            if let Err(rollback) = txn.rollback().await {
                tracing::error!(
                    error = %rollback,
                    "rolling back a failed accounting transaction failed too"
                );
            }
            Err(e)
        }
    }
}

/// The body of the accounting transaction: `Ok(Err(_))` means "refused, roll back".
async fn record_in(txn: &DatabaseTransaction, job: &Job) -> Outcome {
    use usage_periods::Column as U;
    let Job {
        account,
        period,
        allowance,
        api_key_id,
        received_at,
        ref events,
    } = *job;

    let mut inserted = 0u64;
    for chunk in events.chunks(ROWS_PER_INSERT) {
        inserted += insert_new(txn, account, api_key_id, received_at, chunk).await?;
    }
    let duplicates = events.len() as u64 - inserted;
    let refused = |used| QuotaExceeded {
        limit: allowance.limit().unwrap_or(u64::MAX),
        used,
        resets_at: period.resets_at(),
    };
    if inserted == 0 {
        // Only duplicates: nothing to count, whatever is left of the allowance.
        let used = used_in(txn, account, period).await?;
        return Ok(Ok(Recorded {
            accepted: 0,
            duplicates,
            used,
        }));
    }
    if !allowance.admits(0, inserted) {
        return Ok(Err(refused(used_in(txn, account, period).await?)));
    }

    // The whole of the accounting is this one statement. A new month's row is inserted with
    // `n` (which fits, checked above); an existing row gains `n` only if the total stays within
    // the limit, else the statement changes and returns nothing. Concurrent transactions queue
    // on the row (PostgreSQL re-checks the condition against the committed value; SQLite has
    // one writer at a time), so the count can never pass the limit.
    let n = i64::try_from(inserted).unwrap_or(i64::MAX);
    let current = Expr::col((usage_periods::Entity, U::EventsUsed));
    let mut on_conflict = OnConflict::columns([U::AccountId, U::PeriodStart]);
    on_conflict.value(U::EventsUsed, current.clone().add(n));
    if let Some(limit) = allowance.limit() {
        on_conflict.action_and_where(current.add(n).lte(i64::try_from(limit).unwrap_or(i64::MAX)));
    }
    let count = Query::insert()
        .into_table(usage_periods::Entity)
        .columns([U::AccountId, U::PeriodStart, U::EventsUsed])
        .values([account.0.into(), period.first_day().into(), n.into()])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .on_conflict(on_conflict)
        .returning_col(U::EventsUsed)
        .to_owned();
    match txn.query_one(&count).await? {
        Some(row) => {
            let used: i64 = row.try_get("", "events_used")?;
            Ok(Ok(Recorded {
                accepted: inserted,
                duplicates,
                used: u64::try_from(used).unwrap_or(0),
            }))
        }
        None => Ok(Err(refused(used_in(txn, account, period).await?))),
    }
}

/// Events counted for `account` in `period`, as `db` (a pool or a transaction) sees them.
async fn used_in(
    db: &impl ConnectionTrait,
    account: AccountId,
    period: Period,
) -> Result<u64, DbErr> {
    let row = usage_periods::Entity::find_by_id((account.0, period.first_day()))
        .one(db)
        .await?;
    Ok(row.map_or(0, |r| u64::try_from(r.events_used).unwrap_or(0)))
}

/// Inserts the rows whose client id is new for the account; returns how many were inserted.
async fn insert_new(
    txn: &DatabaseTransaction,
    account: AccountId,
    api_key_id: Option<KeyId>,
    received_at: DateTime<Utc>,
    chunk: &[NewEvent],
) -> Result<u64, DbErr> {
    use events::Column as E;

    let mut insert = Query::insert();
    insert.into_table(events::Entity).columns([
        E::AccountId,
        E::ApiKeyId,
        E::ClientEventId,
        E::EventType,
        E::TraceId,
        E::Name,
        E::Timestamp,
        E::Body,
        E::ReceivedAt,
    ]);
    let received_at = db_time(received_at);
    for event in chunk {
        insert
            .values([
                account.0.into(),
                api_key_id.map(|k| k.0).into(),
                event.client_event_id.clone().into(),
                event.event_type.clone().into(),
                event.trace_id.clone().into(),
                event.name.clone().into(),
                db_time(event.timestamp).into(),
                event.body.clone().into(),
                received_at.into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    insert.on_conflict(
        OnConflict::columns([E::AccountId, E::ClientEventId])
            .do_nothing()
            .to_owned(),
    );
    Ok(txn.execute(&insert).await?.rows_affected())
}

/// Drops repeats of a client id within the batch (the first occurrence wins) and sorts the
/// rest by id, so concurrent batches sharing ids take PostgreSQL's index locks in the same
/// order and cannot deadlock. Returns the events and the number of repeats dropped.
fn without_repeats(events: Vec<NewEvent>) -> (Vec<NewEvent>, u64) {
    let total = events.len();
    let mut seen = HashSet::new();
    let mut kept: Vec<NewEvent> = events
        .into_iter()
        .filter(|e| match &e.client_event_id {
            Some(id) => seen.insert(id.clone()),
            None => true,
        })
        .collect();
    let repeats = (total - kept.len()) as u64;
    kept.sort_by(|a, b| a.client_event_id.cmp(&b.client_event_id));
    (kept, repeats)
}
