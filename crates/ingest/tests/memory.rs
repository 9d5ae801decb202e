//! Peak memory of decoding the worst requests we could build, counted by a global allocator:
//! each, the body itself included, must cost at most what `agentvista_ingest::expansion`
//! reserves for it. This is the only test in this binary, so no other test allocates while it
//! measures.
#![allow(clippy::unwrap_used, missing_docs)]

use agentvista_ingest::{
    Caps, Format, IngestError, MAX_OTLP_EVENTS, Signal, decode_batch, decode_otlp, expansion,
};
use chrono::DateTime;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Summary,
    SummaryDataPoint, exponential_histogram_data_point, metric, number_data_point,
    summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use peak_alloc::PeakAlloc;
use prost::Message;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// The body limit of the ingest endpoints.
const BODY: usize = 5 * 1024 * 1024;

const MIB: usize = 1024 * 1024;

fn string(value: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(value.into())),
    })
}

fn kv(key: impl Into<String>, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value,
        ..Default::default()
    }
}

fn array(values: Vec<AnyValue>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
    })
}

fn kvlist(values: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList { values })),
    }
}

fn big_resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("big", string("r".repeat(MIB)))],
        ..Default::default()
    })
}

fn span(i: usize, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![0xab; 16],
        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
        attributes,
        ..Default::default()
    }
}

