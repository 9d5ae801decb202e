//! Retention: events older than their account's plan keeps them are deleted, a bounded batch
//! per transaction, and the summaries of the traces they belonged to are brought back in line
//! (a trace with no event left is no longer listed). Usage counts are never touched: an event
//! counted in a month stays counted when it is deleted.
//!
//! A sweep walks the events in id order, which is the order they were received in (give or
//! take the commits in flight), from the oldest: each step reads one batch of ids and deletes
//! those of its rows that are past their plan's cutoff, in a transaction of its own. It stops
//! at the first batch received after the latest cutoff (nothing after it can be past any
//! plan's), or at the end of the table. An account on a plan the configuration lacks keeps its
//! events.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use agentvista_quota::Plans;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Value};

use crate::changes::statement;
use crate::db::{begin_immediate, db_time};
use crate::{Store, StoreError};

/// What a sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Events read.
    pub scanned: u64,
    /// Events deleted.
    pub deleted: u64,
    /// Transactions (batches) it took.
    pub batches: u64,
}

/// One batch's outcome: where the next starts, and whether the sweep is done.
struct Step {
    scanned: u64,
    deleted: u64,
    last_id: i64,
    done: bool,
}

impl Store {
    /// Deletes the events past retention at `now` under `plans`, `batch` at most per
    /// transaction, pausing `pause` between transactions so that ingestion is never held up
    /// by more than one batch.
    ///
    /// # Errors
    /// [`StoreError`] from the database; what was deleted before stays deleted.
    pub async fn sweep_retention(
        &self,
        plans: &Plans,
        now: DateTime<Utc>,
        batch: u64,
        pause: Duration,
    ) -> Result<Swept, StoreError> {
        let cutoffs: BTreeMap<String, DateTime<Utc>> = plans
            .retention_cutoffs(now)
            .map(|(name, at)| (name.to_owned(), db_time(at)))
            .collect();
        let Some(latest) = cutoffs.values().max().copied() else {
            return Ok(Swept::default());
        };
        let mut swept = Swept::default();
        let mut after = 0;
        loop {
            let step = self.retention_step(&cutoffs, latest, after, batch).await?;
            swept.scanned += step.scanned;
            swept.deleted += step.deleted;
            swept.batches += 1;
            after = step.last_id;
            if step.done {
                break;
            }
            if !pause.is_zero() {
                // Pacing, not synchronisation: let ingestion have the writer between batches.
                tokio::time::sleep(pause).await;
            }
        }
        if swept.deleted > 0 {
            tracing::info!(
                deleted = swept.deleted,
                batches = swept.batches,
                "retention: events past their plan's retention deleted"
            );
        }
        metrics::counter!("agentvista_events_deleted_by_retention_total").increment(swept.deleted);
        Ok(swept)
    }

    /// One batch: reads up to `batch` events after id `after`, then, in one transaction, deletes
    /// those past their plan's cutoff and repairs their traces' summaries. (An event read past
    /// its cutoff stays past it; deleting one twice, from two replicas, deletes it once.)
    async fn retention_step(
        &self,
        cutoffs: &BTreeMap<String, DateTime<Utc>>,
        latest: DateTime<Utc>,
        after: i64,
        batch: u64,
    ) -> Result<Step, StoreError> {
        // Read outside any write transaction: a batch with nothing to delete takes no lock.
        let reader = self.reader();
        let backend = reader.get_database_backend();
        let rows = reader
            .query_all_raw(statement(
                backend,
                "SELECT e.id, e.account_id, e.trace_id, e.received_at, a.plan \
                 FROM events e JOIN accounts a ON a.id = e.account_id \
                 WHERE e.id > $1 ORDER BY e.id LIMIT $2",
                [
                    after.into(),
                    i64::try_from(batch.max(1)).unwrap_or(i64::MAX).into(),
                ],
            ))
            .await?;
        let scanned = rows.len() as u64;
        let mut doomed: Vec<i64> = Vec::new();
        let mut traces: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        let mut last_id = after;
        let mut last_received = None;
        for row in &rows {
            let id: i64 = row.try_get("", "id")?;
            let received_at: DateTime<Utc> = row.try_get("", "received_at")?;
            let plan: String = row.try_get("", "plan")?;
            last_id = id;
            last_received = Some(received_at);
            if cutoffs
                .get(&plan)
                .is_some_and(|cutoff| received_at < *cutoff)
            {
                doomed.push(id);
                let trace: Option<String> = row.try_get("", "trace_id")?;
                if let Some(trace) = trace {
                    let account: i64 = row.try_get("", "account_id")?;
                    traces.entry(account).or_default().insert(trace);
                }
            }
        }
        if !doomed.is_empty() {
            let txn = begin_immediate(&self.write).await?;
            let (sql, values) = in_list(
                "DELETE FROM events WHERE id IN (",
                1,
                doomed.iter().map(|&id| id.into()),
            );
            txn.execute_raw(statement(backend, &format!("{sql})"), values))
                .await?;
            for (account, trace_ids) in &traces {
                repair_summaries(&txn, *account, trace_ids).await?;
            }
            txn.commit().await?;
        }
        let done = scanned < batch.max(1) || last_received.is_none_or(|at| at >= latest);
        Ok(Step {
            scanned,
            deleted: doomed.len() as u64,
            last_id,
            done,
        })
    }
}

