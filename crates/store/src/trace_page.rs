//! A page of one trace's events bounded in bytes as well as in events: the page is planned from
//! the stored sizes of the events' bodies and of the contexts they share, then read as JSON
//! text, so that what a read holds is known before it holds it. A context (an OTLP resource
//! shared by thousands of spans) is read once per page, not once per event.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};
use serde_json::value::RawValue;

use crate::db::{db_time, placeholders};
use crate::span::SpanColumns;
use crate::sql::{int, statement};
use crate::{AccountId, EventCursor, SpanFields, Store, StoreError};

/// What an event costs a page beyond its body and its contexts: its other fields as JSON.
const EVENT_OVERHEAD: usize = 256;

/// Which events a page will hold, and what they weigh: read first, from sizes alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEventsPlan {
    account: AccountId,
    /// Event ids, oldest first.
    ids: Vec<i64>,
    /// The contexts those events point to, with their ancestors.
    contexts: Vec<i64>,
    bytes: usize,
    next_cursor: Option<EventCursor>,
}

impl TraceEventsPlan {
    /// What the page's bodies and contexts weigh as JSON text, plus a little per event: about
    /// the size of the page as the API writes it, and what reading it holds.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the trace has no event past the cursor.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One event of a [`TraceEventsPage`], its body as stored (without its contexts' fields).
#[derive(Clone, Debug)]
pub struct PageEvent {
    /// Its row id (with `timestamp`, where the next page starts).
    pub id: i64,
    /// The client's id, if it sent one.
    pub client_event_id: Option<String>,
    /// Event type.
    pub event_type: String,
    /// Display name.
    pub name: Option<String>,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// Its own fields, as JSON text.
    pub body: Option<Box<RawValue>>,
    /// The context whose fields (and whose parents' fields) complete `body`.
    pub context: Option<i64>,
    /// Its parent, end, status, model and usage.
    pub span: SpanFields,
}

impl PageEvent {
    /// The cursor of the page that starts after this event.
    #[must_use]
    pub fn cursor(&self) -> EventCursor {
        EventCursor::new(db_time(self.timestamp), self.id)
    }
}

/// A stored context: its parent and its fields as one JSON object's text.
#[derive(Clone, Debug)]
pub struct PageContext {
    /// A context whose fields also apply, with lower precedence.
    pub parent: Option<i64>,
    /// The fields, a JSON object.
    pub fields: Box<RawValue>,
}

/// A page of one trace's events, oldest first, with the contexts they point to.
#[derive(Clone, Debug)]
pub struct TraceEventsPage {
    /// Oldest first (by timestamp, then in the order stored).
    pub events: Vec<PageEvent>,
    /// By id.
    pub contexts: HashMap<i64, PageContext>,
    /// Present when more events follow.
    pub next_cursor: Option<EventCursor>,
}

impl Store {
    /// Plans the page of `trace_id`'s events after `after`: at most `limit` events, and no more
    /// than fit in `max_bytes` by [`TraceEventsPlan::bytes`] — but at least one. Reads ids and
    /// sizes only.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn plan_trace_page(
        &self,
        account: AccountId,
        trace_id: &str,
        after: Option<&EventCursor>,
        limit: u64,
        max_bytes: usize,
    ) -> Result<TraceEventsPlan, StoreError> {
        let db = self.reader();
        let backend = db.get_database_backend();
        let size = event_size_sql(backend);
        let mut values: Vec<Value> = vec![account.0.into(), trace_id.into()];
        let seek = match after {
            Some(cursor) => {
                values.push(cursor.timestamp().into());
                values.push(cursor.id().into());
                "AND (timestamp, id) > ($3, $4) "
            }
            None => "",
        };
        values.push(
            i64::try_from(limit.saturating_add(1))
                .unwrap_or(i64::MAX)
                .into(),
        );
        let last = values.len();
        let rows = db
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT id, timestamp, context_id, {size} AS size FROM events \
                     WHERE account_id = $1 AND trace_id = $2 {seek}\
                     ORDER BY timestamp, id LIMIT ${last}"
                ),
                values,
            ))
            .await?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok((
                    int(row, "id")?,
                    row.try_get::<DateTime<Utc>>("", "timestamp")?,
                    row.try_get::<Option<i64>>("", "context_id")?,
                    size_of(row)?,
                ))
            })
            .collect::<Result<Vec<_>, DbErr>>()?;
        let contexts = context_sizes(db, account, rows.iter().filter_map(|r| r.2)).await?;
        let mut plan = TraceEventsPlan {
            account,
            ids: Vec::new(),
            contexts: Vec::new(),
            bytes: 0,
            next_cursor: None,
        };
        let mut used = BTreeSet::new();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        for (i, &(id, _, context, size)) in rows.iter().enumerate() {
            let mut weight = size.saturating_add(EVENT_OVERHEAD);
            let chain = chain(&contexts, context);
            for context in &chain {
                weight = weight.saturating_add(contexts.get(context).map_or(0, |c| c.1));
            }
            let full = i == limit || (i > 0 && plan.bytes.saturating_add(weight) > max_bytes);
            if full {
                if let Some(&(id, timestamp, ..)) = i.checked_sub(1).and_then(|p| rows.get(p)) {
                    plan.next_cursor = Some(EventCursor::new(db_time(timestamp), id));
                }
                break;
            }
            plan.ids.push(id);
            plan.bytes = plan.bytes.saturating_add(weight);
            used.extend(chain);
        }
        plan.contexts = used.into_iter().collect();
        Ok(plan)
    }

    /// Reads the page `plan` planned: the events' rows and their contexts, as JSON text.
    /// Events deleted since (by retention) are left out.
    ///
    /// # Errors
    /// [`StoreError`] from the database, or [`StoreError::Corrupt`] for a body that is not
    /// JSON.
    pub async fn read_trace_page(
        &self,
        plan: TraceEventsPlan,
    ) -> Result<TraceEventsPage, StoreError> {
        let db = self.reader();
        let backend = db.get_database_backend();
        let mut events = Vec::with_capacity(plan.ids.len());
        for ids in plan.ids.chunks(IN_LIST) {
            let (list, values) = in_list(plan.account, ids);
            let rows = db
                .query_all_raw(statement(
                    backend,
                    &format!(
                        "SELECT id, client_event_id, event_type, name, timestamp, received_at, \
                         context_id, CAST(body AS TEXT) AS body, {} FROM events \
                         WHERE account_id = $1 AND id IN ({list})",
                        SpanColumns::SELECT
                    ),
                    values,
                ))
                .await?;
            for row in &rows {
                events.push(PageEvent {
                    id: int(row, "id")?,
                    client_event_id: row.try_get("", "client_event_id")?,
                    event_type: row.try_get("", "event_type")?,
                    name: row.try_get("", "name")?,
                    timestamp: row.try_get("", "timestamp")?,
                    received_at: row.try_get("", "received_at")?,
                    body: raw(row.try_get("", "body")?, "events.body")?,
                    context: row.try_get("", "context_id")?,
                    span: SpanFields::from_columns(SpanColumns::read(row)?),
                });
            }
        }
        events.sort_by_key(|e| (db_time(e.timestamp), e.id));
        let mut contexts = HashMap::with_capacity(plan.contexts.len());
        for ids in plan.contexts.chunks(IN_LIST) {
            let (list, values) = in_list(plan.account, ids);
            let rows = db
                .query_all_raw(statement(
                    backend,
                    &format!(
                        "SELECT id, parent_id, CAST(body AS TEXT) AS body FROM event_contexts \
                         WHERE account_id = $1 AND id IN ({list})"
                    ),
                    values,
                ))
                .await?;
            for row in &rows {
                let fields = raw(row.try_get("", "body")?, "event_contexts.body")?.ok_or(
                    StoreError::Corrupt {
                        what: "event_contexts.body",
                    },
                )?;
                contexts.insert(
                    int(row, "id")?,
                    PageContext {
                        parent: row.try_get("", "parent_id")?,
                        fields,
                    },
                );
            }
        }
        Ok(TraceEventsPage {
            events,
            contexts,
            next_cursor: plan.next_cursor,
        })
    }
}

