//! Stored events, and the reads the API needs: traces newest first, events of one trace, a
//! page at a time. (Events are written by the ledger, `ledger/`.)

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Map, Value};

use crate::db::db_time;
use crate::entities::{OfAccount, event_contexts, events, traces};
use crate::{AccountId, Store, StoreError};

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
    /// Payload: the event's own fields, then those of its context and the context's parents
    /// (the event's own keys win, then the nearest context's).
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
    /// Timestamp of its latest event.
    pub last_at: DateTime<Utc>,
    /// Number of its events.
    pub event_count: u64,
}

/// Where the next page of traces starts: after this trace, in newest-first order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceCursor {
    started_at: DateTime<Utc>,
    trace_id: String,
}

/// A cursor string that was not produced by [`TraceCursor::encode`] or [`EventCursor::encode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a valid cursor")]
pub struct CursorError;

impl TraceCursor {
    /// The opaque form handed to clients as `next_cursor`.
    #[must_use]
    pub fn encode(&self) -> String {
        encode_cursor(self.started_at, &self.trace_id)
    }

    /// Reads a cursor back.
    ///
    /// # Errors
    /// [`CursorError`] for anything [`TraceCursor::encode`] did not produce.
    pub fn decode(text: &str) -> Result<Self, CursorError> {
        let (started_at, trace_id) = decode_cursor(text)?;
        Ok(TraceCursor {
            started_at,
            trace_id,
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

/// Where the next page of a trace's events starts: after this event, in oldest-first order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventCursor {
    timestamp: DateTime<Utc>,
    id: i64,
}

impl EventCursor {
    pub(crate) fn new(timestamp: DateTime<Utc>, id: i64) -> Self {
        EventCursor { timestamp, id }
    }

    pub(crate) fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }

    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// The opaque form handed to clients as `next_cursor`.
    #[must_use]
    pub fn encode(&self) -> String {
        encode_cursor(self.timestamp, self.id)
    }

    /// Reads a cursor back.
    ///
    /// # Errors
    /// [`CursorError`] for anything [`EventCursor::encode`] did not produce.
    pub fn decode(text: &str) -> Result<Self, CursorError> {
        let (timestamp, id) = decode_cursor(text)?;
        Ok(EventCursor {
            timestamp,
            id: id.parse().map_err(|_| CursorError)?,
        })
    }
}

/// A page of one trace's events.
#[derive(Clone, Debug, PartialEq)]
pub struct EventPage {
    /// Oldest first (by timestamp, then in the order stored).
    pub events: Vec<StoredEvent>,
    /// Present when more events follow.
    pub next_cursor: Option<EventCursor>,
}

/// Both cursors' opaque form: hex of "<microseconds>\n<the rest>".
fn encode_cursor(at: DateTime<Utc>, rest: impl std::fmt::Display) -> String {
    hex::encode(format!("{}\n{rest}", at.timestamp_micros()))
}

/// The time and the rest of a cursor [`encode_cursor`] made.
fn decode_cursor(text: &str) -> Result<(DateTime<Utc>, String), CursorError> {
    let bytes = hex::decode(text).map_err(|_| CursorError)?;
    let text = String::from_utf8(bytes).map_err(|_| CursorError)?;
    let (micros, rest) = text.split_once('\n').ok_or(CursorError)?;
    let micros: i64 = micros.parse().map_err(|_| CursorError)?;
    let at = DateTime::from_timestamp_micros(micros).ok_or(CursorError)?;
    Ok((at, rest.to_owned()))
}

/// The events table (written by [`Store::record`]).
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
    /// Events of `trace_id` in `account`, oldest first, `limit` at a time after `after` (an
    /// empty page for an unknown trace). Bodies come back merged with their contexts.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn of_trace(
        &self,
        account: AccountId,
        trace_id: &str,
        after: Option<&EventCursor>,
        limit: u64,
    ) -> Result<EventPage, StoreError> {
        use events::Column as E;
        let db = self.store.reader();
        let mut query = events::Entity::of_account(account).filter(E::TraceId.eq(trace_id));
        if let Some(cursor) = after {
            query = query.filter(Expr::tuple([Expr::col(E::Timestamp), Expr::col(E::Id)]).gt(
                Expr::tuple([Expr::val(cursor.timestamp), Expr::val(cursor.id)]),
            ));
        }
        // One more than asked, to learn whether a next page exists.
        let mut rows = query
            .order_by_asc(E::Timestamp)
            .order_by_asc(E::Id)
            .limit(limit.saturating_add(1))
            .all(db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = more.then(|| rows.last()).flatten().map(|last| EventCursor {
            timestamp: db_time(last.timestamp),
            id: last.id,
        });
        let contexts = contexts_of(db, account, rows.iter().filter_map(|r| r.context_id)).await?;
        let events = rows
            .into_iter()
            .map(|row| {
                let body = merged(row.body, row.context_id, &contexts);
                StoredEvent {
                    client_event_id: row.client_event_id,
                    event_type: row.event_type,
                    trace_id: row.trace_id,
                    name: row.name,
                    timestamp: row.timestamp,
                    body,
                    received_at: row.received_at,
                }
            })
            .collect();
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    /// Number of events stored for `account` (all periods).
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn count(&self, account: AccountId) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(events::Entity::of_account(account)
            .count(self.store.reader())
            .await?)
    }

    /// Traces of `account`, newest first (by their earliest event, then by id descending),
    /// `limit` at a time. Reads the per-trace summaries, so a page costs the same whatever the
    /// number of events in the account.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn traces(
        &self,
        account: AccountId,
        after: Option<&TraceCursor>,
        limit: u64,
    ) -> Result<TracePage, StoreError> {
        use traces::Column as T;
        let mut query = traces::Entity::of_account(account);
        if let Some(cursor) = after {
            // A row comparison, so that both databases seek the index to the cursor.
            query = query.filter(
                Expr::tuple([Expr::col(T::StartedAt), Expr::col(T::TraceId)]).lt(Expr::tuple([
                    Expr::val(cursor.started_at),
                    Expr::val(cursor.trace_id.as_str()),
                ])),
            );
        }
        let rows = query
            .order_by_desc(T::StartedAt)
            .order_by_desc(T::TraceId)
            .limit(limit.saturating_add(1))
            .all(self.store.reader())
            .await?;
        let mut traces = rows
            .into_iter()
            .map(|row| {
                Ok(TraceSummary {
                    trace_id: row.trace_id,
                    name: row.name,
                    started_at: row.started_at,
                    last_at: row.last_at,
                    event_count: u64::try_from(row.event_count).map_err(|_| {
                        StoreError::Corrupt {
                            what: "traces.event_count",
                        }
                    })?,
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

/// A stored context: its parent and its fields.
type Context = (Option<i64>, Map<String, Value>);

/// The contexts `ids` of `account` and all their ancestors: one query per level of nesting
/// (contexts are one or two deep), whatever the number of events they serve.
async fn contexts_of(
    db: &impl sea_orm::ConnectionTrait,
    account: AccountId,
    ids: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, Context>, StoreError> {
    use event_contexts::Column as C;
    let mut found: HashMap<i64, Context> = HashMap::new();
    let mut wanted: BTreeSet<i64> = ids.collect();
    while !wanted.is_empty() {
        let rows = event_contexts::Entity::of_account(account)
            .filter(C::Id.is_in(std::mem::take(&mut wanted)))
            .all(db)
            .await?;
        for row in rows {
            let Value::Object(fields) = row.body else {
                return Err(StoreError::Corrupt {
                    what: "event_contexts.body",
                });
            };
            if let Some(parent) = row.parent_id.filter(|p| !found.contains_key(p)) {
                wanted.insert(parent);
            }
            found.insert(row.id, (row.parent_id, fields));
        }
        wanted.retain(|id| !found.contains_key(id));
    }
    Ok(found)
}

/// The event's body with the fields of its context chain added under keys it does not have.
fn merged(
    body: Option<Value>,
    context: Option<i64>,
    contexts: &HashMap<i64, Context>,
) -> Option<Value> {
    let Some(mut next) = context else {
        return body;
    };
    let mut out = match body {
        Some(Value::Object(fields)) => fields,
        None | Some(Value::Null) => Map::new(),
        // Not an object: nothing to merge into (the write path never pairs these).
        Some(other) => return Some(other),
    };
    // Bounded by the number of contexts, so that even a corrupt cycle ends.
    for _ in 0..=contexts.len() {
        let Some((parent, fields)) = contexts.get(&next) else {
            break;
        };
        for (key, value) in fields {
            if !out.contains_key(key) {
                out.insert(key.clone(), value.clone());
            }
        }
        match parent {
            Some(parent) => next = *parent,
            None => break,
        }
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

        let cursor = EventCursor {
            timestamp: DateTime::from_timestamp_micros(-5).unwrap(),
            id: 42,
        };
        assert_eq!(EventCursor::decode(&cursor.encode()).unwrap(), cursor);
        assert_eq!(EventCursor::decode(&hex::encode("1\nx")), Err(CursorError));
        assert_eq!(EventCursor::decode(&hex::encode("1")), Err(CursorError));
        assert_eq!(EventCursor::decode("0g"), Err(CursorError));
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_event_wins_then_the_nearest_context() {
        let contexts = HashMap::from([
            (
                1,
                (
                    None,
                    object(json!({"resource": "r", "scope": "s", "unit": "x"})),
                ),
            ),
            (
                2,
                (Some(1), object(json!({"unit": "ms", "description": "d"}))),
            ),
        ]);
        assert_eq!(
            merged(
                Some(json!({"value": 3, "scope": "own"})),
                Some(2),
                &contexts
            ),
            Some(
                json!({"value": 3, "scope": "own", "unit": "ms", "description": "d", "resource": "r"})
            )
        );
        assert_eq!(
            merged(None, Some(1), &contexts),
            Some(json!({"resource": "r", "scope": "s", "unit": "x"}))
        );
        assert_eq!(
            merged(Some(json!([1])), Some(1), &contexts),
            Some(json!([1]))
        );
        assert_eq!(
            merged(Some(json!({"a": 1})), None, &contexts),
            Some(json!({"a": 1}))
        );
        assert_eq!(merged(None, None, &contexts), None);
    }

    #[test]
    fn a_corrupt_cycle_of_contexts_ends() {
        let contexts = HashMap::from([
            (1, (Some(2), object(json!({"a": 1})))),
            (2, (Some(1), object(json!({"b": 2})))),
        ]);
        assert_eq!(
            merged(None, Some(1), &contexts),
            Some(json!({"a": 1, "b": 2}))
        );
    }
}