fn traces(resource: Option<Resource>, spans: Vec<Span>) -> Request {
    Request::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource,
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn logs(resource: Option<Resource>, records: Vec<LogRecord>) -> Request {
    Request::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource,
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn metrics(resource: Option<Resource>, metrics: Vec<Metric>) -> Request {
    Request::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource,
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// One metric of `data`.
fn metric(data: metric::Data) -> Metric {
    Metric {
        name: "m".into(),
        data: Some(data),
        ..Default::default()
    }
}

/// A kvlist nested `depth` deep around `leaf`, with `width` empty siblings at each level.
fn nested(depth: usize, width: usize, leaf: AnyValue) -> AnyValue {
    (0..depth).fold(leaf, |inner, _| {
        let mut values: Vec<KeyValue> = (0..width).map(|w| kv(format!("{w:x}"), None)).collect();
        values.push(kv("k", Some(inner)));
        kvlist(values)
    })
}

/// An OTLP request of any signal.
enum Request {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

impl Request {
    fn signal(&self) -> Signal {
        match self {
            Request::Traces(_) => Signal::Traces,
            Request::Logs(_) => Signal::Logs,
            Request::Metrics(_) => Signal::Metrics,
        }
    }

    fn encode(&self, format: Format) -> Vec<u8> {
        fn encode<M: Message + serde::Serialize>(request: &M, format: Format) -> Vec<u8> {
            match format {
                Format::Protobuf => request.encode_to_vec(),
                Format::Json => {
                    let mut json = serde_json::to_value(request).unwrap();
                    minimize(&mut json);
                    serde_json::to_vec(&json).unwrap()
                }
            }
        }
        match self {
            Request::Traces(r) => encode(r, format),
            Request::Logs(r) => encode(r, format),
            Request::Metrics(r) => encode(r, format),
        }
    }

    /// The first resource, created if need be.
    fn resource(&mut self) -> &mut Resource {
        let resource = match self {
            Request::Traces(r) => &mut r.resource_spans[0].resource,
            Request::Logs(r) => &mut r.resource_logs[0].resource,
            Request::Metrics(r) => &mut r.resource_metrics[0].resource,
        };
        resource.get_or_insert_with(Resource::default)
    }
}

/// Drops every member that holds its default (`null`, `""`, `0`, `"0"`, `false`, `[]`,
/// `{}`), as a sender may: serde writes them all, and a case is only as dense as its
/// encoding. Members the generated types require (a `KeyValue`'s key, a list's values, an
/// entity reference's fields) stay.
fn minimize(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Array(items) => items.iter_mut().for_each(minimize),
        Value::Object(map) => {
            map.values_mut().for_each(minimize);
            map.retain(|key, value| {
                matches!(
                    key.as_str(),
                    "key" | "values" | "schemaUrl" | "type" | "idKeys" | "descriptionKeys"
                ) || !match value {
                    Value::Null => true,
                    Value::Bool(b) => !*b,
                    Value::Number(n) => n.as_f64() == Some(0.0),
                    Value::String(s) => s.is_empty() || s == "0",
                    Value::Array(a) => a.is_empty(),
                    Value::Object(o) => o.is_empty(),
                }
            });
        }
        _ => {}
    }
}

/// A request of nearly `BODY` bytes: `n` is scaled until the encoding is 95–100% of it.
fn fit(format: Format, build: impl Fn(usize) -> Request) -> Vec<u8> {
    let mut n = 1000;
    for _ in 0..12 {
        let body = build(n).encode(format);
        if body.len() <= BODY && body.len() > BODY * 95 / 100 {
            return body;
        }
        let target = BODY as f64 * 0.98;
        n = ((n as f64) * target / body.len() as f64).max(1.0) as usize;
    }
    panic!("no request of about {BODY} bytes");
}

/// `request` filled up to nearly `BODY` bytes with resource attributes of 1 MiB bytes values
/// (the most a value may hold), the filler that costs the most per byte: its hex text is
/// twice its size, and stays in the resource's context.
fn padded(format: Format, request: impl Fn() -> Request) -> Vec<u8> {
    let base = request().encode(format).len();
    if base > BODY * 95 / 100 {
        return request().encode(format);
    }
    let mut filler = BODY.saturating_sub(base) * 9 / 10;
    for _ in 0..12 {
        let mut padded = request();
        let attributes = &mut padded.resource().attributes;
        let mut left = filler;
        while left > 0 {
            let len = left.min(MIB);
            left -= len;
            attributes.push(kv(
                format!("pad{left}"),
                Some(AnyValue {
                    value: Some(any_value::Value::BytesValue(vec![0xa5; len])),
                }),
            ));
        }
        let body = padded.encode(format);
        if body.len() <= BODY && body.len() > BODY * 95 / 100 {
            return body;
        }
        let target = BODY as f64 * 0.98;
        filler = ((filler as f64) * (target - base as f64) / (body.len() - base) as f64) as usize;
    }
    panic!("no padding to about {BODY} bytes");
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Decoder {
    Batch,
    Otlp(Format),
}

impl Decoder {
    fn name(self) -> &'static str {
        match self {
            Decoder::Batch => "batch JSON",
            Decoder::Otlp(Format::Json) => "OTLP JSON",
            Decoder::Otlp(Format::Protobuf) => "OTLP protobuf",
        }
    }

    /// What `expansion` says decoding `body` may cost (for a request the caps refuse, the
    /// body and a few KiB: such a request is refused by a scan, before it is decoded).
    fn bound(self, signal: Signal, body: &[u8]) -> usize {
        match self {
            Decoder::Batch => expansion::batch(body.len()),
            Decoder::Otlp(format) => {
                expansion::otlp(signal, format, body).unwrap_or(body.len() + 4096)
            }
        }
    }
}

struct Case {
    name: String,
    decoder: Decoder,
    /// For OTLP.
    signal: Signal,
    body: Box<dyn Fn() -> Vec<u8>>,
    /// `None` if accepted, else a part of the refusal's message.
    refused: Option<&'static str>,
}

/// Every OTLP case, in one format.
#[allow(clippy::too_many_lines)]
fn otlp_cases(format: Format) -> Vec<Case> {
    let f = match format {
        Format::Protobuf => "pb",
        Format::Json => "json",
    };
    let mut cases = Vec::new();
    let mut case = |name: &str, signal, body: Box<dyn Fn() -> Vec<u8>>, refused| {
        cases.push(Case {
            name: format!("{name} ({f})"),
            decoder: Decoder::Otlp(format),
            signal,
            body,
            refused,
        });
    };
    // A capped case twice: as small as it can be (`dense`), and filled up to the body limit.
    // The filler's attributes are values too, at most 10: each case leaves room for them.
    let mut both = |name: &str, request: fn() -> Request| {
        let signal = request().signal();
        case(
            &format!("{name}, dense"),
            signal,
            Box::new(move || request().encode(format)),
            None,
        );
        case(
            &format!("{name}, +fill to 5 MiB"),
            signal,
            Box::new(move || padded(format, request)),
            None,
        );
    };

    // Attribute values, up to their cap of 100,000.
    both("values: 10 arrays of 9997 empty values", || {
        let attributes = (0..10)
            .map(|k| kv(format!("a{k}"), array(vec![AnyValue::default(); 9_997])))
            .collect();
        traces(None, vec![span(0, attributes)])
    });
    both("values: 10 arrays of 4998 one-key kvlists", || {
        let one = kvlist(vec![KeyValue::default()]);
        let attributes = (0..10)
            .map(|k| kv(format!("a{k}"), array(vec![one.clone(); 4_998])))
            .collect();
        traces(None, vec![span(0, attributes)])
    });
    both("values: 10000 spans x 10 tiny attributes", || {
        let attributes: Vec<KeyValue> = (0..10).map(|k| kv(format!("{k}"), None)).collect();
        let mut spans: Vec<Span> = (0..MAX_OTLP_EVENTS)
            .map(|i| span(i, attributes.clone()))
            .collect();
        spans[0].attributes.clear();
        traces(None, spans)
    });
    both("values: 880 records of kvlists 28 deep", || {
        // 113 values each: the body, then 3 KeyValues and an AnyValue a level.
        let record = LogRecord {
            body: Some(nested(28, 2, AnyValue::default())),
            ..Default::default()
        };
        logs(None, vec![record; 880])
    });
    // Nested entries, up to their cap of 50,000.
    both("entries: 5 spans x 10000 empty events", || {
        let mut spans: Vec<Span> = (0..5).map(|i| span(i, vec![])).collect();
        for s in &mut spans {
            s.events = vec![span::Event::default(); 10_000];
        }
        traces(None, spans)
    });
    both("entries: 5 spans x 10000 empty links", || {
        let mut spans: Vec<Span> = (0..5).map(|i| span(i, vec![])).collect();
        for s in &mut spans {
            s.links = vec![span::Link::default(); 10_000];
        }
        traces(None, spans)
    });
    both("entries: 50000 summary quantiles", || {
        metrics(
            None,
            vec![metric(metric::Data::Summary(Summary {
                data_points: vec![
                    SummaryDataPoint {
                        quantile_values: vec![
                            summary_data_point::ValueAtQuantile::default();
                            10_000
                        ],
                        ..Default::default()
                    };
                    5
                ],
            }))],
        )
    });
    both("entries: 50000 exemplars", || {
        metrics(
            None,
            vec![metric(metric::Data::Gauge(Gauge {
                data_points: vec![
                    NumberDataPoint {
                        exemplars: vec![Exemplar::default(); 10_000],
                        ..Default::default()
                    };
                    5
                ],
            }))],
        )
    });
    both("entries: 25000 buckets + 25000 bounds", || {
        metrics(
            None,
            vec![metric(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    bucket_counts: vec![0; 25_000],
                    explicit_bounds: vec![0.0; 25_000],
                    ..Default::default()
                }],
                ..Default::default()
            }))],
        )
    });
    both("entries: 50000 exponential buckets", || {
        metrics(
            None,
            vec![metric(metric::Data::ExponentialHistogram(
                ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        positive: Some(exponential_histogram_data_point::Buckets {
                            offset: 0,
                            bucket_counts: vec![0; 50_000],
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ))],
        )
    });
    both("entries: 50000 entity ref keys", || {
        let mut request = traces(None, vec![span(0, vec![])]);
        request.resource().entity_refs = vec![EntityRef {
            id_keys: vec![String::new(); 49_999],
            ..Default::default()
        }];
        request
    });
    // The smallest request with an event, per signal.
    both("tiny: one empty log record", || {
        logs(None, vec![LogRecord::default()])
    });
    both("tiny: one empty data point", || {
        metrics(
            None,
            vec![metric(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint::default()],
            }))],
        )
    });
    both("tiny: one span", || traces(None, vec![span(0, vec![])]));
    // Events and groups, up to their cap of 10,000 each: the smallest events there are.
    both("events: 10000 empty log records", || {
        logs(None, vec![LogRecord::default(); MAX_OTLP_EVENTS])
    });
    both("events: 10000 empty data points", || {
        metrics(
            None,
            vec![metric(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint::default(); MAX_OTLP_EVENTS],
            }))],
        )
    });
    both("events: 10000 spans", || {
        traces(
            None,
            (0..MAX_OTLP_EVENTS).map(|i| span(i, vec![])).collect(),
        )
    });
    both("groups: 5000 resources x 1 scope x 2 spans", || {
        let group = ResourceSpans {
            resource: Some(Resource::default()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope::default()),
                spans: vec![span(0, vec![]), span(1, vec![])],
                ..Default::default()
            }],
            ..Default::default()
        };
        Request::Traces(ExportTraceServiceRequest {
            resource_spans: vec![group; 5_000],
        })
    });
    both("groups: 9998 metrics x 1 point", || {
        let point = NumberDataPoint {
            value: Some(number_data_point::Value::AsInt(1)),
            ..Default::default()
        };
        metrics(
            None,
            vec![
                metric(metric::Data::Sum(
                    opentelemetry_proto::tonic::metrics::v1::Sum {
                        data_points: vec![point],
                        ..Default::default()
                    }
                ));
                9_998
            ],
        )
    });
    // Everything at once: every cap reached in one request.
    both("all caps at once", || {
        let one = kvlist(vec![KeyValue::default()]);
        let mut spans: Vec<Span> = (0..MAX_OTLP_EVENTS).map(|i| span(i, vec![])).collect();
        for (i, s) in spans.iter_mut().enumerate() {
            // 3 values an attribute (a KeyValue, its kvlist, the KeyValue in it): 99,990.
            s.attributes = (0..3 + usize::from(i < 3_330))
                .map(|k| kv(format!("{k}"), Some(one.clone())))
                .collect();
            s.events = vec![span::Event::default(); 5];
        }
        let mut request = traces(None, spans);
        if let Request::Traces(r) = &mut request {
            // 9,998 more groups: empty resources.
            r.resource_spans
                .extend(std::iter::repeat_n(ResourceSpans::default(), 9_998));
        }
        request
    });

    // The cases of the previous bound, 48x (2026-11-28), under the caps now.
    case(
        "a: 1 MiB resource + empty spans",
        Signal::Traces,
        Box::new(move || match format {
            Format::Protobuf => fit(format, |n| traces(big_resource(), vec![Span::default(); n])),
            // serde writes every field of a default span; `{}` is the smallest one.
            Format::Json => {
                let head = format!(
                    r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"big","value":{{"stringValue":"{}"}}}}]}},"scopeSpans":[{{"spans":["#,
                    "r".repeat(MIB)
                );
                let n = (BODY - head.len() - 10) / 3;
                format!("{head}{}{{}}]}}]}}]}}", "{},".repeat(n - 1)).into_bytes()
            }
        }),
        Some("at most 10000 spans"),
    );
    case(
        "a: 1 MiB resource + minimal spans",
        Signal::Traces,
        Box::new(move || {
            fit(format, |n| {
                traces(big_resource(), (0..n).map(|i| span(i, vec![])).collect())
            })
        }),
        Some("at most 10000 spans"),
    );
    // Empty spans cut off before their end: malformed, but only at the last byte.
    case(
        "a': empty spans, malformed at the end",
        Signal::Traces,
        Box::new(move || match format {
            Format::Protobuf => {
                let mut body = fit(format, |n| traces(None, vec![Span::default(); n]));
                body.truncate(BODY - 1);
                body.push(0xff);
                body
            }
            Format::Json => {
                let head = r#"{"resourceSpans":[{"scopeSpans":[{"spans":["#;
                format!("{head}{}", "{},".repeat((BODY - head.len()) / 3)).into_bytes()
            }
        }),
        Some("body: "),
    );
    case(
        "b: 1 MiB resource + 10000 spans",
        Signal::Traces,
        Box::new(move || {
            traces(
                big_resource(),
                (0..MAX_OTLP_EVENTS).map(|i| span(i, vec![])).collect(),
            )
            .encode(format)
        }),
        None,
    );
    case(
        "c: 10000 spans x tiny attributes",
        Signal::Traces,
        Box::new(move || {
            fit(format, |n| {
                let per_span = n / 100;
                let attributes: Vec<KeyValue> =
                    (0..per_span).map(|k| kv(format!("{k:x}"), None)).collect();
                traces(
                    None,
                    (0..MAX_OTLP_EVENTS)
                        .map(|i| span(i, attributes.clone()))
                        .collect(),
                )
            })
        }),
        Some("at most 100000 attribute values"),
    );
    case(
        "c': array of empty values",
        Signal::Traces,
        Box::new(move || {
            fit(format, |n| {
                traces(
                    None,
                    vec![span(
                        0,
                        vec![kv("a", array(vec![AnyValue::default(); n * 10]))],
                    )],
                )
            })
        }),
        Some("at most 100000 attribute values"),
    );
    case(
        "d: 1 MiB description + 10000 points",
        Signal::Metrics,
        Box::new(move || {
            let point = NumberDataPoint {
                value: Some(number_data_point::Value::AsDouble(1.5)),
                time_unix_nano: 1,
                ..Default::default()
            };
            metrics(
                big_resource(),
                vec![Metric {
                    name: "m".into(),
                    description: "d".repeat(MIB),
                    unit: "u".repeat(MIB),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![point; MAX_OTLP_EVENTS],
                    })),
                    ..Default::default()
                }],
            )
            .encode(format)
        }),
        None,
    );
    case(
        "e: 1 MiB resource + 10000 log records",
        Signal::Logs,
        Box::new(move || {
            fit(format, |n| {
                let record = LogRecord {
                    body: string("l".repeat(n / 100)),
                    ..Default::default()
                };
                logs(big_resource(), vec![record; MAX_OTLP_EVENTS])
            })
        }),
        None,
    );
    case(
        "f: nested kvlists",
        Signal::Logs,
        Box::new(move || {
            fit(format, |n| {
                let record = LogRecord {
                    body: Some(nested(28, n / 2000, AnyValue::default())),
                    ..Default::default()
                };
                logs(None, vec![record; 1000])
            })
        }),
        Some("at most 100000 attribute values"),
    );
    cases
}

