//! The retention sweep: what the plans and settings no longer keep is deleted, a bounded batch
//! per transaction, by one replica at a time.
//!
//! - **Events** older than their account's plan keeps them. The sweep walks the events in id
//!   order, which is the order they were received in (give or take the commits in flight),
//!   from the oldest: each step reads one window of ids, and one statement deletes those of
//!   its rows past their plan's cutoff, reading the plan from the account row as it deletes. It
//!   stops at the first window received after the latest cutoff (nothing after it can be past
//!   any plan's), or at the end of the table. An account on a plan the configuration lacks
//!   keeps its events. The summaries of the traces they belonged to are brought back in line
//!   by index probes (a trace with no event left is no longer listed). Usage counts are never
//!   touched: an event counted in a month stays counted when it is deleted.
//! - **Contexts** that no event refers to any more (their `last_seen` day is past their plan's
//!   retention), in two phases (see `contexts`).
//! - **Audit entries** older than the audit log's retention.
//! - **Invitations** that ended: accepted, withdrawn or expired.
//! - **Deleted accounts**: all their data, table after table (see `closed`); the account row
//!   stays as the deletion's tombstone.
//!
//! The same rules run a one-off job (`span_fields`): OTLP spans stored before their tree and
//! outcome had columns get them, a batch per transaction, under a lease of its own.
//!
//! Only the replica holding the sweep's lease sweeps; the lease is renewed before each batch.
//! Each batch is one short write transaction, and the sweep pauses between them, so that
//! ingestion waits at most one batch (the longest is reported in [`Swept`]).

mod audit;
mod closed;
mod contexts;
mod events;
mod invitations;
mod lease;
mod span_fields;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentvista_quota::Plans;
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Value};

use crate::db::{begin_immediate, db_time, placeholders};
use crate::sql::statement;
use crate::{Store, StoreError};
use lease::Lease;
pub use span_fields::{Filled, SpanMapping};

/// How a sweep runs and what it keeps beyond the plans' retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    /// Rows read, and at most deleted, per transaction.
    pub batch: u64,
    /// Pause between two transactions, so that ingestion gets the database's writer.
    pub pause: Duration,
    /// How long audit entries are kept; `None`: for ever.
    pub audit_retention: Option<TimeDelta>,
    /// How long a context stays marked unreferenced before it may be deleted (an hour by
    /// default; shorter in tests).
    pub context_grace: Duration,
}

impl Default for Sweep {
    /// 1,000 rows a batch, 50 ms between batches, audit entries kept 400 days, contexts
    /// deleted an hour after they were found unreferenced.
    fn default() -> Self {
        Sweep {
            batch: 1000,
            pause: Duration::from_millis(50),
            audit_retention: Some(TimeDelta::days(400)),
            context_grace: Duration::from_secs(3600),
        }
    }
}

/// What a sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// `false` when another replica held the sweep's lease (then nothing was done), or this
    /// one lost it part-way (then the rest waits for the next sweep).
    pub completed: bool,
    /// Events read.
    pub scanned: u64,
    /// Events deleted.
    pub deleted: u64,
    /// Contexts deleted (unreferenced since at least the grace).
    pub contexts_deleted: u64,
    /// Audit entries deleted.
    pub audit_deleted: u64,
    /// Ended invitations deleted.
    pub invitations_deleted: u64,
    /// Rows of deleted accounts removed (events, traces, contexts, usage, audit entries,
    /// invitations, keys).
    pub closed_rows_deleted: u64,
    /// Write transactions it took.
    pub batches: u64,
    /// The longest of them, from `BEGIN` to commit: the longest ingestion waited on it.
    pub longest_transaction: Duration,
}

impl Swept {
    fn timed(&mut self, started: Instant) {
        self.batches += 1;
        self.longest_transaction = self.longest_transaction.max(started.elapsed());
    }
}

/// What [`Store::delete_in_batches`] deletes.
#[derive(Clone, Copy)]
enum Batched {
    /// Audit entries written before this time.
    AuditBefore(DateTime<Utc>),
    /// Invitations ended at this time.
    InvitationsEndedAt(DateTime<Utc>),
}

/// One window of events: where the next starts, and whether the walk is done.
struct Window {
    scanned: u64,
    deleted: u64,
    last_id: i64,
    done: bool,
}

