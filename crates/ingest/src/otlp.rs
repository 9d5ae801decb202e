//! OTLP/HTTP: `ExportTraceServiceRequest`, `ExportLogsServiceRequest` and
//! `ExportMetricsServiceRequest` in protobuf or JSON, decoded with the `opentelemetry-proto`
//! crate's generated types and turned into [`Event`]s: one per span, log record or data point.

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::{Event, EventKind, IngestError};

/// The three OTLP signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `/v1/traces`: one event per span.
    Traces,
    /// `/v1/logs`: one event per log record.
    Logs,
    /// `/v1/metrics`: one event per data point.
    Metrics,
}

/// The two OTLP/HTTP encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (the OTLP JSON mapping: hex ids, lowerCamelCase, enums as numbers).
    Json,
}

impl Format {
    /// The format named by a `Content-Type` header (parameters such as `charset` ignored).
    ///
    /// # Errors
    /// [`IngestError::UnsupportedMediaType`] for anything else, or no header.
    pub fn from_content_type(header: Option<&str>) -> Result<Self, IngestError> {
        let essence = header
            .and_then(|h| h.split(';').next())
            .map(|h| h.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("application/x-protobuf" | "application/protobuf") => Ok(Format::Protobuf),
            Some("application/json") => Ok(Format::Json),
            _ => Err(IngestError::UnsupportedMediaType(
                "OTLP takes Content-Type application/x-protobuf or application/json".into(),
            )),
        }
    }

    /// The `Content-Type` of answers in this format.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// Decodes an OTLP export request into events. `received_at` stands in for missing timestamps.
///
/// # Errors
/// [`IngestError::Invalid`] for a body that does not decode, or for a span whose trace or span
/// id has the wrong length (the message names its position).
pub fn decode_otlp(
    signal: Signal,
    format: Format,
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Vec<Event>, IngestError> {
    match signal {
        Signal::Traces => spans(
            decode::<ExportTraceServiceRequest>(format, body)?,
            received_at,
        ),
        Signal::Logs => Ok(logs(
            decode::<ExportLogsServiceRequest>(format, body)?,
            received_at,
        )),
        Signal::Metrics => Ok(metrics(
            decode::<ExportMetricsServiceRequest>(format, body)?,
            received_at,
        )),
    }
}

/// The success answer: an empty `Export*ServiceResponse` (no partial success) in `format`.
#[must_use]
pub fn export_response(signal: Signal, format: Format) -> Vec<u8> {
    match format {
        Format::Protobuf => match signal {
            Signal::Traces => ExportTraceServiceResponse::default().encode_to_vec(),
            Signal::Logs => ExportLogsServiceResponse::default().encode_to_vec(),
            Signal::Metrics => ExportMetricsServiceResponse::default().encode_to_vec(),
        },
        // The generated serde impl writes `"partialSuccess": null`; proto3 JSON omits unset
        // fields, which for every signal leaves an empty object.
        Format::Json => b"{}".to_vec(),
    }
}

fn decode<M>(format: Format, body: &[u8]) -> Result<M, IngestError>
where
    M: Message + Default + serde::de::DeserializeOwned,
{
    match format {
        Format::Protobuf => M::decode(body).map_err(|e| {
            IngestError::Invalid(format!("body: not a valid OTLP protobuf message: {e}"))
        }),
        Format::Json => crate::json::parse(body),
    }
}

fn spans(
    request: ExportTraceServiceRequest,
    received_at: DateTime<Utc>,
) -> Result<Vec<Event>, IngestError> {
    let mut events = Vec::new();
    for (r, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let resource = resource_json(resource_spans.resource.as_ref());
        for (s, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let scope = scope_json(scope_spans.scope.as_ref());
            for (i, span) in scope_spans.spans.into_iter().enumerate() {
                let at =
                    |field: &str| format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}].{field}");
                if span.trace_id.len() != 16 {
                    return Err(IngestError::Invalid(format!(
                        "{}: must be 16 bytes",
                        at("traceId")
                    )));
                }
                if span.span_id.len() != 8 {
                    return Err(IngestError::Invalid(format!(
                        "{}: must be 8 bytes",
                        at("spanId")
                    )));
                }
                let trace_id = hex::encode(&span.trace_id);
                let span_id = hex::encode(&span.span_id);
                let mut body = Map::new();
                body.insert("span_id".into(), span_id.clone().into());
                if !span.parent_span_id.is_empty() {
                    body.insert(
                        "parent_span_id".into(),
                        hex::encode(&span.parent_span_id).into(),
                    );
                }
                body.insert("kind".into(), span.kind.into());
                body.insert(
                    "start_time_unix_nano".into(),
                    span.start_time_unix_nano.into(),
                );
                body.insert("end_time_unix_nano".into(), span.end_time_unix_nano.into());
                body.insert("attributes".into(), attributes_json(&span.attributes));
                if let Some(status) = &span.status {
                    body.insert(
                        "status".into(),
                        json!({"code": status.code, "message": status.message}),
                    );
                }
                if !span.events.is_empty() {
                    let span_events: Vec<Value> = span
                        .events
                        .iter()
                        .map(|e| json!({"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": attributes_json(&e.attributes)}))
                        .collect();
                    body.insert("events".into(), span_events.into());
                }
                body.insert("resource".into(), resource.clone());
                body.insert("scope".into(), scope.clone());
                events.push(Event {
                    id: Some(format!("{trace_id}-{span_id}")),
                    kind: EventKind::Span,
                    trace_id: Some(trace_id),
                    name: non_empty(span.name),
                    timestamp: time(span.start_time_unix_nano, received_at),
                    body: Some(Value::Object(body)),
                });
            }
        }
    }
    Ok(events)
}

