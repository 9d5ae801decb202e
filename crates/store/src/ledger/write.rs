//! The events of a job and their traces' summaries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, InsertStatement, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement, Value};

use super::batch::{NewEvent, ROWS_PER_INSERT};
use crate::db::db_time;
use crate::entities::{events, traces};
use crate::span::stored_tokens;
use crate::{AccountId, KeyId, SpanFields, SpanStatus};

/// The summary columns every write path fills, in the order of [`SUMMARY_COLUMNS`].
macro_rules! summary_columns {
    () => {
        "account_id, trace_id, name, name_at, started_at, last_at, event_count, ended_at, \
         error_count, status_count, usage_count, input_tokens, output_tokens"
    };
}

/// How a trace's summary takes in a batch's share (rows named `excluded`), in SQL that both
/// databases read alike: the earliest named event gives the name (on a tie the stored one
/// stays, as the older event has the lower id; SQLite compares the stored timestamps as text,
/// which orders them correctly: one format, one offset), the times widen, the counts and token
/// sums add.
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
  event_count = traces.event_count + excluded.event_count, \
  ended_at = CASE WHEN traces.ended_at IS NULL OR excluded.ended_at > traces.ended_at \
             THEN excluded.ended_at ELSE traces.ended_at END, \
  error_count = traces.error_count + excluded.error_count, \
  status_count = traces.status_count + excluded.status_count, \
  usage_count = traces.usage_count + excluded.usage_count, \
  input_tokens = traces.input_tokens + excluded.input_tokens, \
  output_tokens = traces.output_tokens + excluded.output_tokens"
    };
}

/// What the summaries need of one inserted event.
struct NewRow {
    id: i64,
    trace_id: Option<String>,
    timestamp: DateTime<Utc>,
    name: Option<String>,
    outcome: Outcome,
}

impl NewRow {
    fn as_ref(&self) -> RowRef<'_> {
        RowRef {
            order: self.id,
            trace_id: self.trace_id.as_deref(),
            timestamp: self.timestamp,
            name: self.name.as_deref(),
            outcome: self.outcome,
        }
    }
}

/// What the summaries need of one inserted event, borrowed; `order` sorts events as their
/// row ids do.
struct RowRef<'a> {
    order: i64,
    trace_id: Option<&'a str>,
    timestamp: DateTime<Utc>,
    name: Option<&'a str>,
    outcome: Outcome,
}

/// What an event adds to its trace's outcome: its end, its status, its tokens.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    end_time: Option<DateTime<Utc>>,
    status: Option<SpanStatus>,
    /// Input and output tokens.
    usage: Option<(i64, i64)>,
}

impl Outcome {
    fn of(span: Option<&SpanFields>) -> Self {
        let Some(span) = span else {
            return Outcome::default();
        };
        Outcome {
            end_time: span.end_time.map(db_time),
            status: span.status,
            usage: span.usage.map(|u| {
                (
                    stored_tokens(u.input_tokens),
                    stored_tokens(u.output_tokens),
                )
            }),
        }
    }

    /// From the columns an insert returned.
    fn read(row: &sea_orm::QueryResult) -> Result<Self, DbErr> {
        let status: Option<String> = row.try_get("", "status")?;
        let input: Option<i64> = row.try_get("", "input_tokens")?;
        let output: Option<i64> = row.try_get("", "output_tokens")?;
        Ok(Outcome {
            end_time: row.try_get("", "end_time")?,
            status: status.as_deref().and_then(SpanStatus::parse),
            usage: input.map(|input| (input, output.unwrap_or(0))),
        })
    }
}

/// What [`EventWriter::insert_counted`] did.
pub(super) enum Trip {
    /// Every event was new: they are stored, counted (the period's new total) and summarised.
    Counted(u64),
    /// This many events were new and are stored, neither counted nor summarised: some were
    /// duplicates (so the summaries built from the job would be wrong), the count was refused,
    /// or the terms to confirm had changed.
    Inserted(u64),
    /// The key the events came with no longer works: nothing may stay.
    CredentialEnded,
}

/// Writes one job's events and their traces' summaries.
pub(super) struct EventWriter<'a> {
    pub(super) account: AccountId,
    pub(super) api_key_id: Option<KeyId>,
    pub(super) received_at: DateTime<Utc>,
    /// Row ids of the job's contexts, by index.
    pub(super) context_ids: &'a [i64],
}

