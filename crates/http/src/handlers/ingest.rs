//! Ingestion: `POST /api/v1/traces/batch/` and `POST /otlp/v1/{traces,logs,metrics}`.
//! Every request is one all-or-nothing insert-and-count transaction; 200 only after commit.

use std::collections::HashMap;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_ingest::{
    Context, Decoded, Event, Format, Signal, decode_batch, decode_otlp, expansion, export_response,
};
use agentvista_quota::{Period, QuotaExceeded, RecordError, Recorded};
use agentvista_store::{EventBatch, NewContext, NewEvent};
use chrono::{DateTime, Utc};
use prost::Message;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::{Auth, Declared, Principal, authorize};
use crate::{ApiError, AppState, Body};

/// Id-less events (log records, data points, batch items without `id`) from which a request is
/// first checked against what is left of the month, outside the write path: they can never be
/// duplicates, so if they alone do not fit, the answer is a 429 without inserting and rolling
/// back thousands of rows while other requests wait for the writer. Below it, trying costs
/// less than the two reads of the check.
const PRECHECK_MIN_EVENTS: usize = 100;

/// The answer to a batch: events stored and counted, and those skipped as already stored.
#[derive(Serialize, ToSchema)]
struct BatchAnswer {
    /// Events stored and counted.
    accepted: u64,
    /// Events whose `id` the account had stored already: neither stored nor counted again.
    duplicates: u64,
}

/// A `google.rpc.Status` in OTLP/JSON: how the OTLP endpoints answer errors.
#[derive(Serialize, ToSchema)]
#[schema(as = RpcStatus)]
pub(crate) struct RpcStatusJson<'a> {
    /// The gRPC code: 3 INVALID_ARGUMENT (400, 413, 415), 16 UNAUTHENTICATED (401),
    /// 7 PERMISSION_DENIED (403), 8 RESOURCE_EXHAUSTED (429), 14 UNAVAILABLE (503),
    /// 13 INTERNAL (500).
    code: i32,
    /// The contract's sentence for the error.
    message: &'a str,
    details: [ErrorInfoJson<'a>; 1],
}

/// A `google.rpc.ErrorInfo` in the JSON mapping of an `Any`: the error as the JSON API names
/// it.
#[derive(Serialize, ToSchema)]
#[schema(as = ErrorInfo)]
pub(crate) struct ErrorInfoJson<'a> {
    /// `type.googleapis.com/google.rpc.ErrorInfo`.
    #[serde(rename = "@type")]
    type_url: &'static str,
    /// The contract's error code (`monthly_event_limit_exceeded`, `insufficient_scope`, …).
    reason: &'a str,
    /// `agentvista`.
    domain: &'a str,
    /// The error's other fields as text: `limit`, `used`, `resets_at`, `required_scope`.
    #[schema(value_type = HashMap<String, String>)]
    metadata: &'a HashMap<String, String>,
}

/// The `domain` of this server's `google.rpc.ErrorInfo` details.
const ERROR_DOMAIN: &str = "agentvista";

/// The body of `POST /api/v1/traces/batch/`, as `agentvista_ingest::decode_batch` reads it;
/// only its schema is used (the pure ingest crate knows nothing of OpenAPI).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"batch": [
    {"id": "evt-1", "type": "trace", "trace_id": "trace-42", "timestamp": "2026-11-27T12:00:00Z", "name": "support agent"},
    {"id": "evt-2", "type": "generation", "trace_id": "trace-42", "parent_id": "evt-1", "timestamp": "2026-11-27T12:00:01Z", "end_time": "2026-11-27T12:00:02Z", "name": "gpt call", "status": "ok", "model": "gpt-4o-mini", "usage": {"input_tokens": 812, "output_tokens": 64}}
]}))]
#[allow(dead_code, reason = "a schema: decode_batch reads the body")]
struct BatchRequest {
    /// 1 to 1000 events; one invalid event refuses them all.
    #[schema(min_items = 1, max_items = 1000)]
    batch: Vec<BatchEvent>,
}