/// Ids per `IN (…)` list: one parameter each, well below both databases' limits.
const IN_LIST: usize = 500;

fn in_list(account: AccountId, ids: &[i64]) -> (String, Vec<Value>) {
    let list = placeholders(2, ids.len());
    let values = std::iter::once(account.0.into())
        .chain(ids.iter().map(|id| (*id).into()))
        .collect();
    (list, values)
}

/// The byte length of an event's body and text columns as text, computed by the database: a
/// status message may be as long as an attribute.
fn event_size_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "CAST(COALESCE(octet_length(CAST(body AS TEXT)), 0) \
             + COALESCE(octet_length(status_message), 0) + COALESCE(octet_length(parent_id), 0) \
             + COALESCE(octet_length(model), 0) AS BIGINT)"
        }
        _ => {
            "COALESCE(length(CAST(body AS BLOB)), 0) \
             + COALESCE(length(CAST(status_message AS BLOB)), 0) \
             + COALESCE(length(CAST(parent_id AS BLOB)), 0) \
             + COALESCE(length(CAST(model AS BLOB)), 0)"
        }
    }
}

/// The byte length of a JSON column as text, computed by the database.
fn size_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "CAST(COALESCE(octet_length(CAST(body AS TEXT)), 0) AS BIGINT)",
        _ => "COALESCE(length(CAST(body AS BLOB)), 0)",
    }
}

