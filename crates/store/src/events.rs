//! Stored events, and the reads the API needs: traces newest first, events of one trace.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Statement, Value,
};

use crate::entities::events;
use crate::{AccountId, KeyId, Store, StoreError, connect::db_time};

/// An event to store, already decoded and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// The client's id: a duplicate of one already stored for the account is skipped.
    pub client_event_id: Option<String>,
    /// `trace`, `span`, `generation`, `event`, `score`, `log` or `metric`.
    pub event_type: String,
    /// The trace it belongs to; events without one are stored and counted but not listed.
    pub trace_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// When it happened, by the client's clock.
    pub timestamp: DateTime<Utc>,
    /// Free-form JSON payload.
    pub body: Option<serde_json::Value>,
}

/// Events received in one request: stored and counted all together, or not at all.
#[derive(Clone, Debug, PartialEq)]
pub struct EventBatch {
    /// The key that sent them, if a key did.
    pub api_key_id: Option<KeyId>,
    /// When the server received them (this decides the period they count in).
    pub received_at: DateTime<Utc>,
    /// The events, in the order received.
    pub events: Vec<NewEvent>,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// The client's id, if it sent one.
    pub client_event_id: Option<String>,
    /// Event type.
    pub event_type: String,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// Payload.
    pub body: Option<serde_json::Value>,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
}

/// One line of the trace list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSummary {
    /// Trace id.
    pub trace_id: String,
    /// Name of the trace's earliest named event.
    pub name: Option<String>,
    /// Timestamp of its earliest event.
    pub started_at: DateTime<Utc>,
    /// Number of its events.
    pub event_count: u64,
}

/// Where the next page of traces starts: after this trace, in newest-first order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceCursor {
    started_at: DateTime<Utc>,
    trace_id: String,
}

/// A cursor string that was not produced by [`TraceCursor::encode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a valid cursor")]
pub struct CursorError;

impl TraceCursor {
    /// The opaque form handed to clients as `next_cursor`.
    #[must_use]
    pub fn encode(&self) -> String {
        hex::encode(format!(
            "{}\n{}",
            self.started_at.timestamp_micros(),
            self.trace_id
        ))
    }

    /// Reads a cursor back.
    ///
    /// # Errors
    /// [`CursorError`] for anything [`TraceCursor::encode`] did not produce.
    pub fn decode(text: &str) -> Result<Self, CursorError> {
        let bytes = hex::decode(text).map_err(|_| CursorError)?;
        let text = String::from_utf8(bytes).map_err(|_| CursorError)?;
        let (micros, trace_id) = text.split_once('\n').ok_or(CursorError)?;
        let micros: i64 = micros.parse().map_err(|_| CursorError)?;
        Ok(TraceCursor {
            started_at: DateTime::from_timestamp_micros(micros).ok_or(CursorError)?,
            trace_id: trace_id.to_owned(),
        })
    }
}

/// A page of traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracePage {
    /// Newest first.
    pub traces: Vec<TraceSummary>,
    /// Present when more traces follow.
    pub next_cursor: Option<TraceCursor>,
}

/// The events table (writes go through [`agentvista_quota::UsageLedger`]).
#[derive(Clone, Copy, Debug)]
pub struct Events<'a> {
    store: &'a Store,
}

impl Store {
    /// The events repository.
    #[must_use]
    pub fn events(&self) -> Events<'_> {
        Events { store: self }
    }
}