/// One event of a batch. A field this server does not know is a 400 naming it.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "a schema: decode_batch reads the body")]
struct BatchEvent {
    /// The client's id: a second event with an id already stored for the account is a
    /// duplicate. Not blank, at most 256 characters.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    id: Option<String>,
    /// What the event is.
    #[serde(rename = "type")]
    kind: BatchEventType,
    /// The trace it belongs to: not blank, at most 256 characters.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    trace_id: String,
    /// When it happened (RFC 3339).
    timestamp: DateTime<Utc>,
    /// Not blank, at most 256 characters.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    name: Option<String>,
    /// Anything the event carries.
    #[schema(value_type = Option<Object>)]
    body: Option<serde_json::Map<String, serde_json::Value>>,
    /// The `id` of its parent event in the same trace: not blank, at most 256 characters.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    parent_id: Option<String>,
    /// When it ended (RFC 3339), not before `timestamp`.
    end_time: Option<DateTime<Utc>>,
    /// How it ended.
    status: Option<BatchEventStatus>,
    /// What its status says, in words.
    status_message: Option<String>,
    /// The model a `generation` called (on any other type, a 400): not blank, at most 256
    /// characters.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    model: Option<String>,
    /// The tokens a `generation` used (on any other type, a 400).
    usage: Option<BatchUsage>,
}

/// How a batch event ended.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "a schema: decode_batch reads the body")]
enum BatchEventStatus {
    Ok,
    Error,
}

/// The tokens a model call used.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "a schema: decode_batch reads the body")]
struct BatchUsage {
    /// Tokens of the prompt.
    #[schema(maximum = 4_294_967_295_u64)]
    input_tokens: u64,
    /// Tokens of the completion.
    #[schema(maximum = 4_294_967_295_u64)]
    output_tokens: u64,
}

/// The kinds of batch event.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "a schema: decode_batch reads the body")]
enum BatchEventType {
    Trace,
    Span,
    Generation,
    Event,
    Score,
}

/// Stores and counts a batch of events: all of them, or none.
///
/// Scope `write`. An `id` already stored for the account is a duplicate: neither stored nor
/// counted again, and reported. A 200 means the events are committed to the database.
#[utoipa::path(
    post,
    path = "/api/v1/traces/batch/",
    tag = "ingestion",
    security(("bearer_key" = ["write"]), ("session" = [], "csrf_token" = [])),
    request_body(content = BatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Every event stored and counted, or a duplicate.", body = BatchAnswer),
        crate::schema::KeyErrors,
        crate::schema::BodyErrors,
        (status = 429, response = crate::schema::QuotaExceeded),
    ),
)]
pub(crate) async fn ingest_batch(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    // Held until the events are stored: the body, then what it decodes to.
    let mut grant = state.budget.grant(auth.principal.account_id, "batch");
    let body = body
        .json_bytes_within(&mut grant, |body| Ok(expansion::batch(body.len())))
        .await?;
    let decoded = decode_batch(&body, &state.config.caps)?;
    drop(body);
    let recorded = record(&state, &auth.principal, decoded, Utc::now()).await?;
    drop(grant);
    Ok(HttpResponse::Ok().json(BatchAnswer {
        accepted: recorded.accepted,
        duplicates: recorded.duplicates,
    }))
}

/// Declares an OTLP/HTTP endpoint: the handler for one signal, with its annotation.
macro_rules! otlp_endpoint {
    (
        $name:ident,
        $signal:expr,
        $summary:literal,
        $description:literal,
        $path:literal,
        $example:tt
    ) => {
        #[doc = $summary]
        ///
        #[doc = $description]
        ///
        /// Scope `write`. OTLP/HTTP in protobuf or JSON (a `charset` parameter is fine), which
        /// the answer uses too, errors included (`google.rpc.Status`). At most 10,000 events
        /// per request. Nothing is stored or counted unless all of it is.
        #[utoipa::path(
            post,
            path = $path,
            tag = "ingestion",
            security(("bearer_key" = ["write"]), ("session" = [], "csrf_token" = [])),
            request_body(content(
                (crate::schema::Protobuf = "application/x-protobuf"),
                (crate::schema::AnyObject = "application/json", example = json!($example)),
            )),
            responses(
                (status = 200, description = "The `Export*ServiceResponse`, in the request's content type.",
                    content(
                        (crate::schema::Protobuf = "application/x-protobuf"),
                        (crate::schema::AnyObject = "application/json"),
                    )),
                crate::schema::OtlpErrors,
            ),
        )]
        pub(crate) async fn $name(
            state: web::Data<AppState>,
            req: HttpRequest,
            body: Body,
        ) -> HttpResponse {
            otlp(state, req, body, $signal).await
        }
    };
}

