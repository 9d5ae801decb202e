//! The usage ledger on SQL: one transaction reads the account's allowance, stores the new
//! events (and the contexts they share), updates their traces' summaries and counts exactly
//! them, only if they fit the allowance.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;

use agentvista_quota::{
    Allowance, Period, Plans, QuotaExceeded, RecordError, Recorded, UnknownPlan, UsageLedger,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    CommonTableExpression, Expr, ExprTrait, InsertStatement, LockType, OnConflict, Query,
    WithClause,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QuerySelect, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::entities::{accounts, event_contexts, events, traces, usage_periods};
use crate::events::{EventBatch, NewContext, NewEvent};
use crate::{AccountId, KeyId, Store, StoreError, connect::db_time};

/// Rows per INSERT statement: 10 values each stays far below both databases' parameter limits.
const ROWS_PER_INSERT: usize = 500;

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

/// A context with its content hash, computed before the transaction so that hashing a large
/// resource never holds the write lock.
pub(crate) struct HashedContext {
    parent: Option<usize>,
    hash: String,
    body: Value,
}

/// Why a job stored nothing although the database worked.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The events do not fit the allowance.
    Exceeded(QuotaExceeded),
    /// The account's plan is not configured.
    UnknownPlan(UnknownPlan),
}

/// Committed (`Ok(Ok)`), refused with nothing stored (`Ok(Err)`), or failed.
pub(crate) type Outcome = Result<Result<Recorded, Refused>, DbErr>;

impl UsageLedger for Store {
    type Batch = EventBatch;
    type Error = StoreError;

    async fn record(
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
            Ok(Ok(mut recorded)) => {
                recorded.duplicates += repeated_in_batch;
                Ok(recorded)
            }
            Ok(Err(Refused::Exceeded(exceeded))) => Err(RecordError::Exceeded(exceeded)),
            Ok(Err(Refused::UnknownPlan(unknown))) => Err(RecordError::UnknownPlan(unknown)),
            Err(e) => Err(RecordError::Storage(e.into())),
        }
    }

    async fn used(&self, account: AccountId, period: Period) -> Result<u64, StoreError> {
        Ok(used_in(self.reader(), account, period).await?)
    }
}

/// Says what is wrong when a context or an event points at a context that is not before it.
fn bad_references(contexts: &[NewContext], events: &[NewEvent]) -> Option<String> {
    for (i, context) in contexts.iter().enumerate() {
        if context.parent.is_some_and(|p| p >= i) {
            return Some(format!(
                "context {i} names a parent that does not precede it"
            ));
        }
    }
    events
        .iter()
        .position(|e| e.context.is_some_and(|c| c >= contexts.len()))
        .map(|i| format!("event {i} names a context the batch does not have"))
}

/// Hashes each context over its parent's hash and its fields' canonical JSON: equal contexts
/// of an account share one row, and a hash never needs the parent's row id.
fn hashed(contexts: Vec<NewContext>) -> Vec<HashedContext> {
    let mut out: Vec<HashedContext> = Vec::with_capacity(contexts.len());
    for context in contexts {
        let mut hasher = Sha256::new();
        if let Some(parent) = context.parent.and_then(|p| out.get(p)) {
            hasher.update(parent.hash.as_bytes());
        }
        hasher.update(b"\n");
        let body = Value::Object(context.fields);
        canonical(&body, &mut HashWriter(&mut hasher));
        out.push(HashedContext {
            parent: context.parent,
            hash: hex::encode(hasher.finalize()),
            body,
        });
    }
    out
}

