//! `GET /api/v1/traces/` (newest first) and `GET /api/v1/traces/{id}/` (oldest first), both
//! paged with opaque cursors so that no response grows with the account or the trace.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_store::{EventCursor, SpanStatus, TraceCursor, TraceFilter, TraceSummary};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Auth, Declared};
use crate::trace_page::{self, Granted};
use crate::{ApiError, AppState};

/// Traces per page when the client does not say.
const DEFAULT_LIMIT: u64 = 50;
/// Most traces per page.
const MAX_LIMIT: u64 = 100;

/// A page of the trace list, newest first.
#[derive(Serialize, ToSchema)]
struct TraceList<'a> {
    /// Traces, newest first by their earliest event.
    data: Vec<TraceItem<'a>>,
    /// The next page's `cursor`; `null` on the last page.
    #[schema(required)]
    next_cursor: Option<String>,
}

/// One trace in the list.
#[derive(Serialize, ToSchema)]
#[schema(as = Trace)]
struct TraceItem<'a> {
    /// The trace's id.
    trace_id: &'a str,
    /// The name of its first named event.
    #[schema(required)]
    name: Option<&'a str>,
    /// Its earliest event's timestamp.
    started_at: DateTime<Utc>,
    /// How many events it has.
    event_count: u64,
    /// From its first start to its last end, in milliseconds (up to three decimals); `null`
    /// when no event has an end time.
    #[schema(required)]
    duration_ms: Option<f64>,
    /// `error` if any event failed, else `ok` if any has a status, else `null`.
    #[schema(required, value_type = Option<String>, pattern = "^(ok|error)$")]
    status: Option<&'static str>,
    /// The sum of its events' input tokens; `null` when none reports usage.
    #[schema(required)]
    input_tokens: Option<u64>,
    /// The sum of its events' output tokens; `null` when none reports usage.
    #[schema(required)]
    output_tokens: Option<u64>,
}

impl<'a> From<&'a TraceSummary> for TraceItem<'a> {
    fn from(trace: &'a TraceSummary) -> Self {
        TraceItem {
            trace_id: &trace.trace_id,
            name: trace.name.as_deref(),
            started_at: trace.started_at,
            event_count: trace.event_count,
            duration_ms: trace.duration().map(trace_page::millis),
            status: trace.status.map(SpanStatus::as_str),
            input_tokens: trace.usage.map(|u| u.input_tokens),
            output_tokens: trace.usage.map(|u| u.output_tokens),
        }
    }
}

/// A page of one trace's events, oldest first.
#[derive(Serialize, ToSchema)]
struct TraceEvents<'a> {
    /// The trace's id.
    trace_id: &'a str,
    /// Its events, oldest first; the page ends early once it would pass
    /// `limits.max_response_bytes` (never before its first event).
    events: Vec<EventItem<'a>>,
    /// The next page's `cursor`; `null` on the last page.
    #[schema(required)]
    next_cursor: Option<String>,
}

/// One stored event as the API shows it (the schema of what `trace_page::write` writes).
#[derive(Serialize, ToSchema)]
#[schema(as = Event)]
#[allow(dead_code, reason = "a schema: trace_page::write writes the events")]
struct EventItem<'a> {
    /// The client's id (batch events), `<trace id>-<span id>` (OTLP spans), or `null`.
    #[schema(required)]
    id: Option<&'a str>,
    /// `trace`, `span`, `generation`, `event`, `score` (batch and OTLP spans), `log` or
    /// `metric` (OTLP).
    #[serde(rename = "type")]
    kind: &'a str,
    /// The event's name.
    #[schema(required)]
    name: Option<&'a str>,
    /// When it happened.
    timestamp: DateTime<Utc>,
    /// When the server received it.
    received_at: DateTime<Utc>,
    /// What it carries (for OTLP events, with their resource and scope).
    #[schema(value_type = Option<Object>, required)]
    body: Option<&'a serde_json::Value>,
    /// The `id` of its parent event in the same trace (for OTLP spans,
    /// `<trace id>-<parent span id>`).
    #[schema(required)]
    parent_id: Option<&'a str>,
    /// When it ended.
    #[schema(required)]
    end_time: Option<DateTime<Utc>>,
    /// From `timestamp` to `end_time` in milliseconds (up to three decimals); `null` without
    /// an end time.
    #[schema(required)]
    duration_ms: Option<f64>,
    /// `ok` or `error`; `null` when it does not say.
    #[schema(required, value_type = Option<String>, pattern = "^(ok|error)$")]
    status: Option<&'a str>,
    /// What its status says, in words.
    #[schema(required)]
    status_message: Option<&'a str>,
    /// The model a generation called.
    #[schema(required)]
    model: Option<&'a str>,
    /// The tokens a generation used.
    #[schema(required)]
    usage: Option<trace_page::Usage>,
}

