//! The span-fields job: OTLP spans stored before their parent, end, status, model and usage had
//! columns get them, from their stored bodies, by the mapping ingestion uses (given by the
//! caller: the mapping belongs to the decoder, not to the store), and their traces' summaries
//! are recomputed. Under the sweep's rules: a lease of its own, a bounded batch per short
//! transaction, a pause between them, and its progress kept in the database (`backfills`), so
//! that a stopped server, or another replica, goes on where it left off.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::lease::Lease;
use super::{OF_TRACE, Sweep, in_list, limit, lock_summaries};
use crate::sql::statement;
use crate::{SpanFields, Store, StoreError};

/// The job's name: its row of `backfills` and of `sweeps`.
const JOB: &str = "span_fields";

/// What [`Store::fill_span_fields`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filled {
    /// `false` when another replica held the job's lease (then nothing was done here), or this
    /// one lost it part-way.
    pub completed: bool,
    /// Whether every event the job was created for has been read: nothing is left to do.
    pub done: bool,
    /// Events read.
    pub scanned: u64,
    /// Events given fields.
    pub filled: u64,
    /// Write transactions it took.
    pub batches: u64,
}

/// The mapping from a stored span (its trace id and its own body) to its fields.
pub type SpanMapping = dyn Fn(&str, &serde_json::Value) -> SpanFields + Send + Sync;

/// One stored OTLP span the job reads.
struct Stored {
    id: i64,
    account: i64,
    trace: Option<String>,
    body: Option<String>,
}

impl Store {
    /// Fills the span fields of the OTLP spans stored before they had columns, `sweep.batch`
    /// events per transaction with `sweep.pause` between, until none is left or another
    /// replica holds the job's lease. Spans already given fields are never written again: the
    /// job only reads events up to the last one stored before its migration.
    ///
    /// # Errors
    /// [`StoreError`] from the database; what was filled before stays filled, and the next run
    /// goes on from there.
    pub async fn fill_span_fields(
        &self,
        sweep: &Sweep,
        map: &SpanMapping,
    ) -> Result<Filled, StoreError> {
        let lease = Lease::new(&self.write, JOB)?;
        if !lease.take().await? {
            return Ok(Filled::default());
        }
        let mut filled = Filled::default();
        let outcome = self.fill_holding(&lease, sweep, map, &mut filled).await;
        let released = lease.release().await;
        filled.completed = outcome?;
        released?;
        if filled.filled > 0 {
            tracing::info!(
                events = filled.filled,
                batches = filled.batches,
                done = filled.done,
                "span fields: stored OTLP spans given their parent, end, status, model and usage"
            );
        }
        Ok(filled)
    }