impl Store {
    /// Deletes what is past retention at `now`: events under `plans`, contexts no event refers
    /// to, audit entries under `sweep.audit_retention`, invitations that ended, the data of
    /// deleted accounts. Does nothing (and says so in [`Swept::completed`]) while another
    /// replica sweeps.
    ///
    /// # Errors
    /// [`StoreError`] from the database; what was deleted before stays deleted.
    pub async fn sweep_retention(
        &self,
        plans: &Plans,
        now: DateTime<Utc>,
        sweep: &Sweep,
    ) -> Result<Swept, StoreError> {
        let lease = Lease::new(&self.write, "retention")?;
        if !lease.take().await? {
            tracing::debug!("retention: another replica is sweeping");
            return Ok(Swept::default());
        }
        let mut swept = Swept::default();
        let outcome = self
            .sweep_holding(&lease, plans, now, sweep, &mut swept)
            .await;
        // A lease left to expire only delays the next sweep: give it back even after an error.
        let released = lease.release().await;
        swept.completed = outcome?;
        released?;
        if swept.deleted
            + swept.contexts_deleted
            + swept.audit_deleted
            + swept.invitations_deleted
            + swept.closed_rows_deleted
            > 0
        {
            tracing::info!(
                events = swept.deleted,
                contexts = swept.contexts_deleted,
                audit_entries = swept.audit_deleted,
                invitations = swept.invitations_deleted,
                deleted_accounts_rows = swept.closed_rows_deleted,
                batches = swept.batches,
                longest_transaction_ms = swept.longest_transaction.as_millis() as u64,
                "retention: rows past their retention deleted"
            );
        }
        metrics::counter!("agentvista_events_deleted_by_retention_total").increment(swept.deleted);
        metrics::counter!("agentvista_contexts_deleted_by_retention_total")
            .increment(swept.contexts_deleted);
        metrics::counter!("agentvista_audit_entries_deleted_by_retention_total")
            .increment(swept.audit_deleted);
        Ok(swept)
    }

    /// The sweep's walks under `lease`; `false` if the lease was lost on the way.
    async fn sweep_holding(
        &self,
        lease: &Lease<'_>,
        plans: &Plans,
        now: DateTime<Utc>,
        sweep: &Sweep,
        swept: &mut Swept,
    ) -> Result<bool, StoreError> {
        let cutoffs: BTreeMap<String, DateTime<Utc>> = plans
            .retention_cutoffs(now)
            .map(|(name, at)| (name.to_owned(), db_time(at)))
            .collect();
        if let Some(latest) = cutoffs.values().max().copied() {
            let mut after = 0;
            loop {
                if !lease.take().await? {
                    return Ok(false);
                }
                let window = self.events_window(&cutoffs, latest, after, sweep.batch, swept);
                let window = window.await?;
                swept.scanned += window.scanned;
                swept.deleted += window.deleted;
                after = window.last_id;
                if window.done {
                    break;
                }
                self.pace(sweep.pause).await;
            }
        }
        let days = contexts::cutoff_days(&cutoffs);
        if let Some(latest) = days.values().max().copied() {
            let mut after = 0;
            loop {
                if !lease.take().await? {
                    return Ok(false);
                }
                let window = contexts::read_window(self.reader(), after, sweep.batch, latest);
                let window = window.await?;
                let Some(last) = window.last else { break };
                if window.old {
                    let started = Instant::now();
                    let txn = self.sweep_transaction().await?;
                    contexts::mark_window(&txn, &days, after, last).await?;
                    txn.commit().await?;
                    swept.timed(started);
                }
                after = last;
                if window.done {
                    break;
                }
                if window.old {
                    self.pace(sweep.pause).await;
                }
            }
            loop {
                if !lease.take().await? {
                    return Ok(false);
                }
                let due = contexts::due(self.reader(), sweep.context_grace, sweep.batch).await?;
                if due.is_empty() {
                    break;
                }
                let started = Instant::now();
                let txn = self.sweep_transaction().await?;
                let deleted = contexts::delete_due(&txn, &days, &due, sweep.context_grace);
                let deleted = deleted.await?;
                txn.commit().await?;
                swept.timed(started);
                swept.contexts_deleted += deleted;
                if (due.len() as u64) < sweep.batch.max(1) {
                    break;
                }
                self.pace(sweep.pause).await;
            }
        }
        if let Some(keep) = sweep.audit_retention {
            let cutoff = db_time(now - keep);
            let deleted = self.delete_in_batches(lease, sweep, swept, Batched::AuditBefore(cutoff));
            let Some(deleted) = deleted.await? else {
                return Ok(false);
            };
            swept.audit_deleted += deleted;
        }
        let deleted = self.delete_in_batches(lease, sweep, swept, Batched::InvitationsEndedAt(now));
        let Some(deleted) = deleted.await? else {
            return Ok(false);
        };
        swept.invitations_deleted += deleted;
        for account in closed::pending(self.reader()).await? {
            loop {
                if !lease.take().await? {
                    return Ok(false);
                }
                let started = Instant::now();
                let txn = self.sweep_transaction().await?;
                let deleted = closed::purge_batch(&txn, account, limit(sweep.batch), now);
                let deleted = deleted.await?;
                txn.commit().await?;
                swept.timed(started);
                swept.closed_rows_deleted += deleted;
                if deleted == 0 {
                    break;
                }
                self.pace(sweep.pause).await;
            }
        }
        Ok(true)
    }