/// The trace list's query: paging and filters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<u64>,
    name: Option<String>,
    from: Option<String>,
    to: Option<String>,
    status: Option<String>,
}

/// The trace list's filter and page from a query string; a malformed value is a 400 naming
/// it. From the dashboard's form (`form`), an empty field is no filter and a time without a
/// zone (`2026-12-06T12:00`, as a browser's date-time field sends it) is in UTC.
pub(crate) fn list_query(
    query: &str,
    form: bool,
) -> Result<(TraceFilter, Option<TraceCursor>, u64), ApiError> {
    let mut query = web::Query::<ListQuery>::from_query(query)
        .map_err(|e| ApiError::BadRequest(format!("query: {e}")))?
        .into_inner();
    if form {
        for field in [
            &mut query.cursor,
            &mut query.name,
            &mut query.from,
            &mut query.to,
            &mut query.status,
        ] {
            if field.as_deref().is_some_and(str::is_empty) {
                *field = None;
            }
        }
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be 1 to {MAX_LIMIT}"
        )));
    }
    let time = |field: &str, value: Option<String>| {
        value
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .or_else(|e| match form {
                        true => chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M")
                            .map(|t| t.and_utc()),
                        false => Err(e),
                    })
                    .ok()
                    .filter(agentvista_store::in_storable_range)
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "{field}: not an RFC 3339 time from year 1 to 9999 \
                             (e.g. 2026-12-06T12:00:00Z)"
                        ))
                    })
            })
            .transpose()
    };
    let name = match query.name {
        Some(name) if name.is_empty() => None,
        Some(name) if name.contains('\0') => {
            return Err(ApiError::BadRequest(
                "name: must not contain the NUL character".into(),
            ));
        }
        Some(name) if name.chars().count() > agentvista_ingest::MAX_ID_CHARS => {
            return Err(ApiError::BadRequest(format!(
                "name: longer than {} characters",
                agentvista_ingest::MAX_ID_CHARS
            )));
        }
        name => name,
    };
    let errors_only = match query.status.as_deref() {
        None => false,
        Some("error") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "status: only `error` is accepted".into(),
            ));
        }
    };
    let filter = TraceFilter {
        name,
        from: time("from", query.from)?,
        to: time("to", query.to)?,
        errors_only,
    };
    let cursor = query
        .cursor
        .as_deref()
        .map(TraceCursor::decode)
        .transpose()
        .map_err(|_| ApiError::BadRequest("cursor: not a cursor this API returned".into()))?;
    Ok((filter, cursor, limit))
}