/// `head` followed by `$first, $first+1, …` for `values`, and the values.
fn in_list(head: &str, first: usize, values: impl Iterator<Item = Value>) -> (String, Vec<Value>) {
    let mut sql = String::from(head);
    let mut out = Vec::new();
    for (i, value) in values.enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("${}", first + i));
        out.push(value);
    }
    (sql, out)
}

/// Brings the summaries of `trace_ids` of `account` back in line with the events left: a
/// trace with none is deleted (no longer listed), the others are computed again from theirs.
/// On PostgreSQL the summary rows are locked first, in trace order as ingestion locks them, so
/// that an ingestion adding to one of these traces waits and then adds to the repaired row.
async fn repair_summaries(
    txn: &impl ConnectionTrait,
    account: i64,
    trace_ids: &BTreeSet<String>,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let ids = || trace_ids.iter().map(|t| Value::from(t.as_str()));
    let values = |rest: Vec<Value>| -> Vec<Value> {
        std::iter::once(Value::from(account)).chain(rest).collect()
    };
    let (list, rest) = in_list("", 2, ids());
    if backend == DbBackend::Postgres {
        txn.query_all_raw(statement(
            backend,
            &format!(
                "SELECT trace_id FROM traces WHERE account_id = $1 AND trace_id IN ({list}) \
                 ORDER BY trace_id FOR UPDATE"
            ),
            values(rest.clone()),
        ))
        .await?;
    }
    txn.execute_raw(statement(
        backend,
        &format!(
            "DELETE FROM traces WHERE account_id = $1 AND trace_id IN ({list}) \
             AND NOT EXISTS (SELECT 1 FROM events e \
                             WHERE e.account_id = traces.account_id \
                               AND e.trace_id = traces.trace_id)"
        ),
        values(rest.clone()),
    ))
    .await?;
    let of_trace = "FROM events e WHERE e.account_id = traces.account_id \
                    AND e.trace_id = traces.trace_id";
    let first_named =
        format!("{of_trace} AND e.name IS NOT NULL ORDER BY e.timestamp, e.id LIMIT 1");
    txn.execute_raw(statement(
        backend,
        &format!(
            "UPDATE traces SET \
               event_count = (SELECT COUNT(*) {of_trace}), \
               started_at = (SELECT MIN(e.timestamp) {of_trace}), \
               last_at = (SELECT MAX(e.timestamp) {of_trace}), \
               name = (SELECT e.name {first_named}), \
               name_at = (SELECT e.timestamp {first_named}) \
             WHERE account_id = $1 AND trace_id IN ({list})"
        ),
        values(rest),
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_number_their_placeholders_from_the_first_given() {
        let (sql, values) = in_list("x IN (", 3, [1i64, 2, 3].into_iter().map(Value::from));
        assert_eq!(sql, "x IN ($3, $4, $5");
        assert_eq!(values.len(), 3);
    }
}
