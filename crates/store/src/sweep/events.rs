//! One batch of events past retention: deleted by a statement that reads each event's plan
//! from its account row, then the summaries of their traces repaired by index probes (never a
//! recount of a whole trace under the write lock).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Value};

use super::in_list;
use crate::sql::statement;

/// What the deleting statement returned of one event.
struct Gone {
    account: i64,
    trace: Option<String>,
    named: bool,
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
                 RETURNING account_id, trace_id, name"
            ),
            values,
        ))
        .await?;
    let mut gone = Vec::with_capacity(rows.len());
    for row in &rows {
        gone.push(Gone {
            account: row.try_get("", "account_id")?,
            trace: row.try_get("", "trace_id")?,
            named: row.try_get::<Option<String>>("", "name")?.is_some(),
        });
    }
    // Per account: events gone per trace, and whether a named one was among them.
    let mut traces: BTreeMap<i64, BTreeMap<&str, (i64, bool)>> = BTreeMap::new();
    for g in &gone {
        if let Some(trace) = &g.trace {
            let entry = traces
                .entry(g.account)
                .or_default()
                .entry(trace.as_str())
                .or_default();
            entry.0 += 1;
            entry.1 |= g.named;
        }
    }
    for (account, gone) in &traces {
        repair_summaries(txn, *account, gone).await?;
    }
    Ok(gone.len() as u64)
}

/// Brings the summaries of the traces `gone` (trace id → events deleted, whether one was
/// named) of `account` back in line with the events left: a trace with none is deleted (no
/// longer listed); the others lose the count deleted and take their first and last
/// timestamps, and when a named event went their name, from index probes.
/// On PostgreSQL the summary rows are locked first, in trace order as ingestion locks them, so
/// that an ingestion adding to one of these traces waits and then adds to the repaired row.
async fn repair_summaries(
    txn: &impl ConnectionTrait,
    account: i64,
    gone: &BTreeMap<&str, (i64, bool)>,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let with_account = |rest: Vec<Value>| -> Vec<Value> {
        std::iter::once(Value::from(account)).chain(rest).collect()
    };
    let (list, ids) = in_list(2, gone.keys().map(|t| Value::from(*t)));
    if backend == DbBackend::Postgres {
        txn.query_all_raw(statement(
            backend,
            &format!(
                "SELECT trace_id FROM traces WHERE account_id = $1 AND trace_id IN ({list}) \
                 ORDER BY trace_id FOR UPDATE"
            ),
            with_account(ids.clone()),
        ))
        .await?;
    }
    let of_trace = "FROM events e WHERE e.account_id = traces.account_id \
                    AND e.trace_id = traces.trace_id";
    txn.execute_raw(statement(
        backend,
        &format!(
            "DELETE FROM traces WHERE account_id = $1 AND trace_id IN ({list}) \
             AND NOT EXISTS (SELECT 1 {of_trace})"
        ),
        with_account(ids.clone()),
    ))
    .await?;
    // `event_count - CASE trace_id WHEN … THEN <deleted> … END`, one statement per account.
    let mut values = with_account(ids);
    let mut minus = String::from("CASE trace_id");
    for (trace, (n, _)) in gone {
        let at = values.len();
        minus.push_str(&format!(" WHEN ${} THEN ${}", at + 1, at + 2));
        values.push((*trace).into());
        values.push((*n).into());
    }
    minus.push_str(" ELSE 0 END");
    txn.execute_raw(statement(
        backend,
        &format!(
            "UPDATE traces SET \
               event_count = event_count - {minus}, \
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
        .filter(|(_, (_, named))| *named)
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
    Ok(())
}