/// The account's traces, newest first (by their earliest event), a page at a time, filtered
/// by name, start time and errors.
///
/// Scope `read` or a session. Events without a trace id are stored and counted but not listed.
/// A name search reads at most 50,000 traces per page: a page may then hold fewer traces than
/// `limit` (even none) and still have a `next_cursor`. A cursor works only with the filters
/// of the page that returned it.
#[utoipa::path(
    get,
    path = "/api/v1/traces/",
    tag = "traces",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100,
            description = "Traces per page: 1 to 100, 50 when absent."),
        ("cursor" = Option<String>, Query, min_length = 1,
            description = "The previous page's `next_cursor`, with the same filters: an opaque value; any other is a 400."),
        ("name" = Option<String>, Query, max_length = 256,
            description = "Only traces whose name holds this text, ASCII letters in either case."),
        ("from" = Option<DateTime<Utc>>, Query,
            description = "Only traces started at or after this time (RFC 3339)."),
        ("to" = Option<DateTime<Utc>>, Query,
            description = "Only traces started before this time (RFC 3339)."),
        ("status" = Option<String>, Query, pattern = "^error$",
            description = "`error`: only traces with a failed event."),
    ),
    security(("bearer_key" = ["read"]), ("session" = [])),
    responses(
        (status = 200, description = "A page of traces.", body = TraceList),
        crate::schema::KeyErrors,
    ),
)]
pub(crate) async fn list_traces(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (filter, cursor, limit) = list_query(req.query_string(), false)?;
    let page = state
        .store
        .events()
        .traces(auth.principal.account_id, &filter, cursor.as_ref(), limit)
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

/// A trace's events, oldest first, a page at a time.
///
/// Scope `read` or a session. A trace whose id is `batch` is read at
/// `GET /api/v1/traces/batch/`.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{trace_id}/",
    tag = "traces",
    params(
        ("trace_id" = String, Path, min_length = 1, description = "The trace's id."),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000,
            description = "Events per page: 1 to 1000, 100 when absent."),
        ("cursor" = Option<String>, Query, min_length = 1,
            description = "The previous page's `next_cursor`: an opaque value; any other is a 400."),
    ),
    security(("bearer_key" = ["read"]), ("session" = [])),
    responses(
        (status = 200, description = "A page of the trace's events.", body = TraceEvents),
        crate::schema::KeyErrors,
        (status = 404, response = crate::schema::NotFound),
    ),
)]
pub(crate) async fn get_trace(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    one_trace(&state, &auth, &req, path.into_inner()).await
}

/// The events of the trace whose id is `batch`.
///
/// The path is also the batch endpoint's, which takes `POST`; this is `get_trace` for the id
/// `batch`.
#[utoipa::path(
    get,
    path = "/api/v1/traces/batch/",
    tag = "traces",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000,
            description = "Events per page: 1 to 1000, 100 when absent."),
        ("cursor" = Option<String>, Query, min_length = 1,
            description = "The previous page's `next_cursor`: an opaque value; any other is a 400."),
    ),
    security(("bearer_key" = ["read"]), ("session" = [])),
    responses(
        (status = 200, description = "A page of the trace's events.", body = TraceEvents),
        crate::schema::KeyErrors,
        (status = 404, response = crate::schema::NotFound),
    ),
)]
pub(crate) async fn get_trace_batch(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    one_trace(&state, &auth, &req, "batch".to_owned()).await
}

/// One page of a trace's events, oldest first; `next_cursor` while more follow.
async fn one_trace(
    state: &AppState,
    auth: &Auth<Declared>,
    req: &HttpRequest,
    trace_id: String,
) -> Result<HttpResponse, ApiError> {
    if trace_id.contains('\0') {
        return Err(ApiError::BadRequest(
            "trace_id: must not contain the NUL character".into(),
        ));
    }
    let (cursor, limit) = super::paging::page_query(
        req,
        DEFAULT_EVENTS_LIMIT,
        MAX_EVENTS_LIMIT,
        EventCursor::decode,
    )?;
    let max_bytes = state.config.max_response_bytes;
    let Some((page, grant)) = trace_page::read(
        state,
        auth.principal.account_id,
        &trace_id,
        trace_page::Bounds {
            after: cursor.as_ref(),
            limit,
            max_bytes,
            multiple: trace_page::API_MULTIPLE,
            shown: usize::MAX,
        },
        "trace",
    )
    .await?
    else {
        // An unknown trace is a 404; a cursor past the last event is an empty page.
        if cursor.is_none() {
            return Err(ApiError::NotFound);
        }
        return Ok(HttpResponse::Ok().json(TraceEvents {
            trace_id: &trace_id,
            events: Vec::new(),
            next_cursor: None,
        }));
    };
    let body = trace_page::write(&trace_id, &page, max_bytes)?;
    drop(page);
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(Granted::new(body, grant)))
}