fn logs(request: ExportLogsServiceRequest, received_at: DateTime<Utc>) -> Vec<Event> {
    let mut events = Vec::new();
    for resource_logs in request.resource_logs {
        let resource = resource_json(resource_logs.resource.as_ref());
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_json(scope_logs.scope.as_ref());
            for record in scope_logs.log_records {
                let mut body = Map::new();
                body.insert("severity_number".into(), record.severity_number.into());
                body.insert("severity_text".into(), record.severity_text.clone().into());
                body.insert(
                    "body".into(),
                    record.body.as_ref().map_or(Value::Null, any_json),
                );
                body.insert("attributes".into(), attributes_json(&record.attributes));
                if record.span_id.iter().any(|b| *b != 0) {
                    body.insert("span_id".into(), hex::encode(&record.span_id).into());
                }
                body.insert("resource".into(), resource.clone());
                body.insert("scope".into(), scope.clone());
                let when = if record.time_unix_nano != 0 {
                    record.time_unix_nano
                } else {
                    record.observed_time_unix_nano
                };
                let name = non_empty(record.event_name).or_else(|| non_empty(record.severity_text));
                events.push(Event {
                    id: None,
                    kind: EventKind::Log,
                    trace_id: trace_of(&record.trace_id),
                    name,
                    timestamp: time(when, received_at),
                    body: Some(Value::Object(body)),
                });
            }
        }
    }
    events
}

