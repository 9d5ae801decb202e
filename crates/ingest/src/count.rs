//! Counting an OTLP request's entries before decoding it: decoding into the generated types
//! costs up to a hundred times the body (an empty span is 2 bytes of protobuf and a few hundred
//! bytes decoded), so an oversized request is refused after a scan that allocates nothing.
//!
//! The scan walks the OTLP schema from a table per message type ([`Message`]): the fields that
//! hold messages (or repeated numbers or strings), by protobuf number and JSON name, and what
//! each of their entries counts as. Anything else is skipped unread.
//!
//! The scan may count more than the decoder would keep (a field repeated where the decoder
//! merges), never less. A body the scan cannot read is refused at once: the decoder would fail
//! on it too, but perhaps only at its last byte, after building everything before it.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::{Format, IngestError, Signal};

/// How many entries a request holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Spans, log records or metric data points.
    pub(crate) events: usize,
    /// Resource, scope and metric entries.
    pub(crate) groups: usize,
    /// `KeyValue`s and `AnyValue`s, at any depth.
    pub(crate) values: usize,
    /// Span events and links, exemplars, quantile values, entity references and their keys,
    /// histogram bucket counts and bounds.
    pub(crate) entries: usize,
}

impl Counts {
    fn add(&mut self, tally: Tally, n: usize) {
        let count = match tally {
            Tally::Event => &mut self.events,
            Tally::Group => &mut self.groups,
            Tally::Value => &mut self.values,
            Tally::Entry => &mut self.entries,
            Tally::Nothing => return,
        };
        *count = count.saturating_add(n);
    }
}

/// The entries of `body`, by what they count as.
///
/// # Errors
/// [`IngestError::Invalid`] for a body that is not protobuf or JSON at all, or whose protobuf
/// messages nest deeper than the decoder would follow.
pub(crate) fn scan(signal: Signal, format: Format, body: &[u8]) -> Result<Counts, IngestError> {
    let request = match signal {
        Signal::Traces => &TRACES_REQUEST,
        Signal::Logs => &LOGS_REQUEST,
        Signal::Metrics => &METRICS_REQUEST,
    };
    let mut counts = Counts::default();
    match format {
        Format::Protobuf => {
            protobuf(body, request, &mut counts, 0).map_err(|error| {
                let what = match error {
                    Unreadable::Malformed => "malformed wire data".to_owned(),
                    Unreadable::TooDeep => {
                        format!("messages nested deeper than {MAX_MESSAGE_NESTING} levels")
                    }
                };
                IngestError::Invalid(format!("body: not a valid OTLP protobuf message: {what}"))
            })?;
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_slice(body);
            Object {
                message: request,
                counts: &mut counts,
            }
            .deserialize(&mut de)
            .map_err(|_| ())
            .or_else(|()| {
                // The same syntax check without counting, for the parser's own message (with
                // its path); should it pass, the decoder and the count after it decide.
                crate::json::parse::<IgnoredAny>(body).map(|_| ())
            })?;
        }
    }
    Ok(counts)
}

/// What each entry of a field counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tally {
    /// A span, log record or data point.
    Event,
    /// A resource, scope or metric entry.
    Group,
    /// A `KeyValue` or `AnyValue`.
    Value,
    /// One of the other nested entries.
    Entry,
    /// Nothing: only what is inside it counts.
    Nothing,
}

