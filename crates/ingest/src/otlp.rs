//! OTLP/HTTP: `ExportTraceServiceRequest`, `ExportLogsServiceRequest` and
//! `ExportMetricsServiceRequest` in protobuf or JSON, decoded with the `opentelemetry-proto`
//! crate's generated types and turned into [`Event`]s: one per span, log record or data point.

use crate::tree::{Fields, Json, Object};
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

use crate::count::Counts;
use crate::span::{Attr, OtlpSpan};
use crate::{
    Caps, Context, Decoded, Event, EventKind, Format, IngestError, MAX_ATTRIBUTE_VALUES, MAX_DEPTH,
    MAX_ELEMENTS, MAX_ID_CHARS, MAX_NESTED_ENTRIES, Signal,
};

/// Most spans, log records or metric data points one OTLP request may carry; also the most
/// resource, scope (and metric) entries. Counted before any event is built, and for protobuf
/// before the message itself is decoded, so an oversized request costs a scan, not memory.
pub const MAX_OTLP_EVENTS: usize = 10_000;

/// Decodes an OTLP export request into events. `received_at` stands in for missing timestamps.
/// The resource and scope of each group (and the unit and description of each metric) are held
/// once in [`Decoded::contexts`], not copied into every event.
///
/// ```
/// use agentvista_ingest::{Caps, Format, Signal, decode_otlp};
///
/// let body = include_bytes!("../tests/fixtures/logs.json");
/// let at = chrono::DateTime::UNIX_EPOCH;
/// let decoded = decode_otlp(Signal::Logs, Format::Json, body, at, &Caps::default())?;
/// assert_eq!(decoded.events.len(), 1);
///
/// let tight = Caps { max_attribute_bytes: 4 };
/// let err = decode_otlp(Signal::Logs, Format::Json, body, at, &tight).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "resourceLogs[0].resource.attributes[0].value: longer than the limit of 4 bytes"
/// );
/// # Ok::<(), agentvista_ingest::IngestError>(())
/// ```
///
/// # Errors
/// [`IngestError::Invalid`] for a body that does not decode; for more than
/// [`MAX_OTLP_EVENTS`] spans, records or points (or resource, scope and metric entries), more
/// than [`MAX_ATTRIBUTE_VALUES`] attribute values or more than [`MAX_NESTED_ENTRIES`] nested
/// entries, all counted before the message is decoded; for a value nested deeper than
/// [`MAX_DEPTH`], a list of more than [`MAX_ELEMENTS`], a string or bytes value longer than
/// `caps.max_attribute_bytes` (the message names its path); for a span whose trace or span id
/// has the wrong length, for a metric name longer than [`MAX_ID_CHARS`](crate::MAX_ID_CHARS)
/// characters, and for a NUL character in any string (the message names its position).
pub fn decode_otlp(
    signal: Signal,
    format: Format,
    body: &[u8],
    received_at: DateTime<Utc>,
    caps: &Caps,
) -> Result<Decoded, IngestError> {
    check_counts(signal, crate::count::scan(signal, format, body)?)?;
    match signal {
        Signal::Traces => {
            let request = decode::<ExportTraceServiceRequest>(format, body)?;
            check_counts(signal, count_spans(&request))?;
            spans(request, received_at, caps)
        }
        Signal::Logs => {
            let request = decode::<ExportLogsServiceRequest>(format, body)?;
            check_counts(signal, count_logs(&request))?;
            logs(request, received_at, caps)
        }
        Signal::Metrics => {
            let request = decode::<ExportMetricsServiceRequest>(format, body)?;
            check_counts(signal, count_metrics(&request))?;
            metrics(request, received_at, caps)
        }
    }
}