otlp_endpoint!(
    otlp_traces,
    Signal::Traces,
    "OTLP/HTTP traces: one event per span.",
    "A span's event id is `<trace id>-<span id>`, so an exporter's retry is a duplicate.",
    "/otlp/v1/traces",
    {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "llm call", "kind": 3,
        "startTimeUnixNano": "1764244800000000000", "endTimeUnixNano": "1764244801000000000"
    }]}]}]}
);
otlp_endpoint!(
    otlp_logs,
    Signal::Logs,
    "OTLP/HTTP logs: one event per log record.",
    "Log records have no id: a retry is counted again.",
    "/otlp/v1/logs",
    {"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1764244800000000000", "severityText": "INFO",
        "body": {"stringValue": "tool call finished"}
    }]}]}]}
);
otlp_endpoint!(
    otlp_metrics,
    Signal::Metrics,
    "OTLP/HTTP metrics: one event per data point.",
    "Data points have no id: a retry is counted again.",
    "/otlp/v1/metrics",
    {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "name": "llm.tokens", "unit": "1",
        "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
            {"asInt": "812", "timeUnixNano": "1764244800000000000"}
        ]}
    }]}]}]}
);

/// The three OTLP/HTTP endpoints. Errors, authentication included, answer in the request's
/// format as a `google.rpc.Status`, with the contract's HTTP status and headers.
async fn otlp(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Body,
    signal: Signal,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = Format::from_content_type(content_type);
    let answer = async {
        let principal = authorize::<Declared>(&req).await?;
        let format = format.clone()?;
        let mut grant = state.budget.grant(
            principal.account_id,
            match signal {
                Signal::Traces => "otlp_traces",
                Signal::Logs => "otlp_logs",
                Signal::Metrics => "otlp_metrics",
            },
        );
        let cost = |body: &[u8]| Ok(expansion::otlp(signal, format, body)?);
        let body = body.bytes_within(&mut grant, cost).await?;
        let received_at = Utc::now();
        let decoded = decode_otlp(signal, format, &body, received_at, &state.config.caps)?;
        // The decoded request holds all it needs; the raw body can go before the transaction.
        drop(body);
        if !decoded.events.is_empty() {
            record(&state, &principal, decoded, received_at).await?;
        }
        drop(grant);
        Ok::<_, ApiError>(format)
    };
    match answer.await {
        Ok(format) => HttpResponse::Ok()
            .content_type(format.content_type())
            .body(export_response(signal, format)),
        // An unreadable Content-Type still deserves an answer: OTLP/JSON is the readable one.
        Err(err) => otlp_error(&err, format.unwrap_or(Format::Json)),
    }
}

/// `err` as OTLP requires: same status and headers, body a `google.rpc.Status`. Its one
/// detail, a `google.rpc.ErrorInfo`, carries what the JSON API's error body says: `reason` is
/// the contract's error code (`monthly_event_limit_exceeded`, `insufficient_scope`, …) and
/// `metadata` its other fields as text (`limit`, `used`, `resets_at`, `required_scope`), so
/// that an exporter can tell a used-up month from a rate limit without parsing sentences.
fn otlp_error(err: &ApiError, format: Format) -> HttpResponse {
    let mut response = err.response_builder();
    let metadata = error_metadata(err);
    let info = tonic_types::pb::ErrorInfo {
        reason: err.code().to_owned(),
        domain: ERROR_DOMAIN.to_owned(),
        metadata: metadata.clone(),
    };
    let status = tonic_types::Status {
        code: err.grpc_code(),
        message: err.message(),
        details: vec![prost_types::Any {
            type_url: tonic_types::ErrorInfo::TYPE_URL.to_owned(),
            value: info.encode_to_vec(),
        }],
    };
    response.content_type(format.content_type());
    match format {
        Format::Protobuf => response.body(status.encode_to_vec()),
        // `json` keeps the content type set above.
        Format::Json => response.json(RpcStatusJson {
            code: status.code,
            message: &status.message,
            details: [ErrorInfoJson {
                type_url: tonic_types::ErrorInfo::TYPE_URL,
                reason: &info.reason,
                domain: &info.domain,
                metadata: &metadata,
            }],
        }),
    }
}

