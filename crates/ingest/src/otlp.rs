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

use crate::count::Counts;
use crate::{Context, Decoded, Event, EventKind, Format, IngestError, MAX_ID_CHARS, Signal};

/// Most spans, log records or metric data points one OTLP request may carry; also the most
/// resource, scope (and metric) entries. Counted before any event is built, and for protobuf
/// before the message itself is decoded, so an oversized request costs a scan, not memory.
pub const MAX_OTLP_EVENTS: usize = 10_000;

/// Decodes an OTLP export request into events. `received_at` stands in for missing timestamps.
/// The resource and scope of each group (and the unit and description of each metric) are held
/// once in [`Decoded::contexts`], not copied into every event.
///
/// # Errors
/// [`IngestError::Invalid`] for a body that does not decode, for more than
/// [`MAX_OTLP_EVENTS`] spans, records or points (or resource, scope and metric entries), for a
/// span whose trace or span id has the wrong length, for a metric name longer than
/// [`MAX_ID_CHARS`](crate::MAX_ID_CHARS) characters, and for a NUL character in any string
/// (the message names its position).
pub fn decode_otlp(
    signal: Signal,
    format: Format,
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Decoded, IngestError> {
    check_counts(signal, crate::count::scan(signal, format, body)?)?;
    match signal {
        Signal::Traces => {
            let request = decode::<ExportTraceServiceRequest>(format, body)?;
            check_counts(signal, count_spans(&request))?;
            spans(request, received_at)
        }
        Signal::Logs => {
            let request = decode::<ExportLogsServiceRequest>(format, body)?;
            check_counts(signal, count_logs(&request))?;
            logs(request, received_at)
        }
        Signal::Metrics => {
            let request = decode::<ExportMetricsServiceRequest>(format, body)?;
            check_counts(signal, count_metrics(&request))?;
            metrics(request, received_at)
        }
    }
}

fn check_counts(signal: Signal, counts: Counts) -> Result<(), IngestError> {
    let (field, unit, groups) = match signal {
        Signal::Traces => ("resourceSpans", "spans", "resource and scope entries"),
        Signal::Logs => ("resourceLogs", "log records", "resource and scope entries"),
        Signal::Metrics => (
            "resourceMetrics",
            "data points",
            "resource, scope and metric entries",
        ),
    };
    if counts.events > MAX_OTLP_EVENTS {
        return Err(IngestError::Invalid(format!(
            "{field}: at most {MAX_OTLP_EVENTS} {unit} per request, got {}",
            counts.events
        )));
    }
    if counts.groups > MAX_OTLP_EVENTS {
        return Err(IngestError::Invalid(format!(
            "{field}: at most {MAX_OTLP_EVENTS} {groups} per request, got {}",
            counts.groups
        )));
    }
    Ok(())
}

fn count_spans(request: &ExportTraceServiceRequest) -> Counts {
    let mut counts = Counts::default();
    for resource in &request.resource_spans {
        counts.groups = counts.groups.saturating_add(1 + resource.scope_spans.len());
        for scope in &resource.scope_spans {
            counts.events = counts.events.saturating_add(scope.spans.len());
        }
    }
    counts
}

fn count_logs(request: &ExportLogsServiceRequest) -> Counts {
    let mut counts = Counts::default();
    for resource in &request.resource_logs {
        counts.groups = counts.groups.saturating_add(1 + resource.scope_logs.len());
        for scope in &resource.scope_logs {
            counts.events = counts.events.saturating_add(scope.log_records.len());
        }
    }
    counts
}

fn count_metrics(request: &ExportMetricsServiceRequest) -> Counts {
    let mut counts = Counts::default();
    for resource in &request.resource_metrics {
        counts.groups = counts
            .groups
            .saturating_add(1 + resource.scope_metrics.len());
        for scope in &resource.scope_metrics {
            counts.groups = counts.groups.saturating_add(scope.metrics.len());
            for metric in &scope.metrics {
                let points = match &metric.data {
                    Some(metric::Data::Gauge(g)) => g.data_points.len(),
                    Some(metric::Data::Sum(s)) => s.data_points.len(),
                    Some(metric::Data::Histogram(h)) => h.data_points.len(),
                    Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(metric::Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                };
                counts.events = counts.events.saturating_add(points);
            }
        }
    }
    counts
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
        Format::Json => crate::json::parse_object(body),
    }
}

/// A context built on first use, so that groups without events leave none behind.
struct Lazy {
    fields: Option<Map<String, Value>>,
    index: Option<usize>,
}

impl Lazy {
    fn new(fields: Map<String, Value>) -> Self {
        Lazy {
            fields: Some(fields),
            index: None,
        }
    }

    fn index(&mut self, contexts: &mut Vec<Context>, parent: Option<usize>) -> usize {
        if let Some(index) = self.index {
            return index;
        }
        let index = contexts.len();
        contexts.push(Context {
            parent,
            fields: self.fields.take().unwrap_or_default(),
        });
        self.index = Some(index);
        index
    }
}

/// A resource's context, `{"resource": …}`, and its scopes' contexts, `{"scope": …}`.
fn resource_context(
    resource: Option<Resource>,
    path: &dyn Fn() -> String,
) -> Result<Lazy, IngestError> {
    let resource = match resource {
        Some(r) => attributes_json(r.attributes, &|| format!("{}.resource.attributes", path()))?,
        None => Value::Object(Map::new()),
    };
    let mut fields = Map::new();
    fields.insert("resource".into(), resource);
    Ok(Lazy::new(fields))
}

fn scope_context(
    scope: Option<InstrumentationScope>,
    path: &dyn Fn() -> String,
) -> Result<Lazy, IngestError> {
    let scope = match scope {
        Some(s) => {
            let name = text(s.name, || format!("{}.scope.name", path()))?;
            let version = text(s.version, || format!("{}.scope.version", path()))?;
            json!({"name": name, "version": version})
        }
        None => Value::Null,
    };
    let mut fields = Map::new();
    fields.insert("scope".into(), scope);
    Ok(Lazy::new(fields))
}

fn spans(
    request: ExportTraceServiceRequest,
    received_at: DateTime<Utc>,
) -> Result<Decoded, IngestError> {
    let mut out = Decoded::default();
    for (r, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let mut resource =
            resource_context(resource_spans.resource, &|| format!("resourceSpans[{r}]"))?;
        for (s, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let group = || format!("resourceSpans[{r}].scopeSpans[{s}]");
            let mut scope = scope_context(scope_spans.scope, &group)?;
            for (i, span) in scope_spans.spans.into_iter().enumerate() {
                let at = |field: &str| format!("{}.spans[{i}].{field}", group());
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
                let name = text(span.name, || at("name"))?;
                let trace_id = hex::encode(&span.trace_id);
                let span_id = hex::encode(&span.span_id);
                let id = format!("{trace_id}-{span_id}");
                let mut body = Map::new();
                body.insert("span_id".into(), span_id.into());
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
                body.insert(
                    "attributes".into(),
                    attributes_json(span.attributes, &|| at("attributes"))?,
                );
                if let Some(status) = span.status {
                    let message = text(status.message, || at("status.message"))?;
                    body.insert(
                        "status".into(),
                        json!({"code": status.code, "message": message}),
                    );
                }
                if !span.events.is_empty() {
                    let span_events = span
                        .events
                        .into_iter()
                        .enumerate()
                        .map(|(e, event)| {
                            let at_event = |field: &str| at(&format!("events[{e}].{field}"));
                            let name = text(event.name, || at_event("name"))?;
                            let attributes =
                                attributes_json(event.attributes, &|| at_event("attributes"))?;
                            Ok(json!({"name": name, "time_unix_nano": event.time_unix_nano, "attributes": attributes}))
                        })
                        .collect::<Result<Vec<Value>, IngestError>>()?;
                    body.insert("events".into(), span_events.into());
                }
                let resource_index = resource.index(&mut out.contexts, None);
                let context = scope.index(&mut out.contexts, Some(resource_index));
                out.events.push(Event {
                    id: Some(id),
                    kind: EventKind::Span,
                    trace_id: Some(trace_id),
                    name: non_empty(name),
                    timestamp: time(span.start_time_unix_nano, received_at),
                    body: Some(Value::Object(body)),
                    context: Some(context),
                });
            }
        }
    }
    Ok(out)
}

fn logs(
    request: ExportLogsServiceRequest,
    received_at: DateTime<Utc>,
) -> Result<Decoded, IngestError> {
    let mut out = Decoded::default();
    for (r, resource_logs) in request.resource_logs.into_iter().enumerate() {
        let mut resource =
            resource_context(resource_logs.resource, &|| format!("resourceLogs[{r}]"))?;
        for (s, scope_logs) in resource_logs.scope_logs.into_iter().enumerate() {
            let group = || format!("resourceLogs[{r}].scopeLogs[{s}]");
            let mut scope = scope_context(scope_logs.scope, &group)?;
            for (i, record) in scope_logs.log_records.into_iter().enumerate() {
                let at = |field: &str| format!("{}.logRecords[{i}].{field}", group());
                let severity_text = text(record.severity_text, || at("severityText"))?;
                let event_name = text(record.event_name, || at("eventName"))?;
                let mut body = Map::new();
                body.insert("severity_number".into(), record.severity_number.into());
                body.insert("severity_text".into(), severity_text.clone().into());
                let log_body = match record.body {
                    Some(value) => any_json(value, &|| at("body"))?,
                    None => Value::Null,
                };
                body.insert("body".into(), log_body);
                body.insert(
                    "attributes".into(),
                    attributes_json(record.attributes, &|| at("attributes"))?,
                );
                if record.span_id.iter().any(|b| *b != 0) {
                    body.insert("span_id".into(), hex::encode(&record.span_id).into());
                }
                let when = if record.time_unix_nano != 0 {
                    record.time_unix_nano
                } else {
                    record.observed_time_unix_nano
                };
                let name = non_empty(event_name).or_else(|| non_empty(severity_text));
                let resource_index = resource.index(&mut out.contexts, None);
                let context = scope.index(&mut out.contexts, Some(resource_index));
                out.events.push(Event {
                    id: None,
                    kind: EventKind::Log,
                    trace_id: trace_of(&record.trace_id),
                    name,
                    timestamp: time(when, received_at),
                    body: Some(Value::Object(body)),
                    context: Some(context),
                });
            }
        }
    }
    Ok(out)
}

/// One metric data point: its kind, time, attributes and the point's own JSON.
struct Point {
    kind: &'static str,
    time_unix_nano: u64,
    attributes: Vec<KeyValue>,
    point: Value,
}

fn number(value: Option<number_data_point::Value>) -> Value {
    match value {
        Some(number_data_point::Value::AsDouble(v)) => json!(v),
        Some(number_data_point::Value::AsInt(v)) => json!(v),
        None => Value::Null,
    }
}

/// The data points of one metric, moved out of it. (Only numbers are built here; the strings
/// and attributes move.)
fn points(data: Option<metric::Data>) -> Vec<Point> {
    match data {
        Some(metric::Data::Gauge(gauge)) => gauge
            .data_points
            .into_iter()
            .map(|p| Point {
                kind: "gauge",
                time_unix_nano: p.time_unix_nano,
                point: json!({"value": number(p.value)}),
                attributes: p.attributes,
            })
            .collect(),
        Some(metric::Data::Sum(sum)) => sum
            .data_points
            .into_iter()
            .map(|p| Point {
                kind: "sum",
                time_unix_nano: p.time_unix_nano,
                point: json!({"value": number(p.value)}),
                attributes: p.attributes,
            })
            .collect(),
        Some(metric::Data::Histogram(histogram)) => histogram
            .data_points
            .into_iter()
            .map(|p| Point {
                kind: "histogram",
                time_unix_nano: p.time_unix_nano,
                point: json!({"count": p.count, "sum": p.sum, "min": p.min, "max": p.max,
                    "bucket_counts": p.bucket_counts, "explicit_bounds": p.explicit_bounds}),
                attributes: p.attributes,
            })
            .collect(),
        Some(metric::Data::ExponentialHistogram(histogram)) => histogram
            .data_points
            .into_iter()
            .map(|p| Point {
                kind: "exponential_histogram",
                time_unix_nano: p.time_unix_nano,
                point: json!({"count": p.count, "sum": p.sum, "scale": p.scale,
                    "zero_count": p.zero_count, "min": p.min, "max": p.max}),
                attributes: p.attributes,
            })
            .collect(),
        Some(metric::Data::Summary(summary)) => summary
            .data_points
            .into_iter()
            .map(|p| {
                let quantiles: Vec<Value> = p
                    .quantile_values
                    .iter()
                    .map(|q| json!({"quantile": q.quantile, "value": q.value}))
                    .collect();
                Point {
                    kind: "summary",
                    time_unix_nano: p.time_unix_nano,
                    point: json!({"count": p.count, "sum": p.sum, "quantiles": quantiles}),
                    attributes: p.attributes,
                }
            })
            .collect(),
        None => Vec::new(),
    }
}

fn metrics(
    request: ExportMetricsServiceRequest,
    received_at: DateTime<Utc>,
) -> Result<Decoded, IngestError> {
    let mut out = Decoded::default();
    for (r, resource_metrics) in request.resource_metrics.into_iter().enumerate() {
        let mut resource = resource_context(resource_metrics.resource, &|| {
            format!("resourceMetrics[{r}]")
        })?;
        for (s, scope_metrics) in resource_metrics.scope_metrics.into_iter().enumerate() {
            let group = || format!("resourceMetrics[{r}].scopeMetrics[{s}]");
            let mut scope = scope_context(scope_metrics.scope, &group)?;
            for (m, metric) in scope_metrics.metrics.into_iter().enumerate() {
                let at = |field: &str| format!("{}.metrics[{m}].{field}", group());
                let name = text(metric.name, || at("name"))?;
                // The name is copied into every point's event, so it is bounded like a batch
                // event's (OpenTelemetry itself caps instrument names at 255 characters).
                if name.chars().count() > MAX_ID_CHARS {
                    return Err(IngestError::Invalid(format!(
                        "{}: is longer than {MAX_ID_CHARS} characters",
                        at("name")
                    )));
                }
                let unit = text(metric.unit, || at("unit"))?;
                let description = text(metric.description, || at("description"))?;
                let mut fields = Map::new();
                fields.insert("unit".into(), unit.into());
                fields.insert("description".into(), description.into());
                let mut shared = Lazy::new(fields);
                let name = non_empty(name);
                for (p, point) in points(metric.data).into_iter().enumerate() {
                    let attributes = attributes_json(point.attributes, &|| {
                        at(&format!("dataPoints[{p}].attributes"))
                    })?;
                    let mut body = Map::new();
                    body.insert("metric_type".into(), point.kind.into());
                    body.insert("attributes".into(), attributes);
                    body.insert("point".into(), point.point);
                    let resource_index = resource.index(&mut out.contexts, None);
                    let scope_index = scope.index(&mut out.contexts, Some(resource_index));
                    let context = shared.index(&mut out.contexts, Some(scope_index));
                    out.events.push(Event {
                        id: None,
                        kind: EventKind::Metric,
                        trace_id: None,
                        name: name.clone(),
                        timestamp: time(point.time_unix_nano, received_at),
                        body: Some(Value::Object(body)),
                        context: Some(context),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `value`, unless it holds a NUL character (which PostgreSQL cannot store in text or JSON).
fn text(value: String, path: impl FnOnce() -> String) -> Result<String, IngestError> {
    if value.contains('\0') {
        Err(nul_error(&path()))
    } else {
        Ok(value)
    }
}

fn nul_error(path: &str) -> IngestError {
    IngestError::Invalid(format!("{path}: must not contain NUL characters"))
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

/// A list of key-values as one JSON object; `path` names the list in errors.
fn attributes_json(
    attributes: Vec<KeyValue>,
    path: &dyn Fn() -> String,
) -> Result<Value, IngestError> {
    let mut map = Map::new();
    for (k, kv) in attributes.into_iter().enumerate() {
        let key = text(kv.key, || format!("{}[{k}].key", path()))?;
        let value = match kv.value {
            Some(value) => any_json(value, &|| format!("{}[{k}].value", path()))?,
            None => Value::Null,
        };
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

fn any_json(value: AnyValue, path: &dyn Fn() -> String) -> Result<Value, IngestError> {
    Ok(match value.value {
        Some(any_value::Value::StringValue(s)) => text(s, path)?.into(),
        Some(any_value::Value::BoolValue(b)) => b.into(),
        Some(any_value::Value::IntValue(i)) => i.into(),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(array)) => array
            .values
            .into_iter()
            .enumerate()
            .map(|(j, v)| any_json(v, &|| format!("{}.arrayValue.values[{j}]", path())))
            .collect::<Result<Vec<Value>, IngestError>>()?
            .into(),
        Some(any_value::Value::KvlistValue(list)) => {
            attributes_json(list.values, &|| format!("{}.kvlistValue.values", path()))?
        }
        Some(any_value::Value::BytesValue(bytes)) => hex::encode(bytes).into(),
        Some(any_value::Value::StringValueStrindex(i)) => json!({"string_index": i}),
        None => Value::Null,
    })
}