/// A batch of `events` events whose bodies are `body`.
fn batch(events: usize, body: &str) -> Vec<u8> {
    let item = format!(
        r#"{{"type":"span","trace_id":"t","timestamp":"2026-12-06T00:00:00Z","body":{body}}}"#
    );
    format!(r#"{{"batch":[{}]}}"#, vec![item; events].join(",")).into_bytes()
}

/// As many events (at most 1000) as fit in nearly `BODY` bytes, with bodies `body`.
fn batch_fit(body: &str) -> Vec<u8> {
    let one = batch(1, body).len();
    batch((BODY * 98 / 100 / one).min(1000), body)
}

fn batch_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut case = |name: &str, body: Box<dyn Fn() -> Vec<u8>>, refused| {
        cases.push(Case {
            name: name.into(),
            decoder: Decoder::Batch,
            signal: Signal::Traces,
            body,
            refused,
        });
    };
    // `n` copies of `item` as one JSON array.
    fn list(item: &str, n: usize) -> String {
        format!("[{}]", vec![item; n].join(","))
    }
    // The previous worst: one body of 1.7 million empty arrays.
    case(
        "g: batch body of empty arrays",
        Box::new(|| {
            let head = r#"{"batch":[{"type":"span","trace_id":"t","timestamp":"2026-11-28T00:00:00Z","body":{"a":["#;
            let n = (BODY - head.len() - 10) / 3;
            format!("{head}{}[]]}}}}]}}", "[],".repeat(n - 1)).into_bytes()
        }),
        Some("longer than the limit of 1048576 bytes"),
    );
    // 1000 events (or as many as fit) whose bodies are 10,000-element arrays, and the same with
    // one-key objects (a map's smallest allocation is a whole B-tree node) and chains of them
    // as deep as a body may hold.
    case(
        "h: bodies of 10000 empty arrays",
        Box::new(|| batch_fit(&format!(r#"{{"a":{}}}"#, list("[]", 10_000)))),
        None,
    );
    case(
        "h: bodies of 10000 zeros",
        Box::new(|| batch_fit(&format!(r#"{{"a":{}}}"#, list("0", 10_000)))),
        None,
    );
    case(
        "h: bodies of 10000 one-key objects",
        Box::new(|| batch_fit(&format!(r#"{{"a":{}}}"#, list(r#"{"":0}"#, 10_000)))),
        None,
    );
    case(
        "h: bodies of one-key objects 31 deep",
        Box::new(|| {
            // In the body (level 1) and its array (2), objects at levels 3 to 31.
            let chain = format!("{}0{}", r#"{"":"#.repeat(29), "}".repeat(29));
            batch_fit(&format!(r#"{{"a":{}}}"#, list(&chain, 1_000)))
        }),
        None,
    );
    case(
        "h: 1000 events, bodies of 200 one-key objects",
        Box::new(|| batch(1000, &format!(r#"{{"a":{}}}"#, list(r#"{"":0}"#, 200)))),
        None,
    );
    case(
        "h: 1000 events, small bodies",
        Box::new(|| batch(1000, r#"{"":0}"#)),
        None,
    );
    cases
}

#[test]
fn the_worst_requests_cost_at_most_what_expansion_says() {
    let caps = Caps::default();
    let mut cases = otlp_cases(Format::Protobuf);
    cases.extend(otlp_cases(Format::Json));
    cases.extend(batch_cases());
    // Shown with --nocapture, one row per case as it is measured; the figures in `expansion`
    // and the README come from here. `x body` is (body + peak) / body; `of bound` the same over
    // what `expansion` reserves for it, which must be at most 1.
    let mut report = vec![format!(
        "{:<60} {:>9} {:>11} {:>8} {:>9}",
        "case", "body B", "peak B", "x body", "of bound"
    )];
    println!("{}", report[0]);
    let mut over = Vec::new();
    let mut worst: Vec<(Decoder, f64, String)> = Vec::new();
    for case in cases {
        let body = (case.body)();
        let bound = case.decoder.bound(case.signal, &body);
        let before = ALLOCATOR.current_usage();
        ALLOCATOR.reset_peak_usage();
        let result = match case.decoder {
            Decoder::Batch => decode_batch(&body, &caps),
            Decoder::Otlp(format) => {
                decode_otlp(case.signal, format, &body, DateTime::UNIX_EPOCH, &caps)
            }
        };
        let peak = ALLOCATOR.peak_usage().saturating_sub(before);
        match (&result, case.refused) {
            (Ok(decoded), None) => assert!(!decoded.events.is_empty(), "{}", case.name),
            (Err(IngestError::Invalid(message)), Some(expected)) => {
                assert!(message.contains(expected), "{}: {message}", case.name);
            }
            (other, _) => panic!(
                "{}: {:?}",
                case.name,
                other.as_ref().map(|d| d.events.len())
            ),
        }
        drop(result);
        let cost = (body.len() + peak) as f64;
        let share = cost / bound as f64;
        report.push(format!(
            "{:<60} {:>9} {:>11} {:>7.2}x {:>8.2}",
            case.name,
            body.len(),
            peak,
            cost / body.len() as f64,
            share
        ));
        println!("{}", report.last().unwrap());
        if share > 1.0 {
            over.push(case.name.clone());
        }
        match worst.iter_mut().find(|(d, _, _)| *d == case.decoder) {
            Some(w) if w.1 < share => *w = (case.decoder, share, case.name),
            Some(_) => {}
            None => worst.push((case.decoder, share, case.name)),
        }
    }
    for (decoder, share, name) in &worst {
        report.push(format!(
            "closest to its bound, {}: {name} at {share:.2} of it",
            decoder.name()
        ));
        println!("{}", report.last().unwrap());
    }
    assert!(
        over.is_empty(),
        "over their bound: {over:?}\n{}",
        report.join("\n")
    );
}
