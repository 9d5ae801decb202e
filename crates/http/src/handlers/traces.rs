//! `GET /api/v1/traces/` (newest first) and `GET /api/v1/traces/{id}/` (oldest first), both
//! paged with opaque cursors so that no response grows with the account or the trace.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_store::{EventCursor, StoredEvent, TraceCursor, TraceSummary};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{Auth, Read};
use crate::{ApiError, AppState};

/// Traces per page when the client does not say.
const DEFAULT_LIMIT: u64 = 50;
/// Most traces per page.
const MAX_LIMIT: u64 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TracesQuery {
    cursor: Option<String>,
    limit: Option<u64>,
}

/// A page of the trace list, newest first.
#[derive(Serialize)]
struct TraceList<'a> {
    data: Vec<TraceItem<'a>>,
    next_cursor: Option<String>,
}

/// One trace in the list.
#[derive(Serialize)]
struct TraceItem<'a> {
    trace_id: &'a str,
    name: Option<&'a str>,
    started_at: DateTime<Utc>,
    event_count: u64,
}

impl<'a> From<&'a TraceSummary> for TraceItem<'a> {
    fn from(trace: &'a TraceSummary) -> Self {
        TraceItem {
            trace_id: &trace.trace_id,
            name: trace.name.as_deref(),
            started_at: trace.started_at,
            event_count: trace.event_count,
        }
    }
}

/// A page of one trace's events, oldest first.
#[derive(Serialize)]
struct TraceEvents<'a> {
    trace_id: &'a str,
    events: Vec<EventItem<'a>>,
    next_cursor: Option<String>,
}

/// One stored event as the API shows it.
#[derive(Serialize)]
struct EventItem<'a> {
    id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    name: Option<&'a str>,
    timestamp: DateTime<Utc>,
    received_at: DateTime<Utc>,
    body: Option<&'a serde_json::Value>,
}

impl<'a> From<&'a StoredEvent> for EventItem<'a> {
    fn from(event: &'a StoredEvent) -> Self {
        EventItem {
            id: event.client_event_id.as_deref(),
            kind: &event.event_type,
            name: event.name.as_deref(),
            timestamp: event.timestamp,
            received_at: event.received_at,
            body: event.body.as_ref(),
        }
    }
}

/// A page request's `?cursor` (decoded by `decode`) and `?limit` (1 to `max`, `default` when
/// absent); anything else in the query is a 400.
fn page_query<C, E>(
    req: &HttpRequest,
    default: u64,
    max: u64,
    decode: fn(&str) -> Result<C, E>,
) -> Result<(Option<C>, u64), ApiError> {
    let query = web::Query::<TracesQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("query: {e}")))?
        .into_inner();
    let limit = query.limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit: must be 1 to {max}")));
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(decode)
        .transpose()
        .map_err(|_| ApiError::BadRequest("cursor: not a cursor this API returned".into()))?;
    Ok((cursor, limit))
}

pub(crate) async fn list(
    state: web::Data<AppState>,
    auth: Auth<Read>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (cursor, limit) = page_query(&req, DEFAULT_LIMIT, MAX_LIMIT, TraceCursor::decode)?;
    let page = state
        .store
        .events()
        .traces(auth.principal.account_id, cursor.as_ref(), limit)
        .await?;
    Ok(HttpResponse::Ok().json(TraceList {
        data: page.traces.iter().map(TraceItem::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

/// Events per page of one trace when the client does not say.
const DEFAULT_EVENTS_LIMIT: u64 = 100;
/// Most events per page of one trace.
const MAX_EVENTS_LIMIT: u64 = 1000;

pub(crate) async fn events(
    state: web::Data<AppState>,
    auth: Auth<Read>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    one_trace(&state, &auth, &req, path.into_inner()).await
}

/// `GET /api/v1/traces/batch/`: the trace whose id is `batch` (the path is also the batch
/// endpoint's, for `POST`).
pub(crate) async fn batch_trace(
    state: web::Data<AppState>,
    auth: Auth<Read>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    one_trace(&state, &auth, &req, "batch".to_owned()).await
}

/// One page of a trace's events, oldest first; `next_cursor` while more follow.
async fn one_trace(
    state: &AppState,
    auth: &Auth<Read>,
    req: &HttpRequest,
    trace_id: String,
) -> Result<HttpResponse, ApiError> {
    if trace_id.contains('\0') {
        return Err(ApiError::BadRequest(
            "trace_id: must not contain the NUL character".into(),
        ));
    }
    let (cursor, limit) = page_query(
        req,
        DEFAULT_EVENTS_LIMIT,
        MAX_EVENTS_LIMIT,
        EventCursor::decode,
    )?;
    let page = state
        .store
        .events()
        .of_trace(auth.principal.account_id, &trace_id, cursor.as_ref(), limit)
        .await?;
    // An unknown trace is a 404; a cursor past the last event is an empty page.
    if page.events.is_empty() && cursor.is_none() {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::Ok().json(TraceEvents {
        trace_id: &trace_id,
        events: page.events.iter().map(EventItem::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}