/// Feeds the hasher directly: no serialized copy of a context is built.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Compact JSON with object keys sorted at every level, whatever map order serde_json uses.
fn canonical(value: &Value, out: &mut HashWriter<'_>) {
    // Writing to the hasher cannot fail, nor can serializing a string or a number.
    match value {
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            let _ = out.write_all(b"{");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    let _ = out.write_all(b",");
                }
                let _ = serde_json::to_writer(&mut *out, key);
                let _ = out.write_all(b":");
                if let Some(field) = fields.get(key) {
                    canonical(field, out);
                }
            }
            let _ = out.write_all(b"}");
        }
        Value::Array(items) => {
            let _ = out.write_all(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    let _ = out.write_all(b",");
                }
                canonical(item, out);
            }
            let _ = out.write_all(b"]");
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
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
///
/// Round trips count more than anything else here (each is a hop to SQLite's worker thread or
/// to the PostgreSQL server), so the transaction is as few statements as the two databases
/// allow: one read of the account's terms and of the contexts it has already, the events
/// (with, on PostgreSQL, their traces' summaries in the same statement), the summaries (on
/// SQLite), and the count.
async fn record_in(txn: &DatabaseTransaction, job: &Job) -> Outcome {
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
    let allowance = match plans.allowance(&terms.plan, terms.cap) {
        Ok(allowance) => allowance,
        Err(unknown) => return Ok(Err(Refused::UnknownPlan(unknown))),
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
        return Ok(Ok(Recorded {
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
            let allowance = match allowance_in(txn, account, plans).await? {
                Ok(allowance) => allowance,
                Err(unknown) => return Ok(Err(Refused::UnknownPlan(unknown))),
            };
            match count(txn, account, period, inserted, allowance, None).await? {
                Counted::Confirmed(used) => (allowance, used),
                Counted::TermsChanged => (allowance, None),
            }
        }
    };
    match used {
        Some(used) => Ok(Ok(Recorded {
            accepted: inserted,
            duplicates,
            used,
        })),
        None => Ok(Err(Refused::Exceeded(QuotaExceeded {
            limit: allowance.limit().unwrap_or(u64::MAX),
            used: used_in(txn, account, period).await?,
            resets_at: period.resets_at(),
        }))),
    }
}

/// What the account's row says its allowance is.
struct Terms {
    plan: String,
    cap: Option<u64>,
}

/// What [`count`] found.
enum Counted {
    /// Counted, with the new total (`Some`), or refused: over the allowance (`None`).
    Confirmed(Option<u64>),
    /// Nothing done: over the allowance, or the account's terms are no longer those the
    /// allowance was computed from (only when asked to confirm them; one statement cannot
    /// tell which).
    TermsChanged,
}

/// The account's terms and the ids of those of `contexts` the account has already, in one
/// statement.
async fn opening_read(
    txn: &DatabaseTransaction,
    account: AccountId,
    contexts: &[HashedContext],
) -> Result<(Terms, HashMap<String, i64>), DbErr> {
    use accounts::Column as A;
    use event_contexts::Column as C;
    let mut read = Query::select();
    read.from(accounts::Entity)
        .column((accounts::Entity, A::Plan))
        .column((accounts::Entity, A::SpendCapCents))
        .and_where(Expr::col((accounts::Entity, A::Id)).eq(account.0));
    let hashes: BTreeSet<&str> = contexts.iter().map(|c| c.hash.as_str()).collect();
    // Beyond one statement's worth of parameters, [`store_contexts`] reads them in chunks.
    let contexts = if hashes.len() <= ROWS_PER_INSERT {
        contexts
    } else {
        &[]
    };
    if !contexts.is_empty() {
        read.expr_as(Expr::col((event_contexts::Entity, C::Id)), "context_id")
            .expr_as(Expr::col((event_contexts::Entity, C::Hash)), "context_hash")
            .left_join(
                event_contexts::Entity,
                Expr::col((event_contexts::Entity, C::AccountId))
                    .equals((accounts::Entity, A::Id))
                    .and(Expr::col((event_contexts::Entity, C::Hash)).is_in(hashes)),
            );
    }
    let rows = txn.query_all(&read).await?;
    let mut terms = None;
    let mut known = HashMap::new();
    for row in rows {
        if terms.is_none() {
            let cap: Option<i64> = row.try_get("", "spend_cap_cents")?;
            terms = Some(Terms {
                plan: row.try_get("", "plan")?,
                cap: cap.map(u64::try_from).transpose().map_err(|_| {
                    DbErr::Custom("stored accounts.spend_cap_cents is negative".into())
                })?,
            });
        }
        if contexts.is_empty() {
            break;
        }
        // NULL when none of the contexts is stored yet (the join found nothing).
        let id: Option<i64> = row.try_get("", "context_id")?;
        let hash: Option<String> = row.try_get("", "context_hash")?;
        if let (Some(id), Some(hash)) = (id, hash) {
            known.insert(hash, id);
        }
    }
    let terms = terms.ok_or_else(|| DbErr::RecordNotFound(format!("account {}", account.0)))?;
    Ok((terms, known))
}

/// Adds `n` to the period's usage if the total stays within `allowance`; with `confirm`, only
/// if the account's terms are still those (PostgreSQL: checked under the row's lock).
///
/// The whole of the accounting is this one statement. A new month's row is inserted with `n`;
/// an existing row gains `n` only if the total stays within the limit, else the statement
/// changes and returns nothing. Concurrent transactions queue on the row (PostgreSQL re-checks
/// the condition against the committed value; SQLite has one writer at a time), so the count
/// can never pass the limit.
///
/// The account row is locked here, not at the opening read, so that an account's concurrent
/// requests insert their events in parallel and queue only for the count. `FOR NO KEY UPDATE`
/// makes a change of plan or cap wait for the accounting that holds the row, and accounting
/// that comes later wait for the change and then see its values. Not `FOR SHARE`: share
/// lockers that overlap without pause starve an `UPDATE`. The lock does not conflict with the
/// `FOR KEY SHARE` of the events' foreign-key checks.
async fn count(
    txn: &DatabaseTransaction,
    account: AccountId,
    period: Period,
    n: u64,
    allowance: Allowance,
    confirm: Option<&Terms>,
) -> Result<Counted, DbErr> {
    use usage_periods::Column as U;
    if !allowance.admits(0, n) {
        return Ok(Counted::Confirmed(None));
    }
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let current = Expr::col((usage_periods::Entity, U::EventsUsed));
    let mut on_conflict = OnConflict::columns([U::AccountId, U::PeriodStart]);
    on_conflict.value(U::EventsUsed, current.clone().add(n));
    if let Some(limit) = allowance.limit() {
        on_conflict.action_and_where(current.add(n).lte(i64::try_from(limit).unwrap_or(i64::MAX)));
    }
    let mut insert = Query::insert();
    insert
        .into_table(usage_periods::Entity)
        .columns([U::AccountId, U::PeriodStart, U::EventsUsed])
        .on_conflict(on_conflict)
        .returning_col(U::EventsUsed);
    let statement = match confirm {
        None => {
            insert
                .values([account.0.into(), period.first_day().into(), n.into()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            txn.get_database_backend().build(&insert)
        }
        Some(terms) => {
            use accounts::Column as A;
            let cap = terms.cap.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
            let mut source = Query::select();
            source
                .exprs([
                    Expr::val(account.0),
                    Expr::val(period.first_day()),
                    Expr::val(n),
                ])
                .from("terms")
                .and_where(Expr::col(A::Plan).eq(terms.plan.as_str()))
                .and_where(match cap {
                    Some(cap) => Expr::col(A::SpendCapCents).eq(cap),
                    None => Expr::col(A::SpendCapCents).is_null(),
                });
            insert
                .select_from(source)
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            let mut locked = Query::select();
            locked
                .columns([A::Plan, A::SpendCapCents])
                .from(accounts::Entity)
                .and_where(Expr::col(A::Id).eq(account.0))
                .lock(LockType::NoKeyUpdate);
            let with = WithClause::new()
                .cte(
                    CommonTableExpression::new()
                        .query(locked)
                        .table_name("terms")
                        .to_owned(),
                )
                .to_owned();
            txn.get_database_backend().build(&with.query(insert))
        }
    };
    // With `confirm`, no row means a refusal or changed terms: the second statement (rare)
    // tells them apart.
    match txn.query_one_raw(statement).await? {
        Some(row) => {
            let used: i64 = row.try_get("", "events_used")?;
            Ok(Counted::Confirmed(Some(u64::try_from(used).unwrap_or(0))))
        }
        None if confirm.is_some() => Ok(Counted::TermsChanged),
        None => Ok(Counted::Confirmed(None)),
    }
}

/// The account's allowance as of now, read under the lock [`count`] describes (PostgreSQL;
/// SQLite's transaction holds the database's write lock already).
async fn allowance_in(
    txn: &DatabaseTransaction,
    account: AccountId,
    plans: &Plans,
) -> Result<Result<Allowance, UnknownPlan>, DbErr> {
    let row = accounts::Entity::find_by_id(account.0)
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("account {}", account.0)))?;
    let cap = row
        .spend_cap_cents
        .map(u64::try_from)
        .transpose()
        .map_err(|_| DbErr::Custom("stored accounts.spend_cap_cents is negative".into()))?;
    Ok(plans.allowance(&row.plan, cap))
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

/// The row ids of the job's contexts, in order: existing rows of the account are reused, the
/// others inserted (parents first, since a child's row names its parent's id).
async fn store_contexts(
    txn: &DatabaseTransaction,
    account: AccountId,
    contexts: &[HashedContext],
    mut ids: HashMap<String, i64>,
) -> Result<Vec<i64>, DbErr> {
    if contexts.is_empty() {
        return Ok(Vec::new());
    }
    let unread: Vec<&str> = contexts
        .iter()
        .map(|c| c.hash.as_str())
        .filter(|hash| !ids.contains_key(*hash))
        .collect();
    if !unread.is_empty() {
        find_contexts(txn, account, &unread, &mut ids).await?;
    }
    if contexts.iter().any(|c| !ids.contains_key(&c.hash)) {
        // Depth of each context; a parent precedes its child (checked before the transaction).
        let mut depth = vec![0usize; contexts.len()];
        for (i, context) in contexts.iter().enumerate() {
            depth[i] = context.parent.map_or(0, |p| depth[p] + 1);
        }
        for level in 0..=depth.iter().copied().max().unwrap_or(0) {
            // Sorted and without repeats: concurrent requests take the index locks in the same
            // order, so they wait for each other instead of deadlocking.
            let missing: BTreeMap<&str, &HashedContext> = contexts
                .iter()
                .zip(&depth)
                .filter(|(c, d)| **d == level && !ids.contains_key(&c.hash))
                .map(|(c, _)| (c.hash.as_str(), c))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let rows: Vec<&HashedContext> = missing.values().copied().collect();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                insert_contexts(txn, account, contexts, chunk, &ids).await?;
            }
            let hashes: Vec<&str> = missing.keys().copied().collect();
            find_contexts(txn, account, &hashes, &mut ids).await?;
        }
    }
    contexts
        .iter()
        .map(|c| {
            ids.get(&c.hash)
                .copied()
                .ok_or_else(|| DbErr::Custom("an inserted event context was not found".into()))
        })
        .collect()
}

async fn find_contexts(
    txn: &DatabaseTransaction,
    account: AccountId,
    hashes: &[&str],
    ids: &mut HashMap<String, i64>,
) -> Result<(), DbErr> {
    use event_contexts::Column as C;
    let wanted: HashSet<&str> = hashes.iter().copied().collect();
    let wanted: Vec<&str> = wanted.into_iter().collect();
    for chunk in wanted.chunks(ROWS_PER_INSERT) {
        let rows: Vec<(i64, String)> = event_contexts::Entity::find()
            .select_only()
            .column(C::Id)
            .column(C::Hash)
            .filter(C::AccountId.eq(account.0))
            .filter(C::Hash.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        ids.extend(rows.into_iter().map(|(id, hash)| (hash, id)));
    }
    Ok(())
}

async fn insert_contexts(
    txn: &DatabaseTransaction,
    account: AccountId,
    all: &[HashedContext],
    rows: &[&HashedContext],
    ids: &HashMap<String, i64>,
) -> Result<(), DbErr> {
    use event_contexts::Column as C;
    let mut insert = Query::insert();
    insert.into_table(event_contexts::Entity).columns([
        C::AccountId,
        C::ParentId,
        C::Hash,
        C::Body,
    ]);
    for row in rows {
        let parent_id = row
            .parent
            .and_then(|p| all.get(p))
            .and_then(|p| ids.get(&p.hash).copied());
        insert
            .values([
                account.0.into(),
                parent_id.into(),
                row.hash.clone().into(),
                row.body.clone().into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    // A concurrent request may have stored the same context: then its row serves both.
    insert.on_conflict(
        OnConflict::columns([C::AccountId, C::Hash])
            .do_nothing()
            .to_owned(),
    );
    txn.execute(&insert).await?;
    Ok(())
}

/// How a trace's summary takes in a batch's share (rows named `excluded`), in SQL that both
/// databases read alike: the earliest named event gives the name (on a tie the stored one
/// stays, as the older event has the lower id; SQLite compares the stored timestamps as text,
/// which orders them correctly: one format, one offset), the times widen, the counts add.
macro_rules! merge_summary {
    () => {
        "ON CONFLICT (account_id, trace_id) DO UPDATE SET \
  name = CASE WHEN excluded.name_at IS NOT NULL \
              AND (traces.name_at IS NULL OR excluded.name_at < traces.name_at) \
         THEN excluded.name ELSE traces.name END, \
  name_at = CASE WHEN excluded.name_at IS NOT NULL \
                 AND (traces.name_at IS NULL OR excluded.name_at < traces.name_at) \
            THEN excluded.name_at ELSE traces.name_at END, \
  started_at = CASE WHEN excluded.started_at < traces.started_at \
               THEN excluded.started_at ELSE traces.started_at END, \
  last_at = CASE WHEN excluded.last_at > traces.last_at \
            THEN excluded.last_at ELSE traces.last_at END, \
  event_count = traces.event_count + excluded.event_count"
    };
}

/// What the summaries need of one inserted event.
struct NewRow {
    id: i64,
    trace_id: Option<String>,
    timestamp: DateTime<Utc>,
    name: Option<String>,
}

/// Writes one job's events and their traces' summaries.
struct EventWriter<'a> {
    account: AccountId,
    api_key_id: Option<KeyId>,
    received_at: DateTime<Utc>,
    /// Row ids of the job's contexts, by index.
    context_ids: &'a [i64],
}

impl EventWriter<'_> {
    /// Inserts the events whose client id is new for the account, adds them to their traces'
    /// summaries, and returns how many were inserted. Duplicates are skipped and add nothing.
    async fn insert(&self, txn: &DatabaseTransaction, events: &[NewEvent]) -> Result<u64, DbErr> {
        match txn.get_database_backend() {
            DbBackend::Postgres if events.len() <= ROWS_PER_INSERT => {
                self.insert_and_summarise(txn, events).await
            }
            DbBackend::Postgres => {
                // Several statements: the summaries are written once, at the end, one row per
                // trace in trace order, so that concurrent requests lock the rows in the same
                // order (per-chunk summaries could lock them crosswise and deadlock).
                let mut new_rows = Vec::new();
                for chunk in events.chunks(ROWS_PER_INSERT) {
                    self.insert_returning(txn, chunk, &mut new_rows).await?;
                }
                let inserted = new_rows.len() as u64;
                update_traces(txn, self.account, new_rows).await?;
                Ok(inserted)
            }
            _ => {
                let mut inserted = 0;
                for chunk in events.chunks(ROWS_PER_INSERT) {
                    inserted += txn.execute(&self.statement(chunk)?).await?.rows_affected();
                }
                if inserted > 0 {
                    summarise_sqlite(txn, self.account, inserted).await?;
                }
                Ok(inserted)
            }
        }
    }

    /// The INSERT of `chunk`, skipping client ids the account has already.
    fn statement(&self, chunk: &[NewEvent]) -> Result<InsertStatement, DbErr> {
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
            E::ContextId,
        ]);
        for event in chunk {
            insert
                .values([
                    self.account.0.into(),
                    self.api_key_id.map(|k| k.0).into(),
                    event.client_event_id.clone().into(),
                    event.event_type.clone().into(),
                    event.trace_id.clone().into(),
                    event.name.clone().into(),
                    db_time(event.timestamp).into(),
                    event.body.clone().into(),
                    self.received_at.into(),
                    event
                        .context
                        .and_then(|c| self.context_ids.get(c).copied())
                        .into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        insert.on_conflict(
            OnConflict::columns([E::AccountId, E::ClientEventId])
                .do_nothing()
                .to_owned(),
        );
        Ok(insert)
    }

    /// PostgreSQL, one chunk: the events and their traces' summaries in one statement. The
    /// summaries are computed by the database from the rows the insert returns, so neither the
    /// rows nor the summaries travel to the client; the statement answers the number inserted.
    async fn insert_and_summarise(
        &self,
        txn: &DatabaseTransaction,
        events: &[NewEvent],
    ) -> Result<u64, DbErr> {
        use events::Column as E;
        let mut insert = self.statement(events)?;
        insert.returning(Query::returning().columns([
            E::AccountId,
            E::Id,
            E::TraceId,
            E::Timestamp,
            E::Name,
        ]));
        let Statement { sql, values, .. } = DbBackend::Postgres.build(&insert);
        // The insert's own text, with its own placeholders, inside a fixed frame that adds
        // none: the frame's values all come from the inserted rows.
        let sql = format!(
            "WITH inserted AS ({sql}), summarised AS ({SUMMARISE_INSERTED} RETURNING 1) \
             SELECT COUNT(*) AS n FROM inserted"
        );
        let row = txn
            .query_one_raw(Statement {
                sql,
                values,
                db_backend: DbBackend::Postgres,
            })
            .await?
            .ok_or_else(|| DbErr::Custom("the event insert returned no count".into()))?;
        let n: i64 = row.try_get("", "n")?;
        u64::try_from(n).map_err(|_| DbErr::Custom("the event insert counted below zero".into()))
    }

    /// PostgreSQL, one chunk of several: the events, returning what the summaries need.
    async fn insert_returning(
        &self,
        txn: &DatabaseTransaction,
        chunk: &[NewEvent],
        new_rows: &mut Vec<NewRow>,
    ) -> Result<(), DbErr> {
        use events::Column as E;
        let mut insert = self.statement(chunk)?;
        insert.returning(Query::returning().columns([E::Id, E::TraceId, E::Timestamp, E::Name]));
        for row in txn.query_all(&insert).await? {
            new_rows.push(NewRow {
                id: row.try_get("", "id")?,
                trace_id: row.try_get("", "trace_id")?,
                timestamp: row.try_get("", "timestamp")?,
                name: row.try_get("", "name")?,
            });
        }
        Ok(())
    }
}

/// PostgreSQL: adds the rows of `inserted` (a CTE of the rows an insert returned) to their
/// traces' summaries, one row per trace in trace id order. The earliest named event wins the
/// name, the older (lower id) on a tie, as [`update_traces`] does.
const SUMMARISE_INSERTED: &str = concat!(
    "\
INSERT INTO traces (account_id, trace_id, name, name_at, started_at, last_at, event_count) \
SELECT account_id, trace_id, \
       (array_agg(name ORDER BY timestamp, id) FILTER (WHERE name IS NOT NULL))[1], \
       MIN(timestamp) FILTER (WHERE name IS NOT NULL), \
       MIN(timestamp), MAX(timestamp), COUNT(*) \
FROM inserted WHERE trace_id IS NOT NULL GROUP BY account_id, trace_id ORDER BY trace_id \
",
    merge_summary!()
);

/// SQLite only: adds the `inserted` events just written (the largest ids: the writer is alone
/// and SQLite gives a new row the next id above all others) to their traces' summaries in one
/// statement, as [`update_traces`] does on PostgreSQL. The id range is a rowid range scan
/// (`+trace_id` keeps the planner off the trace index), and the earliest named event comes from
/// one `MIN` over a key that sorts as (timestamp, id): stored timestamps are RFC 3339 text
/// without spaces, ids are padded to 20 digits.
async fn summarise_sqlite(
    txn: &DatabaseTransaction,
    account: AccountId,
    inserted: u64,
) -> Result<(), DbErr> {
    const SQL: &str = concat!(
        "\
INSERT INTO traces (account_id, trace_id, name, name_at, started_at, last_at, event_count) \
SELECT ?, trace_id, substr(k, instr(k, ' ') + 22), substr(k, 1, instr(k, ' ') - 1), \
       started_at, last_at, n \
FROM (SELECT trace_id, MIN(timestamp) AS started_at, MAX(timestamp) AS last_at, \
             COUNT(*) AS n, \
             MIN(CASE WHEN name IS NOT NULL \
                      THEN timestamp || ' ' || printf('%020d', id) || ' ' || name END) AS k \
      FROM events WHERE id > (SELECT MAX(id) FROM events) - ? AND +trace_id IS NOT NULL \
      GROUP BY trace_id) \
WHERE true \
",
        merge_summary!()
    );
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        SQL,
        [
            account.0.into(),
            i64::try_from(inserted).unwrap_or(i64::MAX).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// One trace's share of a batch.
struct TraceDelta {
    started_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
    count: i64,
    /// The earliest named event: timestamp, id (for ties), name.
    named: Option<(DateTime<Utc>, i64, String)>,
}

/// Adds the inserted events to their traces' summaries: one upsert row per trace, in trace id
/// order (so that concurrent requests lock the rows in the same order).
async fn update_traces(
    txn: &DatabaseTransaction,
    account: AccountId,
    rows: Vec<NewRow>,
) -> Result<(), DbErr> {
    use traces::Column as T;
    let mut deltas: BTreeMap<String, TraceDelta> = BTreeMap::new();
    for row in rows {
        let Some(trace_id) = row.trace_id else {
            continue;
        };
        let named = row.name.map(|name| (row.timestamp, row.id, name));
        let delta = deltas.entry(trace_id).or_insert_with(|| TraceDelta {
            started_at: row.timestamp,
            last_at: row.timestamp,
            count: 0,
            named: None,
        });
        delta.started_at = Ord::min(delta.started_at, row.timestamp);
        delta.last_at = Ord::max(delta.last_at, row.timestamp);
        delta.count += 1;
        if let Some(named) = named
            && delta
                .named
                .as_ref()
                .is_none_or(|(at, id, _)| (named.0, named.1) < (*at, *id))
        {
            delta.named = Some(named);
        }
    }
    if deltas.is_empty() {
        return Ok(());
    }
    let deltas: Vec<(String, TraceDelta)> = deltas.into_iter().collect();
    for chunk in deltas.chunks(ROWS_PER_INSERT) {
        let mut upsert = Query::insert();
        upsert.into_table(traces::Entity).columns([
            T::AccountId,
            T::TraceId,
            T::Name,
            T::NameAt,
            T::StartedAt,
            T::LastAt,
            T::EventCount,
        ]);
        for (trace_id, delta) in chunk {
            let (name_at, name) = match &delta.named {
                Some((at, _, name)) => (Some(db_time(*at)), Some(name.clone())),
                None => (None, None),
            };
            upsert
                .values([
                    account.0.into(),
                    trace_id.clone().into(),
                    name.into(),
                    name_at.into(),
                    db_time(delta.started_at).into(),
                    db_time(delta.last_at).into(),
                    delta.count.into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        let Statement {
            mut sql, values, ..
        } = DbBackend::Postgres.build(&upsert);
        sql.push(' ');
        sql.push_str(merge_summary!());
        txn.execute_raw(Statement {
            sql,
            values,
            db_backend: DbBackend::Postgres,
        })
        .await?;
    }
    Ok(())
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
