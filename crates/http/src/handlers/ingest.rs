//! Ingestion: `POST /api/v1/traces/batch/` and `POST /otlp/v1/{traces,logs,metrics}`.
//! Every request is one all-or-nothing insert-and-count transaction; 200 only after commit.

use std::borrow::Cow;

use actix_web::http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use agentvista_ingest::{
    ContentEncoding, Event, Format, Signal, decode_batch, decode_otlp, export_response,
};
use agentvista_quota::{Allowance, Period, RecordError, Recorded, UsageLedger};
use agentvista_store::{EventBatch, NewEvent};
use chrono::{DateTime, Utc};
use prost::Message;
use serde_json::json;

use crate::auth::{Auth, Principal, Write, authorize};
use crate::body::{declared_length, is_json, read_body};
use crate::{ApiError, AppState};

/// An account whose plan is missing from the configuration: an operator error.
#[derive(Debug, thiserror::Error)]
#[error("account plan {0:?} is not in the configuration")]
struct UnknownPlan(String);

pub(crate) async fn batch(
    state: web::Data<AppState>,
    auth: Auth<Write>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    is_json(req.headers())?;
    let body = read_decoded(&state, req.headers(), payload.into_inner()).await?;
    let events = decode_batch(&body)?;
    let recorded = record(&state, &auth.principal, events, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(json!({
        "accepted": recorded.accepted,
        "duplicates": recorded.duplicates,
    })))
}

/// The three OTLP/HTTP endpoints. Errors, authentication included, answer in the request's
/// format as a `google.rpc.Status`, with the contract's HTTP status and headers.
pub(crate) async fn otlp(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    signal: Signal,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = Format::from_content_type(content_type);
    let answer = async {
        let principal = authorize::<Write>(&req).await?;
        let format = format.clone()?;
        let body = read_decoded(&state, req.headers(), payload.into_inner()).await?;
        let received_at = Utc::now();
        let events = decode_otlp(signal, format, &body, received_at)?;
        if !events.is_empty() {
            record(&state, &principal, events, received_at).await?;
        }
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

/// `err` as OTLP requires: same status and headers, body a `google.rpc.Status`.
fn otlp_error(err: &ApiError, format: Format) -> HttpResponse {
    let json_answer = err.error_response();
    let mut response = HttpResponse::build(json_answer.status());
    for (name, value) in json_answer.headers() {
        if name != CONTENT_TYPE {
            response.insert_header((name.clone(), value.clone()));
        }
    }
    let status = tonic_types::Status {
        code: err.grpc_code(),
        message: err.message(),
        details: Vec::new(),
    };
    let body = match format {
        Format::Protobuf => status.encode_to_vec(),
        Format::Json => json!({"code": status.code, "message": status.message})
            .to_string()
            .into_bytes(),
    };
    response.content_type(format.content_type()).body(body)
}

/// The body, read under the limit and inflated under the same limit. An unencoded body is
/// handed on as read, without a copy.
async fn read_decoded(
    state: &AppState,
    headers: &HeaderMap,
    payload: actix_web::dev::Payload,
) -> Result<Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    let encoding =
        ContentEncoding::parse(headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()))?;
    let raw = read_body(payload, limit, declared_length(headers)).await?;
    let inflated = match encoding.decode(&raw, limit)? {
        Cow::Borrowed(_) => None,
        Cow::Owned(inflated) => Some(inflated),
    };
    Ok(inflated.map_or_else(|| raw.freeze(), Bytes::from))
}

/// Stores and counts `events` for the principal's account, or refuses them all.
async fn record(
    state: &AppState,
    principal: &Principal,
    events: Vec<Event>,
    received_at: DateTime<Utc>,
) -> Result<Recorded, ApiError> {
    // Plan and spend cap are read before the accounting transaction, which stays short.
    let account = state.store.accounts().get(principal.account_id).await?;
    let plan = state
        .config
        .plans
        .get(&account.plan)
        .ok_or_else(|| ApiError::internal(UnknownPlan(account.plan.clone())))?;
    let allowance = Allowance::new(plan, account.spend_cap_cents);
    let period = Period::containing(received_at);
    let batch = EventBatch {
        api_key_id: principal.key_id(),
        received_at,
        events: events.into_iter().map(new_event).collect(),
    };
    match state
        .store
        .record(account.id, period, allowance, batch)
        .await
    {
        Ok(recorded) => Ok(recorded),
        Err(RecordError::Exceeded(exceeded)) => Err(ApiError::QuotaExceeded {
            exceeded,
            retry_after_secs: period.seconds_until_reset(received_at),
        }),
        Err(RecordError::Storage(err)) => Err(err.into()),
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
    }
}
