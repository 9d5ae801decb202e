//! Peak memory of decoding the worst 5 MiB OTLP requests we could build, counted by a global
//! allocator: each must stay under [`MAX_MULTIPLE`] times its body. This is the only test in
//! this binary, so no other test allocates while it measures.
#![allow(clippy::unwrap_used, missing_docs)]

use agentvista_ingest::{Format, IngestError, MAX_OTLP_EVENTS, Signal, decode_otlp};
use chrono::DateTime;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use peak_alloc::PeakAlloc;
use prost::Message;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// The body limit of the OTLP endpoints.
const BODY: usize = 5 * 1024 * 1024;

/// Most bytes allocated while decoding (the result included), as a multiple of the body's
/// size. Measured on 2026-11-28 (this allocator counts a `realloc` as a new block plus the old
/// one, the most it can cost): the worst is an array of 2.5 million empty values at 39x
/// (protobuf) and 33x (JSON), almost all of it the generated types' own `Vec<AnyValue>`
/// (2 bytes on the wire, 32 in memory, doubled while the vector grows), then nested kvlists and
/// tiny attributes at about 20x; a shared 1 MiB resource, unit or description costs 3-12x, and
/// a request over the event cap is refused by a scan that allocates under 1 KiB. So a 5 MiB
/// request costs at most about 240 MiB while it is decoded.
const MAX_MULTIPLE: f64 = 48.0;

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

fn traces(resource: Option<Resource>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource,
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs(resource: Option<Resource>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource,
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A kvlist nested `depth` deep around `leaf`, with `width` empty siblings at each level.
fn nested(depth: usize, width: usize, leaf: AnyValue) -> AnyValue {
    (0..depth).fold(leaf, |inner, _| {
        let mut values: Vec<KeyValue> = (0..width).map(|w| kv(format!("{w:x}"), None)).collect();
        values.push(kv("k", Some(inner)));
        AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList { values })),
        }
    })
}

fn encode<M: Message + serde::Serialize>(request: &M, format: Format) -> Vec<u8> {
    match format {
        Format::Protobuf => request.encode_to_vec(),
        Format::Json => serde_json::to_vec(request).unwrap(),
    }
}

/// A request of nearly `BODY` bytes: `n` is scaled until the encoding is 95–100% of it.
fn fit<M: Message + serde::Serialize>(format: Format, build: impl Fn(usize) -> M) -> Vec<u8> {
    let mut n = 1000;
    for _ in 0..12 {
        let body = encode(&build(n), format);
        if body.len() <= BODY && body.len() > BODY * 95 / 100 {
            return body;
        }
        let target = BODY as f64 * 0.98;
        n = ((n as f64) * target / body.len() as f64).max(1.0) as usize;
    }
    panic!("no request of about {BODY} bytes");
}