/// What a field holds.
#[derive(Clone, Copy)]
enum Kind {
    /// A message (one, or each entry of a repeated field), walked with its own table.
    Message(&'static Message),
    /// Repeated numbers of `size` bytes each when packed (`None`: varints).
    Numbers(Option<usize>),
    /// Repeated strings.
    Strings,
}

/// A field worth looking into.
struct Field {
    number: u64,
    /// The JSON name (lowerCamelCase, as the generated types read it).
    name: &'static str,
    kind: Kind,
    tally: Tally,
}

/// One message type: its fields worth looking into (the others are skipped).
struct Message(&'static [Field]);

impl Message {
    fn by_number(&self, number: u64) -> Option<&'static Field> {
        // The tables are 'static; the lookup hands that lifetime on.
        let fields: &'static [Field] = self.0;
        fields.iter().find(|f| f.number == number)
    }
}

const fn message(number: u64, name: &'static str, child: &'static Message, tally: Tally) -> Field {
    Field {
        number,
        name,
        kind: Kind::Message(child),
        tally,
    }
}

// The schema of opentelemetry-proto's generated types, message-typed (or repeated scalar)
// fields only. `oneof` members (an `AnyValue`'s `arrayValue`, a `Metric`'s `gauge`) are fields
// of the message that holds them, as on the wire and in JSON.

static TRACES_REQUEST: Message =
    Message(&[message(1, "resourceSpans", &RESOURCE_SPANS, Tally::Group)]);
static RESOURCE_SPANS: Message = Message(&[
    message(1, "resource", &RESOURCE, Tally::Nothing),
    message(2, "scopeSpans", &SCOPE_SPANS, Tally::Group),
]);
static SCOPE_SPANS: Message = Message(&[
    message(1, "scope", &SCOPE, Tally::Nothing),
    message(2, "spans", &SPAN, Tally::Event),
]);
static SPAN: Message = Message(&[
    message(9, "attributes", &KEY_VALUE, Tally::Value),
    message(11, "events", &SPAN_EVENT, Tally::Entry),
    message(13, "links", &SPAN_LINK, Tally::Entry),
]);
static SPAN_EVENT: Message = Message(&[message(3, "attributes", &KEY_VALUE, Tally::Value)]);
static SPAN_LINK: Message = Message(&[message(4, "attributes", &KEY_VALUE, Tally::Value)]);

static LOGS_REQUEST: Message = Message(&[message(1, "resourceLogs", &RESOURCE_LOGS, Tally::Group)]);
static RESOURCE_LOGS: Message = Message(&[
    message(1, "resource", &RESOURCE, Tally::Nothing),
    message(2, "scopeLogs", &SCOPE_LOGS, Tally::Group),
]);
static SCOPE_LOGS: Message = Message(&[
    message(1, "scope", &SCOPE, Tally::Nothing),
    message(2, "logRecords", &LOG_RECORD, Tally::Event),
]);
static LOG_RECORD: Message = Message(&[
    message(5, "body", &ANY_VALUE, Tally::Value),
    message(6, "attributes", &KEY_VALUE, Tally::Value),
]);

static METRICS_REQUEST: Message = Message(&[message(
    1,
    "resourceMetrics",
    &RESOURCE_METRICS,
    Tally::Group,
)]);
static RESOURCE_METRICS: Message = Message(&[
    message(1, "resource", &RESOURCE, Tally::Nothing),
    message(2, "scopeMetrics", &SCOPE_METRICS, Tally::Group),
]);
static SCOPE_METRICS: Message = Message(&[
    message(1, "scope", &SCOPE, Tally::Nothing),
    message(2, "metrics", &METRIC, Tally::Group),
]);
static METRIC: Message = Message(&[
    message(5, "gauge", &NUMBER_POINTS, Tally::Nothing),
    message(7, "sum", &NUMBER_POINTS, Tally::Nothing),
    message(9, "histogram", &HISTOGRAM, Tally::Nothing),
    message(
        10,
        "exponentialHistogram",
        &EXPONENTIAL_HISTOGRAM,
        Tally::Nothing,
    ),
    message(11, "summary", &SUMMARY, Tally::Nothing),
    message(12, "metadata", &KEY_VALUE, Tally::Value),
]);
/// `Gauge` and `Sum`: their data points are field 1 (a `Sum`'s other fields are scalars).
static NUMBER_POINTS: Message =
    Message(&[message(1, "dataPoints", &NUMBER_DATA_POINT, Tally::Event)]);
static HISTOGRAM: Message = Message(&[message(
    1,
    "dataPoints",
    &HISTOGRAM_DATA_POINT,
    Tally::Event,
)]);
static EXPONENTIAL_HISTOGRAM: Message = Message(&[message(
    1,
    "dataPoints",
    &EXPONENTIAL_HISTOGRAM_DATA_POINT,
    Tally::Event,
)]);
static SUMMARY: Message = Message(&[message(1, "dataPoints", &SUMMARY_DATA_POINT, Tally::Event)]);
static NUMBER_DATA_POINT: Message = Message(&[
    message(5, "exemplars", &EXEMPLAR, Tally::Entry),
    message(7, "attributes", &KEY_VALUE, Tally::Value),
]);
static HISTOGRAM_DATA_POINT: Message = Message(&[
    Field {
        number: 6,
        name: "bucketCounts",
        kind: Kind::Numbers(Some(8)),
        tally: Tally::Entry,
    },
    Field {
        number: 7,
        name: "explicitBounds",
        kind: Kind::Numbers(Some(8)),
        tally: Tally::Entry,
    },
    message(8, "exemplars", &EXEMPLAR, Tally::Entry),
    message(9, "attributes", &KEY_VALUE, Tally::Value),
]);
static EXPONENTIAL_HISTOGRAM_DATA_POINT: Message = Message(&[
    message(1, "attributes", &KEY_VALUE, Tally::Value),
    message(8, "positive", &BUCKETS, Tally::Nothing),
    message(9, "negative", &BUCKETS, Tally::Nothing),
    message(11, "exemplars", &EXEMPLAR, Tally::Entry),
]);
static BUCKETS: Message = Message(&[Field {
    number: 2,
    name: "bucketCounts",
    kind: Kind::Numbers(None),
    tally: Tally::Entry,
}]);
static SUMMARY_DATA_POINT: Message = Message(&[
    message(6, "quantileValues", &NOTHING, Tally::Entry),
    message(7, "attributes", &KEY_VALUE, Tally::Value),
]);
static EXEMPLAR: Message = Message(&[message(7, "filteredAttributes", &KEY_VALUE, Tally::Value)]);

static RESOURCE: Message = Message(&[
    message(1, "attributes", &KEY_VALUE, Tally::Value),
    message(3, "entityRefs", &ENTITY_REF, Tally::Entry),
]);
static ENTITY_REF: Message = Message(&[
    Field {
        number: 3,
        name: "idKeys",
        kind: Kind::Strings,
        tally: Tally::Entry,
    },
    Field {
        number: 4,
        name: "descriptionKeys",
        kind: Kind::Strings,
        tally: Tally::Entry,
    },
]);
static SCOPE: Message = Message(&[message(3, "attributes", &KEY_VALUE, Tally::Value)]);
static KEY_VALUE: Message = Message(&[message(2, "value", &ANY_VALUE, Tally::Value)]);
static ANY_VALUE: Message = Message(&[
    message(5, "arrayValue", &ARRAY_VALUE, Tally::Nothing),
    message(6, "kvlistValue", &KEY_VALUE_LIST, Tally::Nothing),
]);
static ARRAY_VALUE: Message = Message(&[message(1, "values", &ANY_VALUE, Tally::Value)]);
static KEY_VALUE_LIST: Message = Message(&[message(1, "values", &KEY_VALUE, Tally::Value)]);
/// A message with nothing inside worth counting (a summary's `ValueAtQuantile`).
static NOTHING: Message = Message(&[]);

/// How deep protobuf messages may nest: prost's default recursion limit, past which the
/// decoder refuses the message anyway.
const MAX_MESSAGE_NESTING: usize = 100;

/// Why the protobuf scan stopped.
#[derive(Debug)]
enum Unreadable {
    /// Not protobuf wire data.
    Malformed,
    /// Messages nested deeper than [`MAX_MESSAGE_NESTING`].
    TooDeep,
}

fn varint(buf: &mut &[u8]) -> Result<u64, Unreadable> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or(Unreadable::Malformed)?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Unreadable::Malformed)
}