    /// Deletes `what` a batch (`sweep.batch` rows) per transaction, pausing between them,
    /// until a batch comes out short: the rows deleted, or `None` if the lease was lost on
    /// the way.
    async fn delete_in_batches(
        &self,
        lease: &Lease<'_>,
        sweep: &Sweep,
        swept: &mut Swept,
        what: Batched,
    ) -> Result<Option<u64>, StoreError> {
        let mut total = 0;
        loop {
            if !lease.take().await? {
                return Ok(None);
            }
            let started = Instant::now();
            let txn = self.sweep_transaction().await?;
            let deleted = match what {
                Batched::AuditBefore(cutoff) => {
                    audit::delete_oldest(&txn, cutoff, sweep.batch).await?
                }
                Batched::InvitationsEndedAt(now) => {
                    invitations::delete_ended(&txn, now, sweep.batch).await?
                }
            };
            txn.commit().await?;
            swept.timed(started);
            total += deleted;
            if deleted < sweep.batch.max(1) {
                return Ok(Some(total));
            }
            self.pace(sweep.pause).await;
        }
    }

    /// A write transaction of the sweep. On PostgreSQL its statements are planned for their
    /// values every time: a cached generic plan of `trace_id IN ($2, …)` may scan the whole
    /// table when its statistics are stale, and turn a batch of milliseconds into seconds.
    async fn sweep_transaction(&self) -> Result<DatabaseTransaction, DbErr> {
        let txn = begin_immediate(&self.write).await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
                .await?;
        }
        Ok(txn)
    }

    async fn pace(&self, pause: Duration) {
        if !pause.is_zero() {
            // Pacing, not synchronisation: let ingestion have the writer between batches.
            tokio::time::sleep(pause).await;
        }
    }

    /// One window: reads up to `batch` event ids after `after` (outside any write
    /// transaction, so that a window with nothing old enough takes no lock), then deletes
    /// those past their plan's cutoff in one transaction.
    async fn events_window(
        &self,
        cutoffs: &BTreeMap<String, DateTime<Utc>>,
        latest: DateTime<Utc>,
        after: i64,
        batch: u64,
        swept: &mut Swept,
    ) -> Result<Window, DbErr> {
        let reader = self.reader();
        let rows = reader
            .query_all_raw(statement(
                reader.get_database_backend(),
                "SELECT id, received_at FROM events WHERE id > $1 ORDER BY id LIMIT $2",
                [after.into(), limit(batch).into()],
            ))
            .await?;
        let scanned = rows.len() as u64;
        let mut last_id = after;
        let mut oldest: Option<DateTime<Utc>> = None;
        let mut newest: Option<DateTime<Utc>> = None;
        for row in &rows {
            last_id = row.try_get("", "id")?;
            let received: DateTime<Utc> = row.try_get("", "received_at")?;
            oldest = Some(oldest.map_or(received, |o| o.min(received)));
            newest = Some(newest.map_or(received, |n| n.max(received)));
        }
        let mut deleted = 0;
        if oldest.is_some_and(|at| at < latest) {
            let started = Instant::now();
            let txn = self.sweep_transaction().await?;
            deleted = events::delete_window(&txn, cutoffs, after, last_id).await?;
            txn.commit().await?;
            swept.timed(started);
        }
        let done = scanned < batch.max(1) || newest.is_none_or(|at| at >= latest);
        Ok(Window {
            scanned,
            deleted,
            last_id,
            done,
        })
    }
}

/// Placeholders from `$first` for `values`, and the values.
fn in_list(first: usize, values: impl Iterator<Item = Value>) -> (String, Vec<Value>) {
    let values: Vec<Value> = values.collect();
    (placeholders(first, values.len()), values)
}

/// The events of the summary row being updated (`traces`), aliased `e`, for subqueries.
const OF_TRACE: &str = "FROM events e WHERE e.account_id = traces.account_id \
                        AND e.trace_id = traces.trace_id";

/// PostgreSQL: locks the summary rows of `account`'s traces in `list` (placeholders from `$2`,
/// `values` the account and then the trace ids), in trace order as ingestion locks them, so
/// that an ingestion adding to one of them waits and then adds to the row as rewritten. SQLite's
/// one writer needs no lock.
async fn lock_summaries(
    txn: &impl ConnectionTrait,
    list: &str,
    values: Vec<Value>,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        txn.query_all_raw(statement(
            backend,
            &format!(
                "SELECT trace_id FROM traces WHERE account_id = $1 AND trace_id IN ({list}) \
                 ORDER BY trace_id FOR UPDATE"
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

/// `batch` as a `LIMIT`: at least one row.
fn limit(batch: u64) -> i64 {
    i64::try_from(batch.max(1)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_number_their_placeholders_from_the_first_given() {
        let (sql, values) = in_list(3, [1i64, 2, 3].into_iter().map(Value::from));
        assert_eq!(sql, "$3, $4, $5");
        assert_eq!(values.len(), 3);
    }
}