impl Events<'_> {
    /// Every event of `trace_id` in `account`, oldest first (empty for an unknown trace).
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn of_trace(
        &self,
        account: AccountId,
        trace_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = events::Entity::find()
            .filter(events::Column::AccountId.eq(account.0))
            .filter(events::Column::TraceId.eq(trace_id))
            .order_by_asc(events::Column::Timestamp)
            .order_by_asc(events::Column::Id)
            .all(self.store.reader())
            .await?;
        Ok(rows.into_iter().map(stored).collect())
    }

    /// Number of events stored for `account` (all periods).
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn count(&self, account: AccountId) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(events::Entity::find()
            .filter(events::Column::AccountId.eq(account.0))
            .count(self.store.reader())
            .await?)
    }

    /// Traces of `account`, newest first (by their earliest event), `limit` at a time.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn traces(
        &self,
        account: AccountId,
        after: Option<&TraceCursor>,
        limit: u64,
    ) -> Result<TracePage, StoreError> {
        let db = self.store.reader();
        let backend = db.get_database_backend();
        let mut values: Vec<Value> = vec![account.0.into()];
        let having = match after {
            Some(cursor) => {
                values.push(cursor.started_at.into());
                values.push(cursor.started_at.into());
                values.push(cursor.trace_id.clone().into());
                "HAVING MIN(e.timestamp) < ? OR (MIN(e.timestamp) = ? AND e.trace_id < ?)"
            }
            None => "",
        };
        // One more than asked, to learn whether a next page exists.
        values.push(
            i64::try_from(limit.saturating_add(1))
                .unwrap_or(i64::MAX)
                .into(),
        );
        let sql = format!(
            "SELECT e.trace_id AS trace_id, MIN(e.timestamp) AS started_at, \
                    COUNT(*) AS event_count, \
                    (SELECT n.name FROM events n \
                      WHERE n.account_id = e.account_id AND n.trace_id = e.trace_id \
                        AND n.name IS NOT NULL \
                      ORDER BY n.timestamp, n.id LIMIT 1) AS name \
             FROM events e \
             WHERE e.account_id = ? AND e.trace_id IS NOT NULL \
             GROUP BY e.account_id, e.trace_id \
             {having} \
             ORDER BY started_at DESC, e.trace_id DESC \
             LIMIT ?"
        );
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                placeholders(backend, &sql),
                values,
            ))
            .await?;
        let mut traces = rows
            .iter()
            .map(|row| {
                let corrupt = |_| StoreError::Corrupt {
                    what: "events (trace summary)",
                };
                Ok(TraceSummary {
                    trace_id: row.try_get("", "trace_id").map_err(corrupt)?,
                    name: row.try_get("", "name").map_err(corrupt)?,
                    started_at: row.try_get("", "started_at").map_err(corrupt)?,
                    event_count: u64::try_from(
                        row.try_get::<i64>("", "event_count").map_err(corrupt)?,
                    )
                    .unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let more = traces.len() as u64 > limit;
        traces.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = more
            .then(|| traces.last())
            .flatten()
            .map(|last| TraceCursor {
                started_at: db_time(last.started_at),
                trace_id: last.trace_id.clone(),
            });
        Ok(TracePage {
            traces,
            next_cursor,
        })
    }
}

/// Rewrites `?` placeholders as `$1, $2, …` for PostgreSQL (the SQL here has no `?` in strings).
fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn stored(row: events::Model) -> StoredEvent {
    StoredEvent {
        client_event_id: row.client_event_id,
        event_type: row.event_type,
        trace_id: row.trace_id,
        name: row.name,
        timestamp: row.timestamp,
        body: row.body,
        received_at: row.received_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = TraceCursor {
            started_at: DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            trace_id: "abc\ndef".into(),
        };
        assert_eq!(TraceCursor::decode(&cursor.encode()).unwrap(), cursor);
        assert_eq!(TraceCursor::decode("zz"), Err(CursorError));
        assert_eq!(TraceCursor::decode(&hex::encode("12")), Err(CursorError));
        assert_eq!(TraceCursor::decode(&hex::encode("x\ny")), Err(CursorError));
    }

    #[test]
    fn postgres_gets_numbered_placeholders() {
        assert_eq!(
            placeholders(DbBackend::Postgres, "a = ? AND b < ?"),
            "a = $1 AND b < $2"
        );
        assert_eq!(placeholders(DbBackend::Sqlite, "a = ?"), "a = ?");
    }
}