fn metrics(request: ExportMetricsServiceRequest, received_at: DateTime<Utc>) -> Vec<Event> {
    let mut events = Vec::new();
    for resource_metrics in request.resource_metrics {
        let resource = resource_json(resource_metrics.resource.as_ref());
        for scope_metrics in resource_metrics.scope_metrics {
            let scope = scope_json(scope_metrics.scope.as_ref());
            for metric in scope_metrics.metrics {
                let mut push =
                    |kind: &str, time_unix_nano: u64, attributes: &[KeyValue], point: Value| {
                        let body = json!({
                            "metric_type": kind,
                            "unit": metric.unit,
                            "description": metric.description,
                            "attributes": attributes_json(attributes),
                            "point": point,
                            "resource": resource,
                            "scope": scope,
                        });
                        events.push(Event {
                            id: None,
                            kind: EventKind::Metric,
                            trace_id: None,
                            name: non_empty(metric.name.clone()),
                            timestamp: time(time_unix_nano, received_at),
                            body: Some(body),
                        });
                    };
                let number = |value: Option<number_data_point::Value>| match value {
                    Some(number_data_point::Value::AsDouble(v)) => json!(v),
                    Some(number_data_point::Value::AsInt(v)) => json!(v),
                    None => Value::Null,
                };
                match &metric.data {
                    Some(metric::Data::Gauge(gauge)) => {
                        for p in &gauge.data_points {
                            push(
                                "gauge",
                                p.time_unix_nano,
                                &p.attributes,
                                json!({"value": number(p.value)}),
                            );
                        }
                    }
                    Some(metric::Data::Sum(sum)) => {
                        for p in &sum.data_points {
                            push(
                                "sum",
                                p.time_unix_nano,
                                &p.attributes,
                                json!({"value": number(p.value)}),
                            );
                        }
                    }
                    Some(metric::Data::Histogram(histogram)) => {
                        for p in &histogram.data_points {
                            let point = json!({"count": p.count, "sum": p.sum, "min": p.min, "max": p.max,
                                "bucket_counts": p.bucket_counts, "explicit_bounds": p.explicit_bounds});
                            push("histogram", p.time_unix_nano, &p.attributes, point);
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(histogram)) => {
                        for p in &histogram.data_points {
                            let point = json!({"count": p.count, "sum": p.sum, "scale": p.scale,
                                "zero_count": p.zero_count, "min": p.min, "max": p.max});
                            push(
                                "exponential_histogram",
                                p.time_unix_nano,
                                &p.attributes,
                                point,
                            );
                        }
                    }
                    Some(metric::Data::Summary(summary)) => {
                        for p in &summary.data_points {
                            let quantiles: Vec<Value> = p
                                .quantile_values
                                .iter()
                                .map(|q| json!({"quantile": q.quantile, "value": q.value}))
                                .collect();
                            let point =
                                json!({"count": p.count, "sum": p.sum, "quantiles": quantiles});
                            push("summary", p.time_unix_nano, &p.attributes, point);
                        }
                    }
                    None => {}
                }
            }
        }
    }
    events
}

/// A trace id when it is 16 bytes and not all zero (logs may carry none).
fn trace_of(bytes: &[u8]) -> Option<String> {
    (bytes.len() == 16 && bytes.iter().any(|b| *b != 0)).then(|| hex::encode(bytes))
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// Nanoseconds since the epoch; 0 (unset) or out of range falls back to `received_at`.
fn time(unix_nano: u64, received_at: DateTime<Utc>) -> DateTime<Utc> {
    i64::try_from(unix_nano)
        .ok()
        .filter(|n| *n > 0)
        .map_or(received_at, DateTime::from_timestamp_nanos)
}

fn attributes_json(attributes: &[KeyValue]) -> Value {
    let mut map = Map::new();
    for kv in attributes {
        map.insert(
            kv.key.clone(),
            kv.value.as_ref().map_or(Value::Null, any_json),
        );
    }
    Value::Object(map)
}

fn any_json(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone().into(),
        Some(any_value::Value::BoolValue(b)) => (*b).into(),
        Some(any_value::Value::IntValue(i)) => (*i).into(),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(array)) => array.values.iter().map(any_json).collect(),
        Some(any_value::Value::KvlistValue(list)) => attributes_json(&list.values),
        Some(any_value::Value::BytesValue(bytes)) => hex::encode(bytes).into(),
        Some(any_value::Value::StringValueStrindex(i)) => json!({"string_index": i}),
        None => Value::Null,
    }
}

fn resource_json(resource: Option<&Resource>) -> Value {
    resource.map_or_else(|| json!({}), |r| attributes_json(&r.attributes))
}

fn scope_json(scope: Option<&InstrumentationScope>) -> Value {
    scope.map_or(
        Value::Null,
        |s| json!({"name": s.name, "version": s.version}),
    )
}
