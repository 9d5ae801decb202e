//! Stored events, and the reads the API needs: traces newest first, events of one trace, a
//! page at a time. (Events are written by the ledger, `ledger/`.)

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde_json::{Map, Value};

use crate::db::db_time;
use crate::entities::{OfAccount, event_contexts, events};
use crate::span::SpanColumns;
use crate::sql::statement;
use crate::{AccountId, SpanFields, SpanStatus, Store, StoreError, TokenUsage};

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
    /// Its parent, end, status, model and usage.
    pub span: SpanFields,
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
    /// The latest end time of its events; `None` when none has one.
    pub ended_at: Option<DateTime<Utc>>,
    /// `Error` if any event failed, else `Ok` if any has a status, else `None`.
    pub status: Option<SpanStatus>,
    /// Number of its events that failed.
    pub error_count: u64,
    /// The sums of its events' token usage; `None` when none has usage.
    pub usage: Option<TokenUsage>,
}

impl TraceSummary {
    /// From its first start to its last end (or last event, if later); `None` when no event
    /// has an end time.
    #[must_use]
    pub fn duration(&self) -> Option<chrono::TimeDelta> {
        self.ended_at
            .map(|ended| Ord::max(ended, self.last_at) - self.started_at)
    }
}

/// Which traces a list shows: all of them by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// Only traces whose name holds this, ASCII letters matched in either case.
    pub name: Option<String>,
    /// Only traces started at or after this.
    pub from: Option<DateTime<Utc>>,
    /// Only traces started before this.
    pub to: Option<DateTime<Utc>>,
    /// Only traces with a failed event.
    pub errors_only: bool,
}

/// Most traces a name search reads for one page: past them, the page ends with what it found
/// and a cursor to go on from.
pub const NAME_SEARCH_WINDOW: u64 = 50_000;

impl TraceFilter {
    /// A digest of the filter, carried by its cursors so that a cursor is never read with
    /// other filters than the ones that made it.
    fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let micros = |at: Option<DateTime<Utc>>| at.map(|t| t.timestamp_micros().to_string());
        let canonical = serde_json::json!([
            self.name,
            micros(self.from),
            micros(self.to),
            self.errors_only
        ]);
        hex::encode(&Sha256::digest(canonical.to_string().as_bytes())[..8])
    }

    /// The `LIKE` pattern of `name`: `%`, `_` and `\` match themselves, ASCII letters are
    /// lowercase (the column is compared lowercased).
    fn pattern(name: &str) -> String {
        let mut pattern = String::with_capacity(name.len() + 2);
        pattern.push('%');
        for c in name.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c.to_ascii_lowercase());
        }
        pattern.push('%');
        pattern
    }
}

/// Where the next page of traces starts: after this trace, in newest-first order, under the
/// filter that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceCursor {
    started_at: DateTime<Utc>,
    trace_id: String,
    filter: String,
}

/// A cursor string that was not produced by [`TraceCursor::encode`] or [`EventCursor::encode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a valid cursor")]
pub struct CursorError;

impl TraceCursor {
    /// The opaque form handed to clients as `next_cursor`.
    #[must_use]
    pub fn encode(&self) -> String {
        encode_cursor(
            self.started_at,
            format!("{}\n{}", self.filter, self.trace_id),
        )
    }

    /// Reads a cursor back.
    ///
    /// # Errors
    /// [`CursorError`] for anything [`TraceCursor::encode`] did not produce.
    pub fn decode(text: &str) -> Result<Self, CursorError> {
        let (started_at, rest) = decode_cursor(text)?;
        let (filter, trace_id) = rest.split_once('\n').ok_or(CursorError)?;
        Ok(TraceCursor {
            started_at,
            trace_id: trace_id.to_owned(),
            filter: filter.to_owned(),
        })
    }