fn skip<'a>(buf: &mut &'a [u8], len: u64) -> Result<&'a [u8], Unreadable> {
    let len = usize::try_from(len).map_err(|_| Unreadable::Malformed)?;
    if len > buf.len() {
        return Err(Unreadable::Malformed);
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

/// Counts the entries of the protobuf message `buf` of type `message`, and of every message
/// inside it that its table leads to. `depth` is how many messages enclose `buf`.
fn protobuf(
    mut buf: &[u8],
    message: &Message,
    counts: &mut Counts,
    depth: usize,
) -> Result<(), Unreadable> {
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let number = key >> 3;
        let field = message.by_number(number);
        // An unpacked repeated number is one entry per occurrence.
        let number_entry = |counts: &mut Counts| {
            if let Some(Field {
                kind: Kind::Numbers(_),
                tally,
                ..
            }) = field
            {
                counts.add(*tally, 1);
            }
        };
        match key & 7 {
            0 => {
                varint(&mut buf)?;
                number_entry(counts);
            }
            1 => {
                skip(&mut buf, 8)?;
                number_entry(counts);
            }
            2 => {
                let len = varint(&mut buf)?;
                let payload = skip(&mut buf, len)?;
                let Some(field) = field else { continue };
                match field.kind {
                    Kind::Message(child) => {
                        counts.add(field.tally, 1);
                        if child.0.is_empty() {
                            continue;
                        }
                        if depth + 1 > MAX_MESSAGE_NESTING {
                            return Err(Unreadable::TooDeep);
                        }
                        protobuf(payload, child, counts, depth + 1)?;
                    }
                    Kind::Numbers(Some(size)) => counts.add(field.tally, payload.len() / size),
                    // Each varint ends at a byte without its high bit.
                    Kind::Numbers(None) => counts.add(
                        field.tally,
                        payload.iter().filter(|byte| *byte & 0x80 == 0).count(),
                    ),
                    Kind::Strings => counts.add(field.tally, 1),
                }
            }
            3 => skip_group(&mut buf, number, depth + 1)?,
            5 => {
                skip(&mut buf, 4)?;
                number_entry(counts);
            }
            _ => return Err(Unreadable::Malformed),
        }
    }
    Ok(())
}