struct Case {
    name: String,
    /// `None` for the batch endpoint.
    signal: Option<Signal>,
    format: Format,
    body: Box<dyn Fn() -> Vec<u8>>,
    accepted: bool,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for format in [Format::Protobuf, Format::Json] {
        let f = match format {
            Format::Protobuf => "protobuf",
            Format::Json => "json",
        };
        let mut case = |name: &str, signal, body: Box<dyn Fn() -> Vec<u8>>, accepted| {
            cases.push(Case {
                name: format!("{name} ({f})"),
                signal: Some(signal),
                format,
                body,
                accepted,
            });
        };
        // (a) A 1 MiB resource and as many spans as fit: empty ones, then minimal valid ones.
        case(
            "a: 1 MiB resource + empty spans",
            Signal::Traces,
            Box::new(move || {
                match format {
                    Format::Protobuf => {
                        fit(format, |n| traces(big_resource(), vec![Span::default(); n]))
                    }
                    // serde writes every field of a default span; `{}` is the smallest one.
                    Format::Json => {
                        let head = format!(
                            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"big","value":{{"stringValue":"{}"}}}}]}},"scopeSpans":[{{"spans":["#,
                            "r".repeat(MIB)
                        );
                        let n = (BODY - head.len() - 10) / 3;
                        format!("{head}{}{{}}]}}]}}]}}", "{},".repeat(n - 1)).into_bytes()
                    }
                }
            }),
            false,
        );
        case(
            "a: 1 MiB resource + minimal spans",
            Signal::Traces,
            Box::new(move || {
                fit(format, |n| {
                    traces(big_resource(), (0..n).map(|i| span(i, vec![])).collect())
                })
            }),
            false,
        );
        // (a') Empty spans cut off before their end: malformed, but only at the last byte.
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
            false,
        );
        // (b) The same with exactly the most spans a request may hold.
        case(
            "b: 1 MiB resource + 10000 spans",
            Signal::Traces,
            Box::new(move || {
                encode(
                    &traces(
                        big_resource(),
                        (0..MAX_OTLP_EVENTS).map(|i| span(i, vec![])).collect(),
                    ),
                    format,
                )
            }),
            true,
        );
        // (c) 10,000 spans, each with as many tiny distinct attributes as fit.
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
            true,
        );
        // (c') One attribute: an array of empty values, the smallest value there is.
        case(
            "c': array of empty values",
            Signal::Traces,
            Box::new(move || {
                fit(format, |n| {
                    let array = AnyValue {
                        value: Some(any_value::Value::ArrayValue(ArrayValue {
                            values: vec![AnyValue::default(); n * 10],
                        })),
                    };
                    traces(None, vec![span(0, vec![kv("a", Some(array))])])
                })
            }),
            true,
        );
        // (d) A 1 MiB description shared by 10,000 points.
        case(
            "d: 1 MiB description + 10000 points",
            Signal::Metrics,
            Box::new(move || {
                encode(
                    &ExportMetricsServiceRequest {
                        resource_metrics: vec![ResourceMetrics {
                            resource: big_resource(),
                            scope_metrics: vec![ScopeMetrics {
                                metrics: vec![Metric {
                                    name: "m".into(),
                                    description: "d".repeat(MIB),
                                    unit: "u".repeat(MIB),
                                    data: Some(metric::Data::Gauge(Gauge {
                                        data_points: vec![
                                            NumberDataPoint {
                                                value: Some(number_data_point::Value::AsDouble(
                                                    1.5
                                                )),
                                                time_unix_nano: 1,
                                                ..Default::default()
                                            };
                                            MAX_OTLP_EVENTS
                                        ],
                                    })),
                                    ..Default::default()
                                }],
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                    },
                    format,
                )
            }),
            true,
        );
        // (e) Logs: a 1 MiB resource, 10,000 records whose bodies fill the rest.
        case(
            "e: 1 MiB resource + 10000 log records",
            Signal::Logs,
            Box::new(move || {
                fit(format, |n| {
                    let text = "l".repeat(n / 100);
                    logs(
                        big_resource(),
                        vec![
                            LogRecord {
                                body: string(text),
                                ..Default::default()
                            };
                            MAX_OTLP_EVENTS
                        ],
                    )
                })
            }),
            true,
        );
        // (f) Deeply nested kvlists (as deep as each format's nesting limit lets through).
        let depth = match format {
            Format::Protobuf => 29,
            Format::Json => 28,
        };
        case(
            "f: nested kvlists",
            Signal::Logs,
            Box::new(move || {
                fit(format, |n| {
                    let record = LogRecord {
                        body: Some(nested(depth, n / 2000, AnyValue::default())),
                        ..Default::default()
                    };
                    logs(None, vec![record; 1000])
                })
            }),
            true,
        );
    }
    // (g) The batch endpoint, for comparison: one event whose body is an array of empty arrays.
    cases.push(Case {
        name: "g: batch body of empty arrays (json)".into(),
        signal: None,
        format: Format::Json,
        body: Box::new(|| {
            let head = r#"{"batch":[{"type":"span","trace_id":"t","timestamp":"2026-11-28T00:00:00Z","body":{"a":["#;
            let n = (BODY - head.len() - 10) / 3;
            format!("{head}{}[]]}}}}]}}", "[],".repeat(n - 1)).into_bytes()
        }),
        accepted: true,
    });
    cases
}

#[test]
fn the_worst_5_mib_requests_stay_under_a_small_multiple_of_their_size() {
    let mut report = Vec::new();
    let mut worst: f64 = 0.0;
    for case in cases() {
        let body = (case.body)();
        let before = ALLOCATOR.current_usage();
        ALLOCATOR.reset_peak_usage();
        let result = match case.signal {
            Some(signal) => decode_otlp(signal, case.format, &body, DateTime::UNIX_EPOCH),
            None => agentvista_ingest::decode_batch(&body),
        };
        let peak = ALLOCATOR.peak_usage().saturating_sub(before);
        match (&result, case.accepted) {
            (Ok(decoded), true) => assert!(!decoded.events.is_empty(), "{}", case.name),
            (Err(IngestError::Invalid(message)), false) => {
                assert!(
                    message.contains("at most 10000") || message.starts_with("body: "),
                    "{}: {message}",
                    case.name
                );
            }
            (other, _) => panic!(
                "{}: {:?}",
                case.name,
                other.as_ref().map(|d| d.events.len())
            ),
        }
        drop(result);
        let multiple = peak as f64 / body.len() as f64;
        worst = worst.max(multiple);
        report.push(format!(
            "{:<45} body {:>8} B  peak {:>10} B  {:>6.2}x",
            case.name,
            body.len(),
            peak,
            multiple
        ));
        eprintln!("{}", report.last().unwrap());
    }
    // Shown with --nocapture; the numbers in MAX_MULTIPLE's comment and the README come from here.
    println!("{}", report.join("\n"));
    assert!(
        worst <= MAX_MULTIPLE,
        "worst {worst:.2}x over {MAX_MULTIPLE}x:\n{}",
        report.join("\n")
    );
}