    async fn fill_holding(
        &self,
        lease: &Lease<'_>,
        sweep: &Sweep,
        map: &SpanMapping,
        filled: &mut Filled,
    ) -> Result<bool, StoreError> {
        loop {
            if !lease.take().await? {
                return Ok(false);
            }
            let backend = self.write.get_database_backend();
            let progress = self
                .write
                .query_one_raw(statement(
                    backend,
                    "SELECT after_id, upto_id FROM backfills WHERE name = $1",
                    [JOB.into()],
                ))
                .await?;
            let Some(progress) = progress else {
                filled.done = true;
                return Ok(true);
            };
            let after: i64 = progress.try_get("", "after_id")?;
            let upto: i64 = progress.try_get("", "upto_id")?;
            if after >= upto {
                filled.done = true;
                return Ok(true);
            }
            let rows = self
                .reader()
                .query_all_raw(statement(
                    backend,
                    "SELECT id, account_id, trace_id, CAST(body AS TEXT) AS body FROM events \
                     WHERE id > $1 AND id <= $2 AND event_type = 'span' \
                     AND context_id IS NOT NULL ORDER BY id LIMIT $3",
                    [after.into(), upto.into(), limit(sweep.batch).into()],
                ))
                .await?;
            let mut spans = Vec::with_capacity(rows.len());
            for row in &rows {
                spans.push(Stored {
                    id: row.try_get("", "id")?,
                    account: row.try_get("", "account_id")?,
                    trace: row.try_get("", "trace_id")?,
                    body: row.try_get("", "body")?,
                });
            }
            let full = spans.len() as u64 >= sweep.batch.max(1);
            let reached = match spans.last() {
                Some(last) if full => last.id,
                _ => upto,
            };
            let fields: Vec<(&Stored, SpanFields)> = spans
                .iter()
                .filter_map(|span| {
                    let trace = span.trace.as_deref()?;
                    let body: serde_json::Value =
                        serde_json::from_str(span.body.as_deref()?).ok()?;
                    let fields = map(trace, &body);
                    (fields != SpanFields::default()).then_some((span, fields))
                })
                .collect();
            let started = Instant::now();
            let txn = self.sweep_transaction().await?;
            for (span, fields) in &fields {
                write_fields(&txn, span.id, fields).await?;
            }
            let mut traces: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
            for (span, _) in &fields {
                if let Some(trace) = span.trace.as_deref() {
                    traces.entry(span.account).or_default().insert(trace);
                }
            }
            for (account, traces) in &traces {
                recompute(&txn, *account, traces).await?;
            }
            txn.execute_raw(statement(
                backend,
                "UPDATE backfills SET after_id = $1 WHERE name = $2 AND after_id = $3",
                [reached.into(), JOB.into(), after.into()],
            ))
            .await?;
            txn.commit().await?;
            filled.batches += 1;
            tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "span fields: one batch"
            );
            filled.scanned += spans.len() as u64;
            filled.filled += fields.len() as u64;
            self.pace(sweep.pause).await;
        }
    }
}

/// Gives one stored span its fields, unless it has some already.
async fn write_fields(
    txn: &impl ConnectionTrait,
    id: i64,
    fields: &SpanFields,
) -> Result<(), DbErr> {
    txn.execute_raw(statement(
        txn.get_database_backend(),
        "UPDATE events SET parent_id = $1, end_time = $2, status = $3, status_message = $4, \
         model = $5, input_tokens = $6, output_tokens = $7 \
         WHERE id = $8 AND parent_id IS NULL AND end_time IS NULL AND status IS NULL \
         AND model IS NULL AND input_tokens IS NULL",
        SpanFields::column_values(Some(fields))
            .into_iter()
            .chain([id.into()])
            .collect::<Vec<_>>(),
    ))
    .await?;
    Ok(())
}

/// Recomputes the outcome of `traces` of `account` from their events: a read of each trace's
/// rows, which this one-off job pays once. On PostgreSQL the summary rows are locked first, in
/// trace order as ingestion locks them, so that a request adding to one of them waits and then
/// adds to the recomputed row.
async fn recompute(
    txn: &impl ConnectionTrait,
    account: i64,
    traces: &BTreeSet<&str>,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let (list, ids) = in_list(2, traces.iter().map(|t| Value::from(*t)));
    let values: Vec<Value> = std::iter::once(Value::from(account)).chain(ids).collect();
    lock_summaries(txn, &list, values.clone()).await?;
    let of_trace = OF_TRACE;
    txn.execute_raw(statement(
        backend,
        &format!(
            "UPDATE traces SET \
               ended_at = (SELECT MAX(e.end_time) {of_trace}), \
               error_count = (SELECT COUNT(*) {of_trace} AND e.status = 'error'), \
               status_count = (SELECT COUNT(e.status) {of_trace}), \
               usage_count = (SELECT COUNT(e.input_tokens) {of_trace}), \
               input_tokens = (SELECT COALESCE(SUM(e.input_tokens), 0) {of_trace}), \
               output_tokens = (SELECT COALESCE(SUM(e.output_tokens), 0) {of_trace}) \
             WHERE account_id = $1 AND trace_id IN ({list})"
        ),
        values,
    ))
    .await?;
    Ok(())
}