/// Skips a (deprecated, but still decodable) group up to its end tag.
fn skip_group(buf: &mut &[u8], number: u64, depth: usize) -> Result<(), Unreadable> {
    if depth > MAX_MESSAGE_NESTING {
        return Err(Unreadable::TooDeep);
    }
    loop {
        let key = varint(buf)?;
        match key & 7 {
            0 => {
                varint(buf)?;
            }
            1 => {
                skip(buf, 8)?;
            }
            2 => {
                let len = varint(buf)?;
                skip(buf, len)?;
            }
            3 => skip_group(buf, key >> 3, depth + 1)?,
            4 if key >> 3 == number => return Ok(()),
            5 => {
                skip(buf, 4)?;
            }
            _ => return Err(Unreadable::Malformed),
        }
    }
}

/// A JSON object read as `message`: its known fields are counted and walked, anything else is
/// skipped unread. Any other JSON value is skipped: the decoder says what is wrong with it.
struct Object<'a> {
    message: &'static Message,
    counts: &'a mut Counts,
}

impl<'de> DeserializeSeed<'de> for Object<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key_seed(Key(self.message))? {
            match field {
                Some(field) => map.next_value_seed(Entries {
                    field,
                    counts: &mut *self.counts,
                })?,
                None => map.next_value::<IgnoredAny>().map(|_| ())?,
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The value of a known field: an array of entries (each counted, and walked when it is a
/// message), or one message (counted and walked). Anything else is skipped.
struct Entries<'a> {
    field: &'static Field,
    counts: &'a mut Counts,
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let more = match self.field.kind {
                Kind::Message(message) => seq
                    .next_element_seed(Object {
                        message,
                        counts: &mut *self.counts,
                    })?
                    .is_some(),
                Kind::Numbers(_) | Kind::Strings => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            self.counts.add(self.field.tally, 1);
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        match self.field.kind {
            Kind::Message(message) => {
                self.counts.add(self.field.tally, 1);
                Object {
                    message,
                    counts: self.counts,
                }
                .visit_map(map)
            }
            Kind::Numbers(_) | Kind::Strings => IgnoredAny.visit_map(map).map(|_| ()),
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The field a JSON key names in `message`, if it is one worth looking into; read without
/// allocating.
struct Key(&'static Message);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<&'static Field>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<&'static Field>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let fields: &'static [Field] = self.0.0;
        Ok(fields.iter().find(|f| f.name == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
    };
    use opentelemetry_proto::tonic::metrics::v1::{
        Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
        HistogramDataPoint, Metric, Sum, Summary, SummaryDataPoint,
        exponential_histogram_data_point, metric, summary_data_point,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span;
    use prost::Message as _;

    const TRACE: &[u8] = include_bytes!("../tests/fixtures/trace.json");
    const LOGS: &[u8] = include_bytes!("../tests/fixtures/logs.json");
    const METRICS: &[u8] = include_bytes!("../tests/fixtures/metrics.json");

    // What the decoder finds, counted on the generated types the way the scan counts the wire.

    fn key_values(list: &[KeyValue]) -> usize {
        list.iter()
            .map(|kv| 1 + kv.value.as_ref().map_or(0, any_value))
            .sum()
    }

    fn any_value(value: &AnyValue) -> usize {
        1 + match &value.value {
            Some(any_value::Value::ArrayValue(array)) => array.values.iter().map(any_value).sum(),
            Some(any_value::Value::KvlistValue(list)) => key_values(&list.values),
            _ => 0,
        }
    }

    fn resource_and_scope(
        resource: Option<&Resource>,
        scopes: impl Iterator<Item = Option<InstrumentationScope>>,
        counts: &mut Counts,
    ) {
        counts.groups += 1;
        if let Some(resource) = resource {
            counts.values += key_values(&resource.attributes);
            counts.entries += resource
                .entity_refs
                .iter()
                .map(|e| 1 + e.id_keys.len() + e.description_keys.len())
                .sum::<usize>();
        }
        for scope in scopes {
            counts.groups += 1;
            counts.values += scope.map_or(0, |s| key_values(&s.attributes));
        }
    }

    fn exemplars(list: &[Exemplar]) -> (usize, usize) {
        let values = list.iter().map(|e| key_values(&e.filtered_attributes));
        (values.sum(), list.len())
    }

    fn decoded_traces(request: &ExportTraceServiceRequest) -> Counts {
        let mut counts = Counts::default();
        for r in &request.resource_spans {
            let scopes = r.scope_spans.iter().map(|s| s.scope.clone());
            resource_and_scope(r.resource.as_ref(), scopes, &mut counts);
            for span in r.scope_spans.iter().flat_map(|s| &s.spans) {
                counts.events += 1;
                counts.values += key_values(&span.attributes);
                counts.entries += span.events.len() + span.links.len();
                counts.values += span
                    .events
                    .iter()
                    .map(|e| key_values(&e.attributes))
                    .sum::<usize>();
                counts.values += span
                    .links
                    .iter()
                    .map(|l| key_values(&l.attributes))
                    .sum::<usize>();
            }
        }
        counts
    }

    fn decoded_logs(request: &ExportLogsServiceRequest) -> Counts {
        let mut counts = Counts::default();
        for r in &request.resource_logs {
            let scopes = r.scope_logs.iter().map(|s| s.scope.clone());
            resource_and_scope(r.resource.as_ref(), scopes, &mut counts);
            for record in r.scope_logs.iter().flat_map(|s| &s.log_records) {
                counts.events += 1;
                counts.values += key_values(&record.attributes);
                counts.values += record.body.as_ref().map_or(0, any_value);
            }
        }
        counts
    }

    fn decoded_metrics(request: &ExportMetricsServiceRequest) -> Counts {
        let mut counts = Counts::default();
        for r in &request.resource_metrics {
            let scopes = r.scope_metrics.iter().map(|s| s.scope.clone());
            resource_and_scope(r.resource.as_ref(), scopes, &mut counts);
            for metric in r.scope_metrics.iter().flat_map(|s| &s.metrics) {
                counts.groups += 1;
                counts.values += key_values(&metric.metadata);
                // (events, values, entries) of each point.
                let points: Vec<(usize, usize)> = match &metric.data {
                    Some(
                        metric::Data::Gauge(Gauge { data_points, .. })
                        | metric::Data::Sum(Sum { data_points, .. }),
                    ) => data_points
                        .iter()
                        .map(|p| {
                            let (v, e) = exemplars(&p.exemplars);
                            (key_values(&p.attributes) + v, e)
                        })
                        .collect(),
                    Some(metric::Data::Histogram(h)) => h
                        .data_points
                        .iter()
                        .map(|p| {
                            let (v, e) = exemplars(&p.exemplars);
                            let buckets = p.bucket_counts.len() + p.explicit_bounds.len();
                            (key_values(&p.attributes) + v, e + buckets)
                        })
                        .collect(),
                    Some(metric::Data::ExponentialHistogram(h)) => h
                        .data_points
                        .iter()
                        .map(|p| {
                            let (v, e) = exemplars(&p.exemplars);
                            let buckets = [&p.positive, &p.negative]
                                .into_iter()
                                .flatten()
                                .map(|b| b.bucket_counts.len())
                                .sum::<usize>();
                            (key_values(&p.attributes) + v, e + buckets)
                        })
                        .collect(),
                    Some(metric::Data::Summary(s)) => s
                        .data_points
                        .iter()
                        .map(|p| (key_values(&p.attributes), p.quantile_values.len()))
                        .collect(),
                    None => Vec::new(),
                };
                for (values, entries) in points {
                    counts.events += 1;
                    counts.values += values;
                    counts.entries += entries;
                }
            }
        }
        counts
    }

    fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value,
            ..Default::default()
        }
    }

    fn any(value: any_value::Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(value) })
    }

    /// Attributes with nested arrays and kvlists, empty values and a missing one.
    fn attributes() -> Vec<KeyValue> {
        let list = KeyValueList {
            values: vec![
                kv("a", any(any_value::Value::IntValue(1))),
                kv("b", None),
                kv(
                    "c",
                    any(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue::default(); 3],
                    })),
                ),
            ],
        };
        vec![
            kv("s", any(any_value::Value::StringValue("x".into()))),
            kv(
                "arr",
                any(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue::default(),
                        AnyValue {
                            value: Some(any_value::Value::KvlistValue(list.clone())),
                        },
                    ],
                })),
            ),
            kv("kv", any(any_value::Value::KvlistValue(list))),
            kv("none", None),
        ]
    }

    fn rich_resource() -> Option<Resource> {
        Some(Resource {
            attributes: attributes(),
            entity_refs: vec![
                EntityRef {
                    id_keys: vec!["a".into(), "b".into()],
                    description_keys: vec!["c".into()],
                    ..Default::default()
                },
                EntityRef::default(),
            ],
            ..Default::default()
        })
    }

    fn rich_scope() -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            attributes: attributes(),
            ..Default::default()
        })
    }

    /// The fixtures, each twice over (so every level holds more than one entry), with a
    /// resource, a scope and events that hold every kind of nested entry added.
    fn requests() -> (
        ExportTraceServiceRequest,
        ExportLogsServiceRequest,
        ExportMetricsServiceRequest,
    ) {
        let mut traces: ExportTraceServiceRequest = serde_json::from_slice(TRACE).unwrap();
        traces.resource_spans.push(traces.resource_spans[0].clone());
        let mut scope = traces.resource_spans[1].scope_spans[0].clone();
        scope.scope = rich_scope();
        let mut span = scope.spans[0].clone();
        span.attributes = attributes();
        span.events = vec![
            span::Event {
                attributes: attributes(),
                ..Default::default()
            },
            span::Event::default(),
        ];
        span.links = vec![span::Link {
            attributes: attributes(),
            ..Default::default()
        }];
        scope.spans.push(span);
        traces.resource_spans[1].scope_spans.push(scope);
        traces.resource_spans[1].resource = rich_resource();

        let mut logs: ExportLogsServiceRequest = serde_json::from_slice(LOGS).unwrap();
        logs.resource_logs.push(logs.resource_logs[0].clone());
        logs.resource_logs[1].resource = rich_resource();
        let records = &mut logs.resource_logs[1].scope_logs[0].log_records;
        let mut record = records[0].clone();
        record.attributes = attributes();
        record.body = attributes().swap_remove(1).value;
        records.push(record);

        let mut metrics: ExportMetricsServiceRequest = serde_json::from_slice(METRICS).unwrap();
        metrics
            .resource_metrics
            .push(metrics.resource_metrics[0].clone());
        metrics.resource_metrics[1].resource = rich_resource();
        let exemplar = Exemplar {
            filtered_attributes: attributes(),
            ..Default::default()
        };
        let metrics_of = &mut metrics.resource_metrics[1].scope_metrics[0].metrics;
        metrics_of[0].metadata = attributes();
        if let Some(metric::Data::Sum(sum)) = &mut metrics_of[0].data {
            sum.data_points[0].exemplars = vec![exemplar.clone(), Exemplar::default()];
        }
        metrics_of.push(Metric {
            name: "h".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: attributes(),
                    bucket_counts: vec![1, 0, 300, u64::MAX],
                    explicit_bounds: vec![1.0, 2.0, 3.0],
                    exemplars: vec![exemplar.clone()],
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        });
        metrics_of.push(Metric {
            name: "e".into(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: attributes(),
                    positive: Some(exponential_histogram_data_point::Buckets {
                        offset: 2,
                        bucket_counts: vec![0, 1, 127, 128, 300_000, u64::MAX],
                    }),
                    negative: Some(exponential_histogram_data_point::Buckets::default()),
                    exemplars: vec![exemplar],
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        });
        metrics_of.push(Metric {
            name: "s".into(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: attributes(),
                    quantile_values: vec![summary_data_point::ValueAtQuantile::default(); 3],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        });
        (traces, logs, metrics)
    }

    /// Each request in both formats, with what the decoder finds in it.
    fn bodies() -> Vec<(Signal, Format, Vec<u8>, Counts)> {
        let (traces, logs, metrics) = requests();
        let out = [
            (
                Signal::Traces,
                traces.encode_to_vec(),
                serde_json::to_vec(&traces).unwrap(),
                decoded_traces(&traces),
            ),
            (
                Signal::Logs,
                logs.encode_to_vec(),
                serde_json::to_vec(&logs).unwrap(),
                decoded_logs(&logs),
            ),
            (
                Signal::Metrics,
                metrics.encode_to_vec(),
                serde_json::to_vec(&metrics).unwrap(),
                decoded_metrics(&metrics),
            ),
        ];
        out.into_iter()
            .flat_map(|(signal, protobuf, json, counts)| {
                [
                    (signal, Format::Protobuf, protobuf, counts),
                    (signal, Format::Json, json, counts),
                ]
            })
            .collect()
    }

    #[test]
    fn the_scan_counts_what_the_decoder_finds() {
        let found: Vec<(usize, usize)> = bodies()
            .iter()
            .map(|(_, _, _, c)| (c.events, c.groups))
            .collect();
        // The fixtures' own entries (twice over), plus the one span and record added.
        assert_eq!(found, [(4, 5), (4, 5), (3, 4), (3, 4), (9, 13), (9, 13)]);
        for (signal, format, body, expected) in bodies() {
            assert!(
                expected.values > 30 && expected.entries >= 5,
                "{signal:?} {expected:?}"
            );
            assert_eq!(
                scan(signal, format, &body),
                Ok(expected),
                "{signal:?} {format:?}"
            );
            let decoded = crate::decode_otlp(
                signal,
                format,
                &body,
                chrono::DateTime::UNIX_EPOCH,
                &crate::Caps::default(),
            )
            .unwrap();
            assert_eq!(
                decoded.events.len(),
                expected.events,
                "{signal:?} {format:?}"
            );
        }
    }

    #[test]
    fn packed_and_unpacked_numbers_count_each_element() {
        // A histogram point (field 1 of a histogram, field 9 of a metric, …) whose bucket
        // counts are packed (field 6, three fixed64s) then unpacked (two more), and whose
        // bounds are unpacked (field 7, one double).
        let mut point = vec![0x32, 24];
        point.extend([0u8; 24]);
        for _ in 0..2 {
            point.push(0x31);
            point.extend([0u8; 8]);
        }
        point.push(0x39);
        point.extend([0u8; 8]);
        let wrap = |number: u8, inner: &[u8]| {
            let mut out = vec![number << 3 | 2, u8::try_from(inner.len()).unwrap()];
            out.extend(inner);
            out
        };
        let body = wrap(1, &wrap(2, &wrap(2, &wrap(9, &wrap(1, &point)))));
        let counts = scan(Signal::Metrics, Format::Protobuf, &body).unwrap();
        assert_eq!((counts.events, counts.entries), (1, 6));
    }

    #[test]
    fn unknown_fields_and_groups_are_skipped_and_bad_wire_data_refused() {
        // Field 15 as a varint, a fixed64, a fixed32 and a group (start 15, a varint, end 15)
        // around one empty resource.
        let body = [
            0x78, 0x01, 0x79, 0, 0, 0, 0, 0, 0, 0, 0, 0x7d, 0, 0, 0, 0, 0x7b, 0x08, 0x01, 0x7c,
            0x0a, 0x00,
        ];
        assert_eq!(
            scan(Signal::Traces, Format::Protobuf, &body),
            Ok(Counts {
                groups: 1,
                ..Counts::default()
            })
        );
        for bad in [&[0x0a, 0x05, 0x00][..], &[0x0e], &[0xff], &[0x7b, 0x08]] {
            assert!(
                scan(Signal::Traces, Format::Protobuf, bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(scan(Signal::Logs, Format::Json, b"{\"resourceLogs\":[").is_err());
        // Values of the wrong type are left to the decoder, which names them.
        assert_eq!(
            scan(
                Signal::Logs,
                Format::Json,
                br#"{"resourceLogs":5,"x":[null]}"#
            ),
            Ok(Counts::default())
        );
    }

    #[test]
    fn protobuf_nesting_is_bounded() {
        // A log body: arrays of arrays, 2 messages per level (AnyValue, ArrayValue).
        let nest = |levels: usize| {
            let mut value: Vec<u8> = Vec::new();
            for _ in 0..levels {
                let mut array = vec![0x0a];
                push_len(&mut array, value.len());
                array.extend(&value);
                value = vec![0x2a];
                push_len(&mut value, array.len());
                value.extend(array);
            }
            // Record (body = field 5) in scope (field 2) in resource (field 2) in the request.
            let mut body = value;
            for number in [5u8, 2, 2, 1] {
                let mut outer = vec![number << 3 | 2];
                push_len(&mut outer, body.len());
                outer.extend(body);
                body = outer;
            }
            body
        };
        // Request, resource, scope, record enclose 4 levels; then 2 per array level.
        let ok = scan(Signal::Logs, Format::Protobuf, &nest(48)).unwrap();
        assert_eq!(ok.values, 1 + 48);
        assert_eq!(
            scan(Signal::Logs, Format::Protobuf, &nest(49)),
            Err(IngestError::Invalid(
                "body: not a valid OTLP protobuf message: messages nested deeper than 100 levels"
                    .into()
            ))
        );
    }

    fn push_len(out: &mut Vec<u8>, mut len: usize) {
        loop {
            let byte = u8::try_from(len & 0x7f).unwrap();
            len >>= 7;
            if len == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
}
