//! `GET /api/v1/traces/` (newest first) and `GET /api/v1/traces/{id}/` (oldest first), both
//! paged with opaque cursors so that no response grows with the account or the trace.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_store::{EventCursor, TraceCursor};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Auth, Read};
use crate::handlers::rfc3339;
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

pub(crate) async fn list(
    state: web::Data<AppState>,
    auth: Auth<Read>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<TracesQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("query: {e}")))?
        .into_inner();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be 1 to {MAX_LIMIT}"
        )));
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(TraceCursor::decode)
        .transpose()
        .map_err(|_| ApiError::BadRequest("cursor: not a cursor this API returned".into()))?;
    let page = state
        .store
        .events()
        .traces(auth.principal.account_id, cursor.as_ref(), limit)
        .await?;
    let data: Vec<_> = page
        .traces
        .iter()
        .map(|t| {
            json!({
                "trace_id": t.trace_id,
                "name": t.name,
                "started_at": rfc3339(&t.started_at),
                "event_count": t.event_count,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "data": data,
        "next_cursor": page.next_cursor.map(|c| c.encode()),
    })))
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
    let query = web::Query::<TracesQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("query: {e}")))?
        .into_inner();
    let limit = query.limit.unwrap_or(DEFAULT_EVENTS_LIMIT);
    if !(1..=MAX_EVENTS_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be 1 to {MAX_EVENTS_LIMIT}"
        )));
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(EventCursor::decode)
        .transpose()
        .map_err(|_| ApiError::BadRequest("cursor: not a cursor this API returned".into()))?;
    let page = state
        .store
        .events()
        .of_trace(auth.principal.account_id, &trace_id, cursor.as_ref(), limit)
        .await?;
    // An unknown trace is a 404; a cursor past the last event is an empty page.
    if page.events.is_empty() && cursor.is_none() {
        return Err(ApiError::NotFound);
    }
    let events: Vec<_> = page
        .events
        .into_iter()
        .map(|e| {
            json!({
                "id": e.client_event_id,
                "type": e.event_type,
                "name": e.name,
                "timestamp": rfc3339(&e.timestamp),
                "received_at": rfc3339(&e.received_at),
                "body": e.body,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "trace_id": trace_id,
        "events": events,
        "next_cursor": page.next_cursor.map(|c| c.encode()),
    })))
}