/// The fields the contract's error body adds to `error` and `message`, as text.
fn error_metadata(err: &ApiError) -> HashMap<String, String> {
    let Ok(Value::Object(body)) = serde_json::to_value(err.body()) else {
        return HashMap::new();
    };
    body.into_iter()
        .filter(|(name, _)| name != "error" && name != "message")
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (name, text)
        })
        .collect()
}

/// Stores and counts the decoded events for the principal's account, or refuses them all.
async fn record(
    state: &AppState,
    principal: &Principal,
    decoded: Decoded,
    received_at: DateTime<Utc>,
) -> Result<Recorded, ApiError> {
    let period = Period::containing(received_at);
    let quota_exceeded = |exceeded| ApiError::QuotaExceeded {
        exceeded,
        retry_after_secs: period.seconds_until_reset(received_at),
    };
    let id_less = decoded.events.iter().filter(|e| e.id.is_none()).count();
    if id_less >= PRECHECK_MIN_EVENTS {
        precheck(state, principal, period, id_less)
            .await?
            .map_err(quota_exceeded)?;
    }
    let batch = EventBatch {
        api_key_id: principal.key_id(),
        received_at,
        contexts: decoded.contexts.into_iter().map(new_context).collect(),
        events: decoded.events.into_iter().map(new_event).collect(),
    };
    // The plan and spend cap are read inside the accounting transaction, so that a cap lowered
    // while this request is in flight still holds.
    match state
        .store
        .record(principal.account_id, period, &state.config.plans, batch)
        .await
    {
        Ok(recorded) => Ok(recorded),
        Err(RecordError::Exceeded(exceeded)) => Err(quota_exceeded(exceeded)),
        Err(RecordError::UnknownPlan(unknown)) => Err(ApiError::internal(unknown)),
        Err(RecordError::Storage(err)) => Err(err.into()),
        Err(RecordError::CredentialEnded) => {
            tracing::info!(
                cause = "revoked or expired while its request was in flight",
                "API key refused"
            );
            Err(ApiError::InvalidApiKey)
        }
    }
}

/// Whether `new` events that cannot be duplicates fit what is left of the month, by a read
/// outside the transaction. `Ok(Err)` is a certain refusal (usage only grows within a period);
/// `Ok(Ok)` decides nothing: the transaction checks again, exactly.
async fn precheck(
    state: &AppState,
    principal: &Principal,
    period: Period,
    new: usize,
) -> Result<Result<(), QuotaExceeded>, ApiError> {
    let account = state.store.accounts().get(principal.account_id).await?;
    let allowance = state
        .config
        .plans
        .allowance(&account.plan, account.spend_cap_cents)
        .map_err(ApiError::internal)?;
    let used = state.store.used(account.id, period).await?;
    Ok(allowance.check(used, new as u64, &period))
}

fn new_context(context: Context) -> NewContext {
    NewContext {
        parent: context.parent,
        fields: context.fields,
    }
}

fn new_event(event: Event) -> NewEvent {
    NewEvent {
        client_event_id: event.id,
        event_type: event.kind.as_str().to_owned(),
        trace_id: event.trace_id,
        name: event.name,
        timestamp: event.timestamp,
        body: event.body,
        context: event.context,
        span: event
            .span
            .map(|span| Box::new(crate::span_fields::stored(*span))),
    }
}
