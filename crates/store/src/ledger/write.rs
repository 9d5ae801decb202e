//! The events of a job and their traces' summaries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{InsertStatement, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};

use super::batch::{NewEvent, ROWS_PER_INSERT};
use crate::db::db_time;
use crate::entities::{events, traces};
use crate::{AccountId, KeyId};

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
pub(super) struct EventWriter<'a> {
    pub(super) account: AccountId,
    pub(super) api_key_id: Option<KeyId>,
    pub(super) received_at: DateTime<Utc>,
    /// Row ids of the job's contexts, by index.
    pub(super) context_ids: &'a [i64],
}

impl EventWriter<'_> {
    /// Inserts the events whose client id is new for the account, adds them to their traces'
    /// summaries, and returns how many were inserted. Duplicates are skipped and add nothing.
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
