//! One batch of events past retention: deleted by a statement that reads each event's plan
//! from its account row, then the summaries of their traces repaired by index probes (never a
//! recount of a whole trace under the write lock).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{OF_TRACE, in_list, lock_summaries};
use crate::sql::statement;

/// What the deleting statement returned of one event.
struct Gone {
    account: i64,
    trace: Option<String>,
    named: bool,
    end_time: Option<DateTime<Utc>>,
    error: bool,
    status: bool,
    /// Input and output tokens.
    usage: Option<(i64, i64)>,
}

/// Traces repaired per statement.
const TRACES_PER_REPAIR: usize = 2000;

/// What one trace lost: its events, whether a named one was among them, and their share of
/// the trace's outcome.
#[derive(Default)]
struct Lost {
    events: i64,
    named: bool,
    latest_end: Option<DateTime<Utc>>,
    errors: i64,
    statuses: i64,
    usages: i64,
    input_tokens: i64,
    output_tokens: i64,
}

/// Deletes the events with ids in `(after, upto]` received before their plan's cutoff (an
/// account on a plan `cutoffs` lacks keeps its events) and repairs their traces; returns how
/// many it deleted.
pub(super) async fn delete_window(
    txn: &impl ConnectionTrait,
    cutoffs: &BTreeMap<String, DateTime<Utc>>,
    after: i64,
    upto: i64,
) -> Result<u64, DbErr> {
    let backend = txn.get_database_backend();
    let mut values: Vec<Value> = vec![after.into(), upto.into()];
    let mut case = String::from("CASE a.plan");
    for (plan, cutoff) in cutoffs {
        let n = values.len();
        case.push_str(&format!(" WHEN ${} THEN ${}", n + 1, n + 2));
        values.push(plan.as_str().into());
        values.push((*cutoff).into());
    }
    case.push_str(" END");
    let rows = txn
        .query_all_raw(statement(
            backend,
            &format!(
                "DELETE FROM events WHERE id > $1 AND id <= $2 \
                 AND received_at < (SELECT {case} FROM accounts a WHERE a.id = events.account_id) \
                 RETURNING account_id, trace_id, name, end_time, status, input_tokens, \
                 output_tokens"
            ),
            values,
        ))
        .await?;
    let mut gone = Vec::with_capacity(rows.len());
    for row in &rows {
        let status: Option<String> = row.try_get("", "status")?;
        let input: Option<i64> = row.try_get("", "input_tokens")?;
        let output: Option<i64> = row.try_get("", "output_tokens")?;
        gone.push(Gone {
            account: row.try_get("", "account_id")?,
            trace: row.try_get("", "trace_id")?,
            named: row.try_get::<Option<String>>("", "name")?.is_some(),
            end_time: row.try_get("", "end_time")?,
            error: status.as_deref() == Some("error"),
            status: status.is_some(),
            usage: input.map(|input| (input, output.unwrap_or(0))),
        });
    }
    // Per account: what each trace lost.
    let mut traces: BTreeMap<i64, BTreeMap<&str, Lost>> = BTreeMap::new();
    for g in &gone {
        if let Some(trace) = &g.trace {
            let lost = traces
                .entry(g.account)
                .or_default()
                .entry(trace.as_str())
                .or_default();
            lost.events += 1;
            lost.named |= g.named;
            lost.latest_end = Ord::max(lost.latest_end, g.end_time);
            lost.errors += i64::from(g.error);
            lost.statuses += i64::from(g.status);
            if let Some((input, output)) = g.usage {
                lost.usages += 1;
                lost.input_tokens = lost.input_tokens.saturating_add(input);
                lost.output_tokens = lost.output_tokens.saturating_add(output);
            }
        }
    }
    for (account, gone) in &traces {
        // A statement's values stay far below both databases' limits (13 per trace at most).
        let gone: Vec<_> = gone.iter().collect();
        for chunk in gone.chunks(TRACES_PER_REPAIR) {
            let chunk: BTreeMap<&str, &Lost> = chunk.iter().map(|(t, l)| (**t, *l)).collect();
            repair_summaries(txn, *account, &chunk).await?;
        }
    }
    Ok(gone.len() as u64)
}