impl EventWriter<'_> {
    /// Inserts the events whose client id is new for the account and returns how many were
    /// inserted; on PostgreSQL it adds them to their traces' summaries too, on SQLite that is
    /// left to [`summarise_sqlite`] once they are counted. Duplicates are skipped and add
    /// nothing.
    pub(super) async fn insert(
        &self,
        txn: &DatabaseTransaction,
        events: &[NewEvent],
    ) -> Result<u64, DbErr> {
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
                update_traces(txn, self.account, new_rows.iter().map(NewRow::as_ref)).await?;
                Ok(inserted)
            }
            _ => {
                let mut inserted = 0;
                for chunk in events.chunks(ROWS_PER_INSERT) {
                    inserted += txn
                        .execute(&self.statement(DbBackend::Sqlite, chunk)?)
                        .await?
                        .rows_affected();
                }
                Ok(inserted)
            }
        }
    }

    /// SQLite, a job of at most one statement's events: the events, their count and their
    /// traces' summaries in one call to the database (one hop to SQLite's worker thread instead
    /// of three; each costs about as much as the count itself). For a batch sent with a key,
    /// `key` first reads whether the key still works (`Trip::CredentialEnded` when it does
    /// not, and the caller drops the savepoint). Then five statements run in turn:
    /// the insert; `SELECT changes()`, which reports how many rows it wrote; `count`, built by
    /// [`count_statement`](super::usage::count_statement) to count the job's `n` events only
    /// if the insert wrote all `n`; `daily`, which adds them to the day's and key's row only
    /// if the count changed its row; and the summaries, built here from the job (the rows
    /// written are the job's events, and their ids follow its order: one writer, each new row
    /// the next id), written only if the daily row changed, that is, if the count counted.
    pub(super) async fn insert_counted(
        &self,
        txn: &DatabaseTransaction,
        key: Option<Statement>,
        events: &[NewEvent],
        count: Statement,
        daily: Statement,
    ) -> Result<Trip, DbErr> {
        let backend = DbBackend::Sqlite;
        let insert = backend.build(&self.statement(backend, events)?);
        let (mut sql, mut values) = match &key {
            // First, the key's row if it still works: none, and the caller drops it all.
            Some(key) => (
                format!("SELECT COUNT(*) AS live FROM ({});\n", key.sql),
                key.values.clone().map(|v| v.0).unwrap_or_default(),
            ),
            None => (String::new(), Vec::new()),
        };
        sql.push_str(&insert.sql);
        values.extend(insert.values.map(|v| v.0).unwrap_or_default());
        sql.push_str(";\nSELECT changes() AS inserted;\n");
        sql.push_str(&count.sql);
        sql.push_str(";\n");
        sql.push_str(&daily.sql);
        let rows = events.iter().zip(0..).map(|(e, order)| RowRef {
            order,
            trace_id: e.trace_id.as_deref(),
            timestamp: db_time(e.timestamp),
            name: e.name.as_deref(),
            outcome: Outcome::of(e.span.as_deref()),
        });
        let summaries = summaries_if_counted(self.account, &deltas(rows));
        values.extend(count.values.map(|v| v.0).unwrap_or_default());
        values.extend(daily.values.map(|v| v.0).unwrap_or_default());
        if let Some(summaries) = summaries {
            sql.push_str(";\n");
            sql.push_str(&summaries.sql);
            values.extend(summaries.values.map(|v| v.0).unwrap_or_default());
        }
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        let rows = match key {
            Some(_) => {
                let live: i64 = rows
                    .first()
                    .ok_or_else(|| DbErr::Custom("the key check returned no row".into()))?
                    .try_get("", "live")?;
                if live == 0 {
                    return Ok(Trip::CredentialEnded);
                }
                &rows[1..]
            }
            None => &rows[..],
        };
        let inserted: i64 = rows
            .first()
            .ok_or_else(|| DbErr::Custom("SELECT changes() returned no row".into()))?
            .try_get("", "inserted")?;
        let inserted = u64::try_from(inserted)
            .map_err(|_| DbErr::Custom("the event insert changed fewer than 0 rows".into()))?;
        Ok(match rows.get(1) {
            Some(row) => Trip::Counted(super::usage::events_used(row)?),
            None => Trip::Inserted(inserted),
        })
    }

    /// The INSERT of `chunk`, skipping client ids the account has already. Bodies go in as
    /// the JSON text they arrived as, never rebuilt as a tree of values.
    fn statement(&self, backend: DbBackend, chunk: &[NewEvent]) -> Result<InsertStatement, DbErr> {
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
            E::ParentId,
            E::EndTime,
            E::Status,
            E::StatusMessage,
            E::Model,
            E::InputTokens,
            E::OutputTokens,
        ]);
        for event in chunk {
            let [
                parent_id,
                end_time,
                status,
                status_message,
                model,
                input,
                output,
            ] = SpanFields::column_values(event.span.as_deref());
            insert
                .values([
                    self.account.0.into(),
                    self.api_key_id.map(|k| k.0).into(),
                    event.client_event_id.clone().into(),
                    event.event_type.clone().into(),
                    event.trace_id.clone().into(),
                    event.name.clone().into(),
                    db_time(event.timestamp).into(),
                    crate::sql::json_text(backend, event.body.as_deref()),
                    self.received_at.into(),
                    event
                        .context
                        .and_then(|c| self.context_ids.get(c).copied())
                        .into(),
                    parent_id.into(),
                    end_time.into(),
                    status.into(),
                    status_message.into(),
                    model.into(),
                    input.into(),
                    output.into(),
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
        let mut insert = self.statement(DbBackend::Postgres, events)?;
        insert.returning(
            Query::returning().columns([E::AccountId].into_iter().chain(SUMMARISED_COLUMNS)),
        );
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
        let mut insert = self.statement(DbBackend::Postgres, chunk)?;
        insert.returning(Query::returning().columns(SUMMARISED_COLUMNS));
        for row in txn.query_all(&insert).await? {
            new_rows.push(NewRow {
                id: row.try_get("", "id")?,
                trace_id: row.try_get("", "trace_id")?,
                timestamp: row.try_get("", "timestamp")?,
                name: row.try_get("", "name")?,
                outcome: Outcome::read(&row)?,
            });
        }
        Ok(())
    }
}

/// What the summaries read of each inserted event (PostgreSQL returns them from the insert).
const SUMMARISED_COLUMNS: [events::Column; 8] = [
    events::Column::Id,
    events::Column::TraceId,
    events::Column::Timestamp,
    events::Column::Name,
    events::Column::EndTime,
    events::Column::Status,
    events::Column::InputTokens,
    events::Column::OutputTokens,
];

/// PostgreSQL: adds the rows of `inserted` (a CTE of the rows an insert returned) to their
/// traces' summaries, one row per trace in trace id order. The earliest named event wins the
/// name, the older (lower id) on a tie, as [`update_traces`] does.
const SUMMARISE_INSERTED: &str = concat!(
    "INSERT INTO traces (",
    summary_columns!(),
    ") \
SELECT account_id, trace_id, \
       (array_agg(name ORDER BY timestamp, id) FILTER (WHERE name IS NOT NULL))[1], \
       MIN(timestamp) FILTER (WHERE name IS NOT NULL), \
       MIN(timestamp), MAX(timestamp), COUNT(*), \
       MAX(end_time), COUNT(*) FILTER (WHERE status = 'error'), COUNT(status), \
       COUNT(input_tokens), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0) \
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
pub(super) async fn summarise_sqlite(
    txn: &DatabaseTransaction,
    account: AccountId,
    inserted: u64,
) -> Result<(), DbErr> {
    const SQL: &str = concat!(
        "INSERT INTO traces (",
        summary_columns!(),
        ") \
SELECT ?, trace_id, substr(k, instr(k, ' ') + 22), substr(k, 1, instr(k, ' ') - 1), \
       started_at, last_at, n, ended_at, errors, statuses, usages, input, output \
FROM (SELECT trace_id, MIN(timestamp) AS started_at, MAX(timestamp) AS last_at, \
             COUNT(*) AS n, MAX(end_time) AS ended_at, \
             SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, \
             COUNT(status) AS statuses, COUNT(input_tokens) AS usages, \
             COALESCE(SUM(input_tokens), 0) AS input, COALESCE(SUM(output_tokens), 0) AS output, \
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
struct TraceDelta<'a> {
    started_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
    count: i64,
    /// The earliest named event: timestamp, order (for ties), name.
    named: Option<(DateTime<Utc>, i64, &'a str)>,
    ended_at: Option<DateTime<Utc>>,
    errors: i64,
    statuses: i64,
    usages: i64,
    input_tokens: i64,
    output_tokens: i64,
}

/// Each trace's share of `rows`, in trace id order (so that concurrent requests lock the
/// summaries' rows in the same order).
fn deltas<'a>(rows: impl Iterator<Item = RowRef<'a>>) -> Vec<(&'a str, TraceDelta<'a>)> {
    let mut deltas: BTreeMap<&str, TraceDelta> = BTreeMap::new();
    for row in rows {
        let Some(trace_id) = row.trace_id else {
            continue;
        };
        let named = row.name.map(|name| (row.timestamp, row.order, name));
        let delta = deltas.entry(trace_id).or_insert_with(|| TraceDelta {
            started_at: row.timestamp,
            last_at: row.timestamp,
            count: 0,
            named: None,
            ended_at: None,
            errors: 0,
            statuses: 0,
            usages: 0,
            input_tokens: 0,
            output_tokens: 0,
        });
        delta.started_at = Ord::min(delta.started_at, row.timestamp);
        delta.last_at = Ord::max(delta.last_at, row.timestamp);
        delta.count += 1;
        let outcome = row.outcome;
        delta.ended_at = Ord::max(delta.ended_at, outcome.end_time);
        delta.errors += i64::from(outcome.status == Some(SpanStatus::Error));
        delta.statuses += i64::from(outcome.status.is_some());
        if let Some((input, output)) = outcome.usage {
            delta.usages += 1;
            delta.input_tokens = delta.input_tokens.saturating_add(input);
            delta.output_tokens = delta.output_tokens.saturating_add(output);
        }
        if let Some(named) = named
            && delta
                .named
                .as_ref()
                .is_none_or(|(at, order, _)| (named.0, named.1) < (*at, *order))
        {
            delta.named = Some(named);
        }
    }
    deltas.into_iter().collect()
}

/// One summary row's values, in the order of [`SUMMARY_COLUMNS`].
fn summary_values(account: AccountId, trace_id: &str, delta: &TraceDelta) -> [Value; 13] {
    let (name_at, name) = match delta.named {
        Some((at, _, name)) => (Some(db_time(at)), Some(name)),
        None => (None, None),
    };
    [
        account.0.into(),
        trace_id.into(),
        name.into(),
        name_at.into(),
        db_time(delta.started_at).into(),
        db_time(delta.last_at).into(),
        delta.count.into(),
        delta.ended_at.into(),
        delta.errors.into(),
        delta.statuses.into(),
        delta.usages.into(),
        delta.input_tokens.into(),
        delta.output_tokens.into(),
    ]
}

/// The summary columns [`summary_values`] fills.
const SUMMARY_COLUMNS: [traces::Column; 13] = [
    traces::Column::AccountId,
    traces::Column::TraceId,
    traces::Column::Name,
    traces::Column::NameAt,
    traces::Column::StartedAt,
    traces::Column::LastAt,
    traces::Column::EventCount,
    traces::Column::EndedAt,
    traces::Column::ErrorCount,
    traces::Column::StatusCount,
    traces::Column::UsageCount,
    traces::Column::InputTokens,
    traces::Column::OutputTokens,
];

/// Adds the inserted events to their traces' summaries: one upsert row per trace, in trace id
/// order.
async fn update_traces<'a>(
    txn: &DatabaseTransaction,
    account: AccountId,
    rows: impl Iterator<Item = RowRef<'a>>,
) -> Result<(), DbErr> {
    let deltas = deltas(rows);
    for chunk in deltas.chunks(ROWS_PER_INSERT) {
        let mut upsert = Query::insert();
        upsert.into_table(traces::Entity).columns(SUMMARY_COLUMNS);
        for (trace_id, delta) in chunk {
            upsert
                .values(summary_values(account, trace_id, delta).map(Expr::val))
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        let backend = txn.get_database_backend();
        let Statement {
            mut sql, values, ..
        } = backend.build(&upsert);
        sql.push(' ');
        sql.push_str(merge_summary!());
        txn.execute_raw(Statement {
            sql,
            values,
            db_backend: backend,
        })
        .await?;
    }
    Ok(())
}

/// SQLite: the summaries' upsert for [`EventWriter::insert_counted`], which writes only if the
/// statement before it (the count) changed one row; `None` when no event has a trace. The
/// rows come from a `VALUES` list read as a table, so that the insert can have a `WHERE`.
fn summaries_if_counted(account: AccountId, deltas: &[(&str, TraceDelta)]) -> Option<Statement> {
    if deltas.is_empty() {
        return None;
    }
    let mut sql = String::from(concat!(
        "INSERT INTO traces (",
        summary_columns!(),
        ") SELECT * FROM (VALUES "
    ));
    let row = format!("({})", vec!["?"; SUMMARY_COLUMNS.len()].join(", "));
    let mut values = Vec::with_capacity(deltas.len() * SUMMARY_COLUMNS.len());
    for (i, (trace_id, delta)) in deltas.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&row);
        values.extend(summary_values(account, trace_id, delta));
    }
    sql.push_str(") WHERE changes() = 1 ");
    sql.push_str(merge_summary!());
    Some(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        sql,
        values,
    ))
}