    /// Whether the cursor was made by a page under `filter`.
    #[must_use]
    pub fn made_for(&self, filter: &TraceFilter) -> bool {
        self.filter == filter.fingerprint()
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

/// Whether both databases store and compare `at` alike: years 1 to 9999 (SQLite compares the
/// text, whose order breaks past them; PostgreSQL refuses some of them).
#[must_use]
pub fn in_storable_range(at: &DateTime<Utc>) -> bool {
    use chrono::Datelike;
    (1..=9999).contains(&at.year())
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
    let at = DateTime::from_timestamp_micros(micros)
        .filter(in_storable_range)
        .ok_or(CursorError)?;
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
                    span: SpanFields::from_columns(SpanColumns {
                        parent_id: row.parent_id,
                        end_time: row.end_time,
                        status: row.status,
                        status_message: row.status_message,
                        model: row.model,
                        input_tokens: row.input_tokens,
                        output_tokens: row.output_tokens,
                    }),
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

    /// Traces of `account` that pass `filter`, newest first (by their earliest event, then by
    /// id descending), `limit` at a time. Reads the per-trace summaries, so a page costs the
    /// same whatever the number of events in the account; "errors only" reads an index of the
    /// traces with an error. A name search reads at most [`NAME_SEARCH_WINDOW`] traces per
    /// page: when they hold fewer matches than `limit`, the page ends with those and a cursor
    /// after the last trace read.
    ///
    /// # Errors
    /// [`StoreError`] from the database; [`StoreError::CursorForOtherFilters`] for a cursor
    /// made under another filter.
    pub async fn traces(
        &self,
        account: AccountId,
        filter: &TraceFilter,
        after: Option<&TraceCursor>,
        limit: u64,
    ) -> Result<TracePage, StoreError> {
        if after.is_some_and(|c| !c.made_for(filter)) {
            return Err(StoreError::CursorForOtherFilters);
        }
        let db = self.store.reader();
        let backend = db.get_database_backend();
        let mut values: Vec<sea_orm::Value> = vec![account.0.into()];
        let mut conditions = String::from("account_id = $1");
        if filter.errors_only {
            conditions.push_str(" AND error_count > 0");
        }
        let mut bind = |condition: &str, value: sea_orm::Value| {
            values.push(value);
            conditions.push_str(&condition.replace('?', &format!("${}", values.len())));
        };
        if let Some(from) = filter.from {
            bind(" AND started_at >= ?", db_time(from).into());
        }
        if let Some(to) = filter.to {
            bind(" AND started_at < ?", db_time(to).into());
        }
        if let Some(cursor) = after {
            values.push(cursor.started_at.into());
            values.push(cursor.trace_id.as_str().into());
            let n = values.len();
            // A row comparison, so that both databases seek the index to the cursor.
            conditions.push_str(&format!(" AND (started_at, trace_id) < (${}, ${n})", n - 1));
        }
        let order = "ORDER BY started_at DESC, trace_id DESC";
        let columns = SUMMARY_COLUMNS;
        let page = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let sql = match &filter.name {
            None => {
                values.push(page.into());
                format!(
                    "SELECT {columns} FROM traces WHERE {conditions} {order} LIMIT ${}",
                    values.len()
                )
            }
            Some(name) => {
                let window = i64::try_from(NAME_SEARCH_WINDOW).unwrap_or(i64::MAX);
                values.push(window.into());
                let window_at = values.len();
                values.push(TraceFilter::pattern(name).into());
                let pattern_at = values.len();
                values.push(page.into());
                // SQLite's LIKE ignores the case of ASCII letters only; PostgreSQL's does not
                // ignore case, so the name is lowercased there, ASCII letters only.
                let name = match backend {
                    sea_orm::DbBackend::Postgres => {
                        "translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', \
                         'abcdefghijklmnopqrstuvwxyz')"
                    }
                    _ => "name",
                };
                format!(
                    "SELECT {columns} FROM (SELECT {columns} FROM traces WHERE {conditions} \
                     {order} LIMIT ${window_at}) AS window_read \
                     WHERE {name} LIKE ${pattern_at} ESCAPE '\\' {order} LIMIT ${}",
                    values.len()
                )
            }
        };
        // A name search reads its page and, when the page is not full, where its window ended:
        // two statements, on one snapshot, so that no trace deleted or added between them
        // moves the window's end.
        let searching = filter.name.is_some();
        let txn = if !searching {
            None
        } else if backend == sea_orm::DbBackend::Postgres {
            Some(
                db.begin_with_config(
                    Some(sea_orm::IsolationLevel::RepeatableRead),
                    Some(sea_orm::AccessMode::ReadOnly),
                )
                .await?,
            )
        } else {
            // SQLite in WAL mode: a read transaction keeps its first read's snapshot.
            Some(db.begin().await?)
        };
        let query = statement(backend, &sql, values.clone());
        let rows = match &txn {
            Some(txn) => txn.query_all_raw(query).await?,
            None => db.query_all_raw(query).await?,
        };
        let mut traces = rows
            .iter()
            .map(summary_of)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let more = traces.len() as u64 > limit;
        traces.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let fingerprint = filter.fingerprint();
        let cursor_after = |started_at: DateTime<Utc>, trace_id: String| TraceCursor {
            started_at: db_time(started_at),
            trace_id,
            filter: fingerprint.clone(),
        };
        let mut next_cursor = more
            .then(|| traces.last())
            .flatten()
            .map(|last| cursor_after(last.started_at, last.trace_id.clone()));
        if let Some(txn) = txn {
            if !more {
                // The page is not full: either the window held fewer matches, and the search
                // goes on after its last trace, or there are no more traces at all.
                let last_read = window_end(&txn, &conditions, &values, order).await?;
                next_cursor = last_read.map(|(at, id)| cursor_after(at, id));
            }
            txn.commit().await?;
        }
        Ok(TracePage {
            traces,
            next_cursor,
        })
    }

    /// The summary of one trace of `account`; `None` for a trace it does not have.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn summary(
        &self,
        account: AccountId,
        trace_id: &str,
    ) -> Result<Option<TraceSummary>, StoreError> {
        let db = self.store.reader();
        let row = db
            .query_one_raw(statement(
                db.get_database_backend(),
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM traces WHERE account_id = $1 AND trace_id = $2"
                ),
                [account.0.into(), trace_id.into()],
            ))
            .await?;
        row.as_ref().map(summary_of).transpose()
    }
}

