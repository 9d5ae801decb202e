//! Contexts no event refers to any more, removed in two phases so that an ingestion that
//! reuses one never points at a deleted row.
//!
//! Ingestion raises a context's `last_seen` to the day of every job that refers to it, so a
//! context whose `last_seen` is before its plan's cutoff day has no event left once the events
//! past retention are gone (no index of events by context is needed, nor any write per event).
//! A day's margin covers replicas whose clocks disagree.
//!
//! 1. A walk over the contexts marks (`orphaned_at`, on the database's clock) those past their
//!    plan's cutoff day that no other context adds to.
//! 2. A later phase deletes those marked at least the grace ago that still are past the cutoff
//!    and childless, and clears the mark of the others.
//!
//! An ingestion that reuses a context raises its day and clears its mark in its own
//! transaction (and stores it again if the row is gone), so a context in use is never deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{in_list, limit};
use crate::sql::{now_ms_sql, statement};

/// The day before which a context of each plan has no event left: the plan's cutoff day,
/// less a day's margin.
pub(super) fn cutoff_days(
    cutoffs: &BTreeMap<String, DateTime<Utc>>,
) -> BTreeMap<String, NaiveDate> {
    cutoffs
        .iter()
        .map(|(plan, at)| (plan.clone(), at.date_naive() - TimeDelta::days(1)))
        .collect()
}

/// `(SELECT CASE a.plan WHEN $k THEN $k+1 … END FROM accounts a WHERE a.id = …account_id)`:
/// the cutoff day of the row's account (NULL, so never past it, for a plan not configured),
/// with its values appended to `values`.
fn plan_day(days: &BTreeMap<String, NaiveDate>, values: &mut Vec<Value>) -> String {
    let mut case = String::from("(SELECT CASE a.plan");
    for (plan, day) in days {
        let n = values.len();
        case.push_str(&format!(" WHEN ${} THEN ${}", n + 1, n + 2));
        values.push(plan.as_str().into());
        values.push((*day).into());
    }
    case.push_str(" END FROM accounts a WHERE a.id = event_contexts.account_id)");
    case
}

/// No context adds to the `event_contexts` row at hand (an index probe).
const CHILDLESS: &str = "NOT EXISTS (SELECT 1 FROM event_contexts c \
                                     WHERE c.parent_id = event_contexts.id)";

/// One window of the marking walk, read outside any write transaction.
pub(super) struct Window {
    /// The last id read; `None` past the end of the table.
    pub(super) last: Option<i64>,
    /// Whether a row of it may be past its plan's cutoff day.
    pub(super) old: bool,
    /// Whether it was the table's last.
    pub(super) done: bool,
}

/// Reads up to `batch` context ids after `after`, with `latest` the latest of the plans'
/// cutoff days.
pub(super) async fn read_window(
    reader: &impl ConnectionTrait,
    after: i64,
    batch: u64,
    latest: NaiveDate,
) -> Result<Window, DbErr> {
    let rows = reader
        .query_all_raw(statement(
            reader.get_database_backend(),
            "SELECT id, last_seen FROM event_contexts WHERE id > $1 ORDER BY id LIMIT $2",
            [after.into(), limit(batch).into()],
        ))
        .await?;
    let mut last = None;
    let mut old = false;
    for row in &rows {
        last = Some(row.try_get::<i64>("", "id")?);
        let seen: Option<NaiveDate> = row.try_get("", "last_seen")?;
        old |= seen.is_some_and(|seen| seen < latest);
    }
    Ok(Window {
        last,
        old,
        done: (rows.len() as u64) < batch.max(1),
    })
}

/// Marks the contexts with ids in `(after, upto]` past their plan's cutoff day, unmarked and
/// childless.
pub(super) async fn mark_window(
    txn: &impl ConnectionTrait,
    days: &BTreeMap<String, NaiveDate>,
    after: i64,
    upto: i64,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let mut values: Vec<Value> = vec![after.into(), upto.into()];
    let day = plan_day(days, &mut values);
    txn.execute_raw(statement(
        backend,
        &format!(
            "UPDATE event_contexts SET orphaned_at = {now} \
             WHERE id > $1 AND id <= $2 AND orphaned_at IS NULL \
             AND last_seen < {day} AND {CHILDLESS}",
            now = now_ms_sql(backend),
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// The ids of up to `batch` contexts marked at least `grace` ago, oldest ids first.
pub(super) async fn due(
    reader: &impl ConnectionTrait,
    grace: Duration,
    batch: u64,
) -> Result<Vec<i64>, DbErr> {
    let backend = reader.get_database_backend();
    let rows = reader
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT id FROM event_contexts WHERE orphaned_at <= {now} - $1 \
                 ORDER BY id LIMIT $2",
                now = now_ms_sql(backend)
            ),
            [grace_ms(grace).into(), limit(batch).into()],
        ))
        .await?;
    rows.iter().map(|row| row.try_get("", "id")).collect()
}

/// Deletes those of `ids` still marked at least `grace` ago, still past their plan's cutoff
/// day and still childless, and clears the mark of the rest; returns how many it deleted.
pub(super) async fn delete_due(
    txn: &impl ConnectionTrait,
    days: &BTreeMap<String, NaiveDate>,
    ids: &[i64],
    grace: Duration,
) -> Result<u64, DbErr> {
    let backend = txn.get_database_backend();
    let now = now_ms_sql(backend);
    let mut values: Vec<Value> = vec![grace_ms(grace).into()];
    let day = plan_day(days, &mut values);
    let (list, ids) = in_list(values.len() + 1, ids.iter().map(|&id| Value::from(id)));
    values.extend(ids.iter().cloned());
    let deleted = txn
        .execute_raw(statement(
            backend,
            &format!(
                "DELETE FROM event_contexts WHERE id IN ({list}) \
                 AND orphaned_at <= {now} - $1 AND last_seen < {day} AND {CHILDLESS}"
            ),
            values,
        ))
        .await?
        .rows_affected();
    let (list, ids) = in_list(2, ids.into_iter());
    txn.execute_raw(statement(
        backend,
        &format!(
            "UPDATE event_contexts SET orphaned_at = NULL \
             WHERE id IN ({list}) AND orphaned_at <= {now} - $1"
        ),
        std::iter::once(Value::from(grace_ms(grace))).chain(ids),
    ))
    .await?;
    Ok(deleted)
}

fn grace_ms(grace: Duration) -> i64 {
    i64::try_from(grace.as_millis()).unwrap_or(i64::MAX)
}