fn size_of(row: &QueryResult) -> Result<usize, DbErr> {
    Ok(usize::try_from(int(row, "size")?).unwrap_or(0))
}

/// The sizes and parents of contexts `ids` and of all their ancestors: one query per level.
async fn context_sizes(
    db: &impl ConnectionTrait,
    account: AccountId,
    ids: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, (Option<i64>, usize)>, StoreError> {
    let backend = db.get_database_backend();
    let size = size_sql(backend);
    let mut found: HashMap<i64, (Option<i64>, usize)> = HashMap::new();
    let mut wanted: Vec<i64> = ids.collect::<BTreeSet<_>>().into_iter().collect();
    while !wanted.is_empty() {
        let mut next = BTreeSet::new();
        for ids in wanted.chunks(IN_LIST) {
            let (list, values) = in_list(account, ids);
            let rows = db
                .query_all_raw(statement(
                    backend,
                    &format!(
                        "SELECT id, parent_id, {size} AS size FROM event_contexts \
                         WHERE account_id = $1 AND id IN ({list})"
                    ),
                    values,
                ))
                .await?;
            for row in &rows {
                let parent: Option<i64> = row.try_get("", "parent_id")?;
                found.insert(int(row, "id")?, (parent, size_of(row)?));
                next.extend(parent);
            }
        }
        wanted = next
            .into_iter()
            .filter(|id| !found.contains_key(id))
            .collect();
    }
    Ok(found)
}

/// Context `first` and its ancestors, nearest first; a corrupt cycle ends.
fn chain(contexts: &HashMap<i64, (Option<i64>, usize)>, first: Option<i64>) -> Vec<i64> {
    let mut out = Vec::new();
    let mut next = first;
    while let Some(id) = next {
        if out.contains(&id) || !contexts.contains_key(&id) {
            break;
        }
        out.push(id);
        next = contexts.get(&id).and_then(|c| c.0);
    }
    out
}

fn raw(text: Option<String>, what: &'static str) -> Result<Option<Box<RawValue>>, StoreError> {
    text.map(|text| RawValue::from_string(text).map_err(|_| StoreError::Corrupt { what }))
        .transpose()
}