pub(crate) fn check_counts(signal: Signal, counts: Counts) -> Result<(), IngestError> {
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
    if counts.values > MAX_ATTRIBUTE_VALUES {
        return Err(IngestError::Invalid(format!(
            "{field}: at most {MAX_ATTRIBUTE_VALUES} attribute values per request, got {}",
            counts.values
        )));
    }
    if counts.entries > MAX_NESTED_ENTRIES {
        return Err(IngestError::Invalid(format!(
            "{field}: at most {MAX_NESTED_ENTRIES} nested entries (span events and links, \
             exemplars, quantiles, histogram buckets and bounds, entity references and their \
             keys) per request, got {}",
            counts.entries
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
    fields: Option<Fields>,
    index: Option<usize>,
}

impl Lazy {
    fn new(fields: Fields) -> Self {
        Lazy {
            fields: Some(fields),
            index: None,
        }
    }

    fn index(
        &mut self,
        contexts: &mut Vec<Context>,
        parent: Option<usize>,
    ) -> Result<usize, IngestError> {
        if let Some(index) = self.index {
            return Ok(index);
        }
        let index = contexts.len();
        contexts.push(Context {
            parent,
            fields: self.fields.take().unwrap_or_default().into_raw()?,
        });
        self.index = Some(index);
        Ok(index)
    }
}

/// A resource's context, `{"resource": …}`, and its scopes' contexts, `{"scope": …}`.
fn resource_context(
    resource: Option<Resource>,
    path: &dyn Fn() -> String,
    caps: &Caps,
) -> Result<Lazy, IngestError> {
    let resource = match resource {
        Some(r) => attributes_json(
            r.attributes,
            &|| format!("{}.resource.attributes", path()),
            1,
            caps,
        )?,
        None => Json::Object(Object::default()),
    };
    let mut fields = Fields::new();
    fields.insert("resource", resource);
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
            Json::object([("name", name.into()), ("version", version.into())])
        }
        None => Json::Null,
    };
    let mut fields = Fields::new();
    fields.insert("scope", scope);
    Ok(Lazy::new(fields))
}

fn spans(
    request: ExportTraceServiceRequest,
    received_at: DateTime<Utc>,
    caps: &Caps,
) -> Result<Decoded, IngestError> {
    let mut out = Decoded::default();
    for (r, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let mut resource = resource_context(
            resource_spans.resource,
            &|| format!("resourceSpans[{r}]"),
            caps,
        )?;
        for (s, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let group = || format!("resourceSpans[{r}].scopeSpans[{s}]");
            let mut scope = scope_context(scope_spans.scope, &group)?;
            for (i, mut span) in scope_spans.spans.into_iter().enumerate() {
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
                let parent_span_id = hex::encode(&span.parent_span_id);
                let status_message = match &mut span.status {
                    Some(status) if status.message.len() > caps.max_attribute_bytes => {
                        return Err(IngestError::Invalid(format!(
                            "{}: longer than the limit of {} bytes",
                            at("status.message"),
                            caps.max_attribute_bytes
                        )));
                    }
                    Some(status) => {
                        text(std::mem::take(&mut status.message), || at("status.message"))?
                    }
                    None => String::new(),
                };
                let fields = OtlpSpan {
                    trace_id: &trace_id,
                    parent_span_id: &parent_span_id,
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    status_code: span.status.as_ref().map_or(0, |s| s.code),
                    status_message: &status_message,
                    attribute: |key: &str| attribute(&span.attributes, key),
                }
                .fields();
                let mut body = Fields::new();
                body.insert("span_id", span_id);
                if !span.parent_span_id.is_empty() {
                    body.insert("parent_span_id", parent_span_id);
                }
                body.insert("kind", span.kind);
                body.insert("start_time_unix_nano", span.start_time_unix_nano);
                body.insert("end_time_unix_nano", span.end_time_unix_nano);
                body.insert(
                    "attributes",
                    attributes_json(span.attributes, &|| at("attributes"), 1, caps)?,
                );
                if let Some(status) = span.status {
                    body.insert(
                        "status",
                        Json::object([
                            ("code", status.code.into()),
                            ("message", status_message.into()),
                        ]),
                    );
                }
                if !span.events.is_empty() {
                    let mut span_events = Vec::with_capacity(span.events.len());
                    for (e, event) in span.events.into_iter().enumerate() {
                        let at_event = |field: &str| at(&format!("events[{e}].{field}"));
                        let name = text(event.name, || at_event("name"))?;
                        let attributes =
                            attributes_json(event.attributes, &|| at_event("attributes"), 1, caps)?;
                        span_events.push(Json::object([
                            ("name", name.into()),
                            ("time_unix_nano", event.time_unix_nano.into()),
                            ("attributes", attributes),
                        ]));
                    }
                    body.insert("events", Json::Array(span_events));
                }
                let resource_index = resource.index(&mut out.contexts, None)?;
                let context = scope.index(&mut out.contexts, Some(resource_index))?;
                out.events.push(Event {
                    id: Some(id),
                    kind: EventKind::Span,
                    trace_id: Some(trace_id),
                    name: non_empty(name),
                    timestamp: time(span.start_time_unix_nano, received_at),
                    body: Some(body.into_raw()?),
                    context: Some(context),
                    span: fields.boxed(),
                });
            }
        }
    }
    Ok(out)
}

/// The value of the attribute `key`, as the span fields' mapping reads it.
fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<Attr<'a>> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    Some(match &value.value {
        Some(any_value::Value::StringValue(s)) => Attr::Str(s),
        Some(any_value::Value::IntValue(i)) => Attr::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => Attr::Double(*d),
        _ => Attr::Other,
    })
}