/// The last trace of a full name-search window, the one the next window starts after; `None`
/// when no trace follows the window (the search has read every trace).
async fn window_end(
    db: &impl ConnectionTrait,
    conditions: &str,
    values: &[sea_orm::Value],
    order: &str,
) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
    let backend = db.get_database_backend();
    // The same conditions and values, without the window, pattern and page size bound last.
    let mut values = values[..values.len().saturating_sub(3)].to_vec();
    let window = values.len();
    let offset = i64::try_from(NAME_SEARCH_WINDOW.saturating_sub(1)).unwrap_or(i64::MAX);
    values.push(offset.into());
    let rows = db
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT started_at, trace_id FROM traces WHERE {conditions} {order} \
                     LIMIT 2 OFFSET ${}",
                window + 1
            ),
            values,
        ))
        .await?;
    // The window's last row, if another follows it.
    match rows.as_slice() {
        [last, _] => Ok(Some((
            last.try_get("", "started_at")?,
            last.try_get("", "trace_id")?,
        ))),
        _ => Ok(None),
    }
}

/// The columns [`summary_of`] reads.
const SUMMARY_COLUMNS: &str = "trace_id, name, started_at, last_at, event_count, ended_at, \
                               error_count, status_count, usage_count, input_tokens, output_tokens";

/// One line of the trace list from its summary row.
fn summary_of(row: &sea_orm::QueryResult) -> Result<TraceSummary, StoreError> {
    let count = |column: &'static str| -> Result<u64, StoreError> {
        let n: i64 = row.try_get("", column)?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt { what: column })
    };
    let error_count = count("error_count")?;
    let status = if error_count > 0 {
        Some(SpanStatus::Error)
    } else if count("status_count")? > 0 {
        Some(SpanStatus::Ok)
    } else {
        None
    };
    let usage = if count("usage_count")? > 0 {
        Some(TokenUsage {
            input_tokens: count("input_tokens")?,
            output_tokens: count("output_tokens")?,
        })
    } else {
        None
    };
    Ok(TraceSummary {
        trace_id: row.try_get("", "trace_id")?,
        name: row.try_get("", "name")?,
        started_at: row.try_get("", "started_at")?,
        last_at: row.try_get("", "last_at")?,
        event_count: count("event_count")?,
        ended_at: row.try_get("", "ended_at")?,
        status,
        error_count,
        usage,
    })
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
            filter: TraceFilter::default().fingerprint(),
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