/// Brings the summaries of the traces `gone` (trace id → what it lost) of `account` back in
/// line with the events left: a trace with none is deleted (no longer listed); the others lose
/// the counts and tokens deleted and take their first and last timestamps, and when a named
/// event went their name, from index probes. When the event that ended a trace last may be
/// gone, its end is read again from the events left: a read of that trace's rows, which only a
/// trace received across the retention cutoff pays.
/// On PostgreSQL the summary rows are locked first, in trace order as ingestion locks them, so
/// that an ingestion adding to one of these traces waits and then adds to the repaired row.
async fn repair_summaries(
    txn: &impl ConnectionTrait,
    account: i64,
    gone: &BTreeMap<&str, &Lost>,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let with_account = |rest: Vec<Value>| -> Vec<Value> {
        std::iter::once(Value::from(account)).chain(rest).collect()
    };
    let (list, ids) = in_list(2, gone.keys().map(|t| Value::from(*t)));
    lock_summaries(txn, &list, with_account(ids.clone())).await?;
    let of_trace = OF_TRACE;
    txn.execute_raw(statement(
        backend,
        &format!(
            "DELETE FROM traces WHERE account_id = $1 AND trace_id IN ({list}) \
             AND NOT EXISTS (SELECT 1 {of_trace})"
        ),
        with_account(ids.clone()),
    ))
    .await?;
    // `event_count - CASE trace_id WHEN … THEN <deleted> … END`, and so for each count, one
    // statement per account.
    let mut values = with_account(ids);
    let mut minus = |lost: fn(&Lost) -> i64| {
        let mut case = String::from("CASE trace_id");
        for (trace, gone) in gone.iter().filter(|(_, gone)| lost(gone) != 0) {
            let at = values.len();
            case.push_str(&format!(" WHEN ${} THEN ${}", at + 1, at + 2));
            values.push((*trace).into());
            values.push(lost(gone).into());
        }
        if case.len() == "CASE trace_id".len() {
            // No trace lost any of this count.
            return "0".to_owned();
        }
        case.push_str(" ELSE 0 END");
        case
    };
    let counts = [
        ("event_count", minus(|l| l.events)),
        ("error_count", minus(|l| l.errors)),
        ("status_count", minus(|l| l.statuses)),
        ("usage_count", minus(|l| l.usages)),
        ("input_tokens", minus(|l| l.input_tokens)),
        ("output_tokens", minus(|l| l.output_tokens)),
    ]
    .map(|(column, case)| format!("{column} = {column} - {case}, "))
    .concat();
    txn.execute_raw(statement(
        backend,
        &format!(
            "UPDATE traces SET {counts}\
               started_at = (SELECT e.timestamp {of_trace} ORDER BY e.timestamp LIMIT 1), \
               last_at = (SELECT e.timestamp {of_trace} ORDER BY e.timestamp DESC LIMIT 1) \
             WHERE account_id = $1 AND trace_id IN ({list})"
        ),
        values,
    ))
    .await?;
    // The name moves only if the event that gave it may be gone; the scan for the first named
    // event starts at the trace's first event, in the index's order.
    let renamed: Vec<Value> = gone
        .iter()
        .filter(|(_, lost)| lost.named)
        .map(|(trace, _)| Value::from(*trace))
        .collect();
    if !renamed.is_empty() {
        let (list, ids) = in_list(2, renamed.into_iter());
        let first_named =
            format!("{of_trace} AND e.name IS NOT NULL ORDER BY e.timestamp, e.id LIMIT 1");
        txn.execute_raw(statement(
            backend,
            &format!(
                "UPDATE traces SET \
                   name = (SELECT e.name {first_named}), \
                   name_at = (SELECT e.timestamp {first_named}) \
                 WHERE account_id = $1 AND trace_id IN ({list})"
            ),
            with_account(ids),
        ))
        .await?;
    }
    // The end moves only where a deleted event ended at or after the trace's end as stored.
    let mut values = vec![Value::from(account)];
    let mut latest = String::from("CASE trace_id");
    for (trace, end) in gone.iter().filter_map(|(t, l)| Some((*t, l.latest_end?))) {
        let at = values.len();
        latest.push_str(&format!(" WHEN ${} THEN ${}", at + 1, at + 2));
        values.push(trace.into());
        values.push(end.into());
    }
    if values.len() > 1 {
        let (list, ids) = in_list(
            values.len() + 1,
            gone.iter()
                .filter(|(_, l)| l.latest_end.is_some())
                .map(|(t, _)| Value::from(*t)),
        );
        values.extend(ids);
        txn.execute_raw(statement(
            backend,
            &format!(
                "UPDATE traces SET ended_at = (SELECT MAX(e.end_time) {of_trace}) \
                 WHERE account_id = $1 AND trace_id IN ({list}) \
                 AND ended_at <= {latest} END"
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}