fn logs(
    request: ExportLogsServiceRequest,
    received_at: DateTime<Utc>,
    caps: &Caps,
) -> Result<Decoded, IngestError> {
    let mut out = Decoded::default();
    for (r, resource_logs) in request.resource_logs.into_iter().enumerate() {
        let mut resource = resource_context(
            resource_logs.resource,
            &|| format!("resourceLogs[{r}]"),
            caps,
        )?;
        for (s, scope_logs) in resource_logs.scope_logs.into_iter().enumerate() {
            let group = || format!("resourceLogs[{r}].scopeLogs[{s}]");
            let mut scope = scope_context(scope_logs.scope, &group)?;
            for (i, record) in scope_logs.log_records.into_iter().enumerate() {
                let at = |field: &str| format!("{}.logRecords[{i}].{field}", group());
                let severity_text = text(record.severity_text, || at("severityText"))?;
                let event_name = text(record.event_name, || at("eventName"))?;
                let mut body = Fields::new();
                body.insert("severity_number", record.severity_number);
                body.insert("severity_text", severity_text.clone());
                let log_body = match record.body {
                    Some(value) => any_json(value, &|| at("body"), 1, caps)?,
                    None => Json::Null,
                };
                body.insert("body", log_body);
                body.insert(
                    "attributes",
                    attributes_json(record.attributes, &|| at("attributes"), 1, caps)?,
                );
                if record.span_id.iter().any(|b| *b != 0) {
                    body.insert("span_id", hex::encode(&record.span_id));
                }
                let when = if record.time_unix_nano != 0 {
                    record.time_unix_nano
                } else {
                    record.observed_time_unix_nano
                };
                let name = non_empty(event_name).or_else(|| non_empty(severity_text));
                let resource_index = resource.index(&mut out.contexts, None)?;
                let context = scope.index(&mut out.contexts, Some(resource_index))?;
                out.events.push(Event {
                    id: None,
                    kind: EventKind::Log,
                    trace_id: trace_of(&record.trace_id),
                    name,
                    timestamp: time(when, received_at),
                    body: Some(body.into_raw()?),
                    context: Some(context),
                    span: None,
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
    point: Json,
}

fn number(value: Option<number_data_point::Value>) -> Json {
    match value {
        Some(number_data_point::Value::AsDouble(v)) => v.into(),
        Some(number_data_point::Value::AsInt(v)) => v.into(),
        None => Json::Null,
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
                point: Json::object([("value", number(p.value))]),
                attributes: p.attributes,
            })
            .collect(),
        Some(metric::Data::Sum(sum)) => sum
            .data_points
            .into_iter()
            .map(|p| Point {
                kind: "sum",
                time_unix_nano: p.time_unix_nano,
                point: Json::object([("value", number(p.value))]),
                attributes: p.attributes,
            })
            .collect(),
        Some(metric::Data::Histogram(histogram)) => histogram
            .data_points
            .into_iter()
            .map(|p| Point {
                kind: "histogram",
                time_unix_nano: p.time_unix_nano,
                point: Json::object([
                    ("count", p.count.into()),
                    ("sum", p.sum.into()),
                    ("min", p.min.into()),
                    ("max", p.max.into()),
                    ("bucket_counts", p.bucket_counts.into()),
                    ("explicit_bounds", p.explicit_bounds.into()),
                ]),
                attributes: p.attributes,
            })
            .collect(),
        Some(metric::Data::ExponentialHistogram(histogram)) => histogram
            .data_points
            .into_iter()
            .map(|p| Point {
                kind: "exponential_histogram",
                time_unix_nano: p.time_unix_nano,
                point: Json::object([
                    ("count", p.count.into()),
                    ("sum", p.sum.into()),
                    ("scale", p.scale.into()),
                    ("zero_count", p.zero_count.into()),
                    ("min", p.min.into()),
                    ("max", p.max.into()),
                ]),
                attributes: p.attributes,
            })
            .collect(),
        Some(metric::Data::Summary(summary)) => summary
            .data_points
            .into_iter()
            .map(|p| {
                let quantiles: Vec<Json> = p
                    .quantile_values
                    .iter()
                    .map(|q| {
                        Json::object([("quantile", q.quantile.into()), ("value", q.value.into())])
                    })
                    .collect();
                Point {
                    kind: "summary",
                    time_unix_nano: p.time_unix_nano,
                    point: Json::object([
                        ("count", p.count.into()),
                        ("sum", p.sum.into()),
                        ("quantiles", Json::Array(quantiles)),
                    ]),
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
    caps: &Caps,
) -> Result<Decoded, IngestError> {
    let mut out = Decoded::default();
    for (r, resource_metrics) in request.resource_metrics.into_iter().enumerate() {
        let mut resource = resource_context(
            resource_metrics.resource,
            &|| format!("resourceMetrics[{r}]"),
            caps,
        )?;
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
                let mut fields = Fields::new();
                fields.insert("unit", unit);
                fields.insert("description", description);
                let mut shared = Lazy::new(fields);
                let name = non_empty(name);
                for (p, point) in points(metric.data).into_iter().enumerate() {
                    let attributes = attributes_json(
                        point.attributes,
                        &|| at(&format!("dataPoints[{p}].attributes")),
                        1,
                        caps,
                    )?;
                    let mut body = Fields::new();
                    body.insert("metric_type", point.kind);
                    body.insert("attributes", attributes);
                    body.insert("point", point.point);
                    let resource_index = resource.index(&mut out.contexts, None)?;
                    let scope_index = scope.index(&mut out.contexts, Some(resource_index))?;
                    let context = shared.index(&mut out.contexts, Some(scope_index))?;
                    out.events.push(Event {
                        id: None,
                        kind: EventKind::Metric,
                        trace_id: None,
                        name: name.clone(),
                        timestamp: time(point.time_unix_nano, received_at),
                        body: Some(body.into_raw()?),
                        context: Some(context),
                        span: None,
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

/// A list of key-values as one JSON object; `path` names the list in errors, `depth` is the
/// depth of its values (1 for an attribute list, more inside a kvlist).
fn attributes_json(
    attributes: Vec<KeyValue>,
    path: &dyn Fn() -> String,
    depth: usize,
    caps: &Caps,
) -> Result<Json, IngestError> {
    if attributes.len() > MAX_ELEMENTS {
        return Err(too_many(&path()));
    }
    let mut members = Vec::with_capacity(attributes.len());
    for (k, kv) in attributes.into_iter().enumerate() {
        let key = text(kv.key, || format!("{}[{k}].key", path()))?;
        let value = match kv.value {
            Some(value) => any_json(value, &|| format!("{}[{k}].value", path()), depth, caps)?,
            None => Json::Null,
        };
        members.push((key, value));
    }
    Ok(Json::Object(Object::from_members(members)))
}

/// One attribute value (or log body) at `depth`, as JSON.
fn any_json(
    value: AnyValue,
    path: &dyn Fn() -> String,
    depth: usize,
    caps: &Caps,
) -> Result<Json, IngestError> {
    if depth > MAX_DEPTH {
        return Err(IngestError::Invalid(format!(
            "{}: nested deeper than {MAX_DEPTH} levels",
            path()
        )));
    }
    let too_long = |len: usize| {
        (len > caps.max_attribute_bytes).then(|| {
            IngestError::Invalid(format!(
                "{}: longer than the limit of {} bytes",
                path(),
                caps.max_attribute_bytes
            ))
        })
    };
    Ok(match value.value {
        Some(any_value::Value::StringValue(s)) => {
            if let Some(err) = too_long(s.len()) {
                return Err(err);
            }
            text(s, path)?.into()
        }
        Some(any_value::Value::BoolValue(b)) => b.into(),
        Some(any_value::Value::IntValue(i)) => i.into(),
        Some(any_value::Value::DoubleValue(d)) => d.into(),
        Some(any_value::Value::ArrayValue(array)) => {
            let values_path = || format!("{}.arrayValue.values", path());
            if array.values.len() > MAX_ELEMENTS {
                return Err(too_many(&values_path()));
            }
            // Sized once: growing by doubling would cost up to twice the array.
            let mut values = Vec::with_capacity(array.values.len());
            for (j, v) in array.values.into_iter().enumerate() {
                values.push(any_json(
                    v,
                    &|| format!("{}[{j}]", values_path()),
                    depth + 1,
                    caps,
                )?);
            }
            Json::Array(values)
        }
        Some(any_value::Value::KvlistValue(list)) => attributes_json(
            list.values,
            &|| format!("{}.kvlistValue.values", path()),
            depth + 1,
            caps,
        )?,
        Some(any_value::Value::BytesValue(bytes)) => {
            if let Some(err) = too_long(bytes.len()) {
                return Err(err);
            }
            Json::Hex(bytes)
        }
        Some(any_value::Value::StringValueStrindex(i)) => {
            Json::object([("string_index", i.into())])
        }
        None => Json::Null,
    })
}

fn too_many(path: &str) -> IngestError {
    IngestError::Invalid(format!("{path}: more than {MAX_ELEMENTS} elements"))
}
