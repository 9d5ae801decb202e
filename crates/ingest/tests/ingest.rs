//! `agentvista-ingest` on real payloads: the OpenTelemetry project's own OTLP/JSON examples
//! (unchanged, in `tests/fixtures/`), and protobuf bodies encoded by the `opentelemetry-proto`
//! crate's generated types — the encoder OpenTelemetry's Rust exporters use.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;

use agentvista_ingest::{
    Caps, ContentEncoding, Decoded, EventKind, Format, IngestError, Signal, Usage, decode_otlp,
    export_response, stored_span_fields,
};
use chrono::{DateTime, TimeZone, Utc};
use flate2::{Compression, write::GzEncoder};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use proptest::prelude::*;
use prost::Message;

const TRACE: &[u8] = include_bytes!("fixtures/trace.json");
const LOGS: &[u8] = include_bytes!("fixtures/logs.json");
const METRICS: &[u8] = include_bytes!("fixtures/metrics.json");

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn json(signal: Signal, body: &[u8]) -> Result<Decoded, IngestError> {
    decode_otlp(signal, Format::Json, body, received(), &Caps::default())
}

/// An event as the API shows it: its body merged with its contexts.
#[derive(Debug, PartialEq)]
struct Shown {
    id: Option<String>,
    kind: EventKind,
    trace_id: Option<String>,
    name: Option<String>,
    timestamp: DateTime<Utc>,
    body: Option<serde_json::Value>,
}

/// The events as the API shows them.
fn merged(decoded: &Decoded) -> Vec<Shown> {
    decoded
        .events
        .iter()
        .enumerate()
        .map(|(i, event)| Shown {
            id: event.id.clone(),
            kind: event.kind,
            trace_id: event.trace_id.clone(),
            name: event.name.clone(),
            timestamp: event.timestamp,
            body: decoded.body_of(i),
        })
        .collect()
}

#[test]
fn the_official_trace_example_is_one_span_with_lowercase_ids() {
    let events = merged(&json(Signal::Traces, TRACE).unwrap());
    assert_eq!(events.len(), 1);
    let span = &events[0];
    assert_eq!(span.kind, EventKind::Span);
    assert_eq!(
        span.id.as_deref(),
        Some("5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174")
    );
    assert_eq!(
        span.trace_id.as_deref(),
        Some("5b8efff798038103d269b633813fc60c")
    );
    assert_eq!(span.name.as_deref(), Some("I'm a server span"));
    assert_eq!(
        span.timestamp,
        DateTime::from_timestamp_nanos(1_544_712_660_000_000_000)
    );
    let body = span.body.as_ref().unwrap();
    assert_eq!(body["parent_span_id"], "eee19b7ec3c1b173");
    assert_eq!(body["attributes"]["my.span.attr"], "some value");
    assert_eq!(body["resource"]["service.name"], "my.service");
}

#[test]
fn an_otlp_span_keeps_its_parent_end_status_model_and_usage() {
    let decoded = json(Signal::Traces, TRACE).unwrap();
    let span = decoded.events[0].span.as_deref().unwrap();
    assert_eq!(
        span.parent_id.as_deref(),
        Some("5b8efff798038103d269b633813fc60c-eee19b7ec3c1b173")
    );
    assert_eq!(
        span.end_time,
        Some(DateTime::from_timestamp_nanos(1_544_712_661_000_000_000))
    );
    assert_eq!(
        (span.status, span.model.as_ref(), span.usage),
        (None, None, None)
    );

    let mut request = request(2);
    let spans = &mut request.resource_spans[0].scope_spans[0].spans;
    spans[0].end_time_unix_nano = spans[0].start_time_unix_nano + 1_500_000;
    spans[0].status = Some(Status {
        code: 2,
        message: "rate limited".into(),
    });
    spans[0].attributes.extend([
        kv("gen_ai.request.model", "gpt-4o"),
        kv("gen_ai.response.model", "gpt-4o-2024-08-06"),
        int_kv("gen_ai.usage.input_tokens", 12),
        int_kv("gen_ai.usage.output_tokens", 34),
    ]);
    spans[1].parent_span_id = spans[0].span_id.clone();
    spans[1].end_time_unix_nano = spans[1].start_time_unix_nano - 1;
    spans[1].status = Some(Status {
        code: 1,
        message: String::new(),
    });
    let decoded = decode_otlp(
        Signal::Traces,
        Format::Protobuf,
        &request.encode_to_vec(),
        received(),
        &Caps::default(),
    )
    .unwrap();
    let (first, second) = (&decoded.events[0], &decoded.events[1]);
    let (first_span, second_span) = (
        first.span.as_deref().unwrap(),
        second.span.as_deref().unwrap(),
    );
    assert_eq!(first_span.status, Some(agentvista_ingest::Status::Error));
    assert_eq!(first_span.status_message.as_deref(), Some("rate limited"));
    assert_eq!(first_span.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        first_span.usage,
        Some(Usage {
            input_tokens: 12,
            output_tokens: 34
        })
    );
    assert_eq!(
        (first_span.end_time.unwrap() - first.timestamp).num_microseconds(),
        Some(1500)
    );
    assert_eq!(
        second_span.parent_id, first.id,
        "the parent is named by its event id"
    );
    assert_eq!(
        second_span.end_time, None,
        "an end before the start is no end"
    );
    assert_eq!(second_span.status, Some(agentvista_ingest::Status::Ok));
    // Spans stored before these fields were kept apart are read back by the same mapping.
    for (i, event) in decoded.events.iter().enumerate() {
        let body = decoded.body_of(i).unwrap();
        let trace_id = event.trace_id.as_deref().unwrap();
        assert_eq!(
            stored_span_fields(trace_id, &body).boxed(),
            event.span,
            "span {i}"
        );
    }
}

fn int_kv(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

#[test]
fn the_official_logs_example_is_one_record() {
    let events = merged(&json(Signal::Logs, LOGS).unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Log);
    assert_eq!(events[0].id, None, "log records have no id");
    assert_eq!(
        events[0].trace_id.as_deref(),
        Some("5b8efff798038103d269b633813fc60c")
    );
}

#[test]
fn the_official_metrics_example_is_three_data_points() {
    let events = merged(&json(Signal::Metrics, METRICS).unwrap());
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e.kind == EventKind::Metric && e.id.is_none())
    );
    let names: Vec<_> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["my.counter", "my.gauge", "my.histogram"]);
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn request(spans: usize) -> ExportTraceServiceRequest {
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: vec![0xab; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("span {i}"),
            start_time_unix_nano: 1_800_000_000_000_000_000 + i as u64,
            attributes: vec![kv("gen_ai.system", "openai")],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn protobuf_and_json_encodings_of_one_request_give_the_same_events() {
    let request = request(3);
    let protobuf = decode_otlp(
        Signal::Traces,
        Format::Protobuf,
        &request.encode_to_vec(),
        received(),
        &Caps::default(),
    )
    .unwrap();
    let as_json = serde_json::to_vec(&request).unwrap();
    assert_eq!(json(Signal::Traces, &as_json).unwrap(), protobuf);
    assert_eq!(protobuf.events.len(), 3);
    assert_eq!(
        protobuf.events[2].id.as_deref(),
        Some("abababababababababababababababab-0000000000000003")
    );
}

#[test]
fn fixtures_survive_a_trip_through_protobuf() {
    for (signal, fixture) in [
        (Signal::Traces, TRACE),
        (Signal::Logs, LOGS),
        (Signal::Metrics, METRICS),
    ] {
        let protobuf = match signal {
            Signal::Traces => serde_json::from_slice::<ExportTraceServiceRequest>(fixture)
                .unwrap()
                .encode_to_vec(),
            Signal::Logs => serde_json::from_slice::<ExportLogsServiceRequest>(fixture)
                .unwrap()
                .encode_to_vec(),
            Signal::Metrics => serde_json::from_slice::<ExportMetricsServiceRequest>(fixture)
                .unwrap()
                .encode_to_vec(),
        };
        let from_protobuf = decode_otlp(
            signal,
            Format::Protobuf,
            &protobuf,
            received(),
            &Caps::default(),
        )
        .unwrap();
        assert_eq!(from_protobuf, json(signal, fixture).unwrap(), "{signal:?}");
    }
}

#[test]
fn a_gzipped_protobuf_body_decodes_and_a_bomb_is_too_large() {
    let body = request(50).encode_to_vec();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&body).unwrap();
    let gz = gz.finish().unwrap();
    let inflated = ContentEncoding::parse(Some("gzip"))
        .unwrap()
        .decode(&gz, 1 << 20)
        .unwrap();
    assert_eq!(
        decode_otlp(
            Signal::Traces,
            Format::Protobuf,
            &inflated,
            received(),
            &Caps::default()
        )
        .unwrap()
        .events
        .len(),
        50
    );
    assert_eq!(
        ContentEncoding::Gzip.decode(&gz, body.len() - 1),
        Err(IngestError::TooLarge {
            limit: body.len() - 1
        })
    );
}

#[test]
fn malformed_bodies_and_wrong_types_are_refused_clearly() {
    let err = decode_otlp(
        Signal::Traces,
        Format::Protobuf,
        b"\xff\xff\xff garbage",
        received(),
        &Caps::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("body: not a valid OTLP protobuf message"),
        "{err}"
    );
    let err = json(Signal::Traces, br#"{"resourceSpans": 5}"#).unwrap_err();
    assert!(err.to_string().starts_with("resourceSpans:"), "{err}");
    let mut bad = request(2);
    bad.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![1; 3];
    let err = decode_otlp(
        Signal::Traces,
        Format::Protobuf,
        &bad.encode_to_vec(),
        received(),
        &Caps::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "resourceSpans[0].scopeSpans[0].spans[1].traceId: must be 16 bytes"
    );
    for content_type in [None, Some("text/plain"), Some("application/grpc")] {
        assert!(matches!(
            Format::from_content_type(content_type),
            Err(IngestError::UnsupportedMediaType(_))
        ));
    }
    assert_eq!(
        Format::from_content_type(Some("application/json; charset=utf-8")),
        Ok(Format::Json)
    );
    assert_eq!(
        Format::from_content_type(Some("Application/X-Protobuf")),
        Ok(Format::Protobuf)
    );
}

#[test]
fn an_empty_export_has_no_events_and_the_answer_decodes() {
    assert!(
        decode_otlp(
            Signal::Traces,
            Format::Protobuf,
            b"",
            received(),
            &Caps::default()
        )
        .unwrap()
        .events
        .is_empty()
    );
    let answer = export_response(Signal::Traces, Format::Protobuf);
    assert_eq!(
        ExportTraceServiceResponse::decode(&answer[..]).unwrap(),
        ExportTraceServiceResponse::default()
    );
    assert_eq!(export_response(Signal::Logs, Format::Json), b"{}");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
            for format in [Format::Protobuf, Format::Json] {
                let _ = decode_otlp(signal, format, &bytes, received(), &Caps::default());
            }
        }
        let _ = agentvista_ingest::decode_batch(&bytes, &Caps::default());
        let _ = ContentEncoding::Gzip.decode(&bytes, 4096);
    }
}

#[test]
fn shared_fields_are_held_once_and_merged_on_reading() {
    let mut req = request(3);
    req.resource_spans[0].resource = Some(Resource {
        attributes: vec![kv("service.name", "svc")],
        ..Default::default()
    });
    let decoded = decode_otlp(
        Signal::Traces,
        Format::Protobuf,
        &req.encode_to_vec(),
        received(),
        &Caps::default(),
    )
    .unwrap();
    // One resource context, one scope context whose parent it is.
    assert_eq!(decoded.contexts.len(), 2);
    assert_eq!(decoded.contexts[0].parent, None);
    assert_eq!(decoded.contexts[1].parent, Some(0));
    for (i, event) in decoded.events.iter().enumerate() {
        assert_eq!(event.context, Some(1));
        let own: serde_json::Value =
            serde_json::from_str(event.body.as_ref().unwrap().get()).unwrap();
        assert!(own.get("resource").is_none() && own.get("scope").is_none());
        let body = decoded.body_of(i).unwrap();
        assert_eq!(body["resource"]["service.name"], "svc");
        assert_eq!(body["scope"], serde_json::Value::Null);
        assert_eq!(body["attributes"]["gen_ai.system"], "openai");
    }

    // Metrics: resource, scope, then one context per metric for its unit and description.
    let metrics = json(Signal::Metrics, METRICS).unwrap();
    for event in &metrics.events {
        let own: serde_json::Value =
            serde_json::from_str(event.body.as_ref().unwrap().get()).unwrap();
        assert!(own.get("unit").is_none() && own.get("description").is_none());
        let fields = |context: &agentvista_ingest::Context| -> serde_json::Value {
            serde_json::from_str(context.fields.get()).unwrap()
        };
        let metric = &metrics.contexts[event.context.unwrap()];
        let shared = fields(metric);
        assert!(shared.get("unit").is_some() && shared.get("description").is_some());
        let scope = &metrics.contexts[metric.parent.unwrap()];
        assert!(fields(scope).get("scope").is_some());
        let resource = &metrics.contexts[scope.parent.unwrap()];
        assert!(fields(resource).get("resource").is_some());
        assert_eq!(resource.parent, None);
    }
    let merged = merged(&metrics);
    assert_eq!(merged[0].body.as_ref().unwrap()["unit"], "1");
    assert_eq!(merged[0].body.as_ref().unwrap()["metric_type"], "sum");
    assert_eq!(
        merged[0].body.as_ref().unwrap()["resource"]["service.name"],
        "my.service"
    );
}

fn empty_spans(n: usize) -> ExportTraceServiceRequest {
    let mut req = request(0);
    req.resource_spans[0].scope_spans[0].spans = vec![Span::default(); n];
    req
}

#[test]
fn an_otlp_request_holds_at_most_10000_events() {
    assert_eq!(agentvista_ingest::MAX_OTLP_EVENTS, 10_000);
    let full = request(10_000);
    let decoded = decode_otlp(
        Signal::Traces,
        Format::Protobuf,
        &full.encode_to_vec(),
        received(),
        &Caps::default(),
    )
    .unwrap();
    assert_eq!(decoded.events.len(), 10_000);
    for format in [Format::Protobuf, Format::Json] {
        let over = request(10_001);
        let body = match format {
            Format::Protobuf => over.encode_to_vec(),
            Format::Json => serde_json::to_vec(&over).unwrap(),
        };
        assert_eq!(
            decode_otlp(Signal::Traces, format, &body, received(), &Caps::default()),
            Err(IngestError::Invalid(
                "resourceSpans: at most 10000 spans per request, got 10001".into()
            )),
            "{format:?}"
        );
    }
    // Spread over several scope groups, and empty spans: the count comes first.
    let mut split = empty_spans(6_000);
    split.resource_spans[0]
        .scope_spans
        .push(empty_spans(6_000).resource_spans[0].scope_spans[0].clone());
    let err = decode_otlp(
        Signal::Traces,
        Format::Protobuf,
        &split.encode_to_vec(),
        received(),
        &Caps::default(),
    )
    .unwrap_err();
    assert!(err.to_string().ends_with("got 12000"), "{err}");

    // Logs and metrics name their own unit.
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 10_001],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let err = decode_otlp(
        Signal::Logs,
        Format::Json,
        &serde_json::to_vec(&logs).unwrap(),
        received(),
        &Caps::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "resourceLogs: at most 10000 log records per request, got 10001"
    );
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "m".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint::default(); 10_001],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    for body in [
        metrics.encode_to_vec(),
        serde_json::to_vec(&metrics).unwrap(),
    ] {
        let format = if body.first() == Some(&b'{') {
            Format::Json
        } else {
            Format::Protobuf
        };
        let err =
            decode_otlp(Signal::Metrics, format, &body, received(), &Caps::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resourceMetrics: at most 10000 data points per request, got 10001"
        );
    }
    // Empty groups are bounded too: each costs memory once decoded.
    let groups = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans::default(); 10_001],
    };
    let err = decode_otlp(
        Signal::Traces,
        Format::Protobuf,
        &groups.encode_to_vec(),
        received(),
        &Caps::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "resourceSpans: at most 10000 resource and scope entries per request, got 10001"
    );
}

#[test]
fn a_nul_character_anywhere_is_refused_with_its_path() {
    fn refused(signal: Signal, body: Vec<u8>, format: Format) -> String {
        match decode_otlp(signal, format, &body, received(), &Caps::default()) {
            Err(IngestError::Invalid(message)) => message,
            other => panic!("{other:?}"),
        }
    }
    let both = |req: &ExportTraceServiceRequest, expected: &str| {
        assert_eq!(
            refused(Signal::Traces, req.encode_to_vec(), Format::Protobuf),
            expected
        );
        assert_eq!(
            refused(
                Signal::Traces,
                serde_json::to_vec(req).unwrap(),
                Format::Json
            ),
            expected
        );
    };
    let mut req = request(3);
    req.resource_spans[0].scope_spans[0].spans[2].name = "a\0b".into();
    both(
        &req,
        "resourceSpans[0].scopeSpans[0].spans[2].name: must not contain NUL characters",
    );
    let mut req = request(1);
    req.resource_spans[0].scope_spans[0].spans[0].attributes = vec![kv("ok", "x"), kv("k\0", "v")];
    both(
        &req,
        "resourceSpans[0].scopeSpans[0].spans[0].attributes[1].key: must not contain NUL characters",
    );
    let mut req = request(1);
    req.resource_spans[0].scope_spans[0].spans[0].attributes = vec![KeyValue {
        key: "list".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv("inner", "\0")],
            })),
        }),
        ..Default::default()
    }];
    both(
        &req,
        "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.kvlistValue.values[0].value: must not contain NUL characters",
    );
    let mut req = request(1);
    req.resource_spans[0].resource = Some(Resource {
        attributes: vec![kv("service.name", "s\0")],
        ..Default::default()
    });
    both(
        &req,
        "resourceSpans[0].resource.attributes[0].value: must not contain NUL characters",
    );
    let mut req = request(1);
    req.resource_spans[0].scope_spans[0].scope = Some(InstrumentationScope {
        name: "\0".into(),
        ..Default::default()
    });
    both(
        &req,
        "resourceSpans[0].scopeSpans[0].scope.name: must not contain NUL characters",
    );

    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("x\0".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_eq!(
        refused(Signal::Logs, logs.encode_to_vec(), Format::Protobuf),
        "resourceLogs[0].scopeLogs[0].logRecords[0].body: must not contain NUL characters"
    );
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "m".into(),
                    description: "\0".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_eq!(
        refused(Signal::Metrics, metrics.encode_to_vec(), Format::Protobuf),
        "resourceMetrics[0].scopeMetrics[0].metrics[0].description: must not contain NUL characters"
    );
    // JSON escapes reach the same check.
    assert_eq!(
        refused(
            Signal::Logs,
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityText":"a\u0000"}]}]}]}"#
                .to_vec(),
            Format::Json
        ),
        "resourceLogs[0].scopeLogs[0].logRecords[0].severityText: must not contain NUL characters"
    );
}

#[test]
fn a_nul_character_in_a_batch_is_refused_with_its_path() {
    let item = |extra: &str| {
        let trace = if extra.contains("trace_id") {
            ""
        } else {
            r#","trace_id":"t1""#
        };
        format!(r#"{{"type":"span","timestamp":"2026-11-27T12:00:00Z"{trace}{extra}}}"#)
    };
    let cases = [
        (r#","id":"a\u0000""#, "batch[1].id"),
        (r#","trace_id":"\u0000""#, "batch[1].trace_id"),
        (r#","name":"n\u0000""#, "batch[1].name"),
        (r#","body":{"x":"\u0000"}"#, "batch[1].body.x"),
        (
            r#","body":{"a":{"b":[1,"ok","\u0000"]}}"#,
            "batch[1].body.a.b[2]",
        ),
        (r#","body":{"k\u0000":1}"#, "batch[1].body.k\\u0000"),
    ];
    for (extra, path) in cases {
        let body = format!(r#"{{"batch":[{},{}]}}"#, item(""), item(extra));
        assert_eq!(
            agentvista_ingest::decode_batch(body.as_bytes(), &Caps::default()),
            Err(IngestError::Invalid(format!(
                "{path}: must not contain NUL characters"
            ))),
            "{extra}"
        );
    }
    assert!(agentvista_ingest::contains_nul(
        &serde_json::json!({"a": ["\u{0}"]})
    ));
    assert!(agentvista_ingest::contains_nul(
        &serde_json::json!({"\u{0}": 1})
    ));
    assert!(!agentvista_ingest::contains_nul(
        &serde_json::json!({"a": ["\\u0000", 0]})
    ));
}

/// `request` in both formats.
fn encodings<M: Message + serde::Serialize>(request: &M) -> [(Format, Vec<u8>); 2] {
    [
        (Format::Protobuf, request.encode_to_vec()),
        (Format::Json, serde_json::to_vec(request).unwrap()),
    ]
}

/// Whether `signal`'s `request`, in both formats, is accepted under `caps` (`Ok`) or refused
/// with the same message in both (`Err`).
fn outcome<M: Message + serde::Serialize>(
    signal: Signal,
    request: &M,
    caps: &Caps,
) -> Result<(), String> {
    let [(_, protobuf), (_, json)] = encodings(request);
    let from_protobuf = decode_otlp(signal, Format::Protobuf, &protobuf, received(), caps);
    let from_json = decode_otlp(signal, Format::Json, &json, received(), caps);
    match (from_protobuf, from_json) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            Ok(())
        }
        (Err(IngestError::Invalid(a)), Err(IngestError::Invalid(b))) => {
            assert_eq!(a, b, "protobuf and JSON differ");
            Err(a)
        }
        (a, b) => panic!("protobuf {:?}, JSON {:?}", a.map(|_| ()), b.map(|_| ())),
    }
}

fn array(values: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
    }
}

fn kvlist(values: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList { values })),
    }
}

fn attribute(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
        ..Default::default()
    }
}

/// One span whose attributes are `attributes`.
fn with_attributes(attributes: Vec<KeyValue>) -> ExportTraceServiceRequest {
    let mut req = request(1);
    req.resource_spans[0].scope_spans[0].spans[0].attributes = attributes;
    req
}

const SPAN: &str = "resourceSpans[0].scopeSpans[0].spans[0]";

#[test]
fn an_otlp_request_holds_at_most_100000_attribute_values_counted_before_decoding() {
    assert_eq!(agentvista_ingest::MAX_ATTRIBUTE_VALUES, 100_000);
    // Ten attributes, each a KeyValue and its AnyValue around 9,998 empty values.
    let build = |extra: usize| {
        with_attributes(
            (0..10)
                .map(|k| {
                    let n = 9_998 + usize::from(k == 0) * extra;
                    attribute(&format!("a{k}"), array(vec![AnyValue::default(); n]))
                })
                .collect(),
        )
    };
    assert_eq!(outcome(Signal::Traces, &build(0), &Caps::default()), Ok(()));
    assert_eq!(
        outcome(Signal::Traces, &build(1), &Caps::default()),
        Err("resourceSpans: at most 100000 attribute values per request, got 100001".into())
    );
    // Log bodies and the KeyValues of kvlists count too: 10 a record, the body and 9 keys.
    let record = |keys: usize| LogRecord {
        body: Some(kvlist(vec![KeyValue::default(); keys])),
        ..Default::default()
    };
    let mut logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record(9); 10_000],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_eq!(outcome(Signal::Logs, &logs, &Caps::default()), Ok(()));
    logs.resource_logs[0].scope_logs[0].log_records[5] = record(10);
    assert_eq!(
        outcome(Signal::Logs, &logs, &Caps::default()),
        Err("resourceLogs: at most 100000 attribute values per request, got 100001".into())
    );
}

#[test]
fn an_otlp_request_holds_at_most_50000_nested_entries_counted_before_decoding() {
    assert_eq!(agentvista_ingest::MAX_NESTED_ENTRIES, 50_000);
    let message = |signal: &str, got: usize| {
        format!(
            "{signal}: at most 50000 nested entries (span events and links, exemplars, \
             quantiles, histogram buckets and bounds, entity references and their keys) per \
             request, got {got}"
        )
    };
    // Span events and links.
    let spans = |extra: usize| {
        let mut req = request(5);
        for (i, span) in req.resource_spans[0].scope_spans[0]
            .spans
            .iter_mut()
            .enumerate()
        {
            span.events = vec![Default::default(); 9_999 + usize::from(i == 4) * extra];
            span.links = vec![Default::default(); 1];
        }
        req
    };
    assert_eq!(outcome(Signal::Traces, &spans(0), &Caps::default()), Ok(()));
    assert_eq!(
        outcome(Signal::Traces, &spans(1), &Caps::default()),
        Err(message("resourceSpans", 50_001))
    );
    // Histogram buckets (packed on the wire) and bounds.
    let histogram = |buckets: usize, bounds: usize| ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "h".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            bucket_counts: vec![7; buckets],
                            explicit_bounds: vec![1.5; bounds],
                            ..Default::default()
                        }],
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_eq!(
        outcome(
            Signal::Metrics,
            &histogram(25_000, 25_000),
            &Caps::default()
        ),
        Ok(())
    );
    assert_eq!(
        outcome(
            Signal::Metrics,
            &histogram(25_001, 25_000),
            &Caps::default()
        ),
        Err(message("resourceMetrics", 50_001))
    );
}

#[test]
fn attribute_values_nest_at_most_32_deep() {
    // `levels` arrays around a string: the attribute's value is level 1, the string
    // `levels + 1`.
    let nested = |levels: usize| {
        let leaf = AnyValue {
            value: Some(any_value::Value::StringValue("x".into())),
        };
        with_attributes(vec![attribute(
            "deep",
            (0..levels).fold(leaf, |inner, _| array(vec![inner])),
        )])
    };
    assert_eq!(
        outcome(Signal::Traces, &nested(31), &Caps::default()),
        Ok(())
    );
    assert_eq!(
        outcome(Signal::Traces, &nested(32), &Caps::default()),
        Err(format!(
            "{SPAN}.attributes[0].value{}: nested deeper than 32 levels",
            ".arrayValue.values[0]".repeat(32)
        ))
    );
    let kvlists = |levels: usize| {
        (0..levels).fold(AnyValue::default(), |inner, _| {
            kvlist(vec![KeyValue::default(), attribute("k", inner)])
        })
    };
    let record = |levels: usize| ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(kvlists(levels)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    // Protobuf only: JSON spends 4 levels of its parser's 128 on each kvlist level.
    let protobuf = |levels: usize| {
        decode_otlp(
            Signal::Logs,
            Format::Protobuf,
            &record(levels).encode_to_vec(),
            received(),
            &Caps::default(),
        )
        .map(|_| ())
    };
    assert_eq!(protobuf(31), Ok(()));
    assert_eq!(
        protobuf(32),
        Err(IngestError::Invalid(format!(
            "resourceLogs[0].scopeLogs[0].logRecords[0].body{}: nested deeper than 32 levels",
            ".kvlistValue.values[1].value".repeat(32)
        )))
    );
}

#[test]
fn lists_hold_at_most_10000_elements() {
    fn keys(n: usize) -> Vec<KeyValue> {
        (0..n)
            .map(|k| attribute(&format!("{k}"), AnyValue::default()))
            .collect()
    }
    /// Attributes holding a list of `n` elements.
    type Build = fn(usize) -> Vec<KeyValue>;
    let cases: [(Build, String); 3] = [
        (
            |n| vec![attribute("a", array(vec![AnyValue::default(); n]))],
            format!("{SPAN}.attributes[0].value.arrayValue.values"),
        ),
        (
            |n| vec![KeyValue::default(), attribute("l", kvlist(keys(n)))],
            format!("{SPAN}.attributes[1].value.kvlistValue.values"),
        ),
        (keys, format!("{SPAN}.attributes")),
    ];
    for (build, path) in cases {
        assert_eq!(
            outcome(
                Signal::Traces,
                &with_attributes(build(10_000)),
                &Caps::default()
            ),
            Ok(()),
            "{path}"
        );
        assert_eq!(
            outcome(
                Signal::Traces,
                &with_attributes(build(10_001)),
                &Caps::default()
            ),
            Err(format!("{path}: more than 10000 elements"))
        );
    }
}

#[test]
fn strings_and_bytes_are_at_most_max_attribute_bytes() {
    assert_eq!(Caps::default().max_attribute_bytes, 1_048_576);
    let string = |len: usize| {
        with_attributes(vec![
            kv("ok", "x"),
            attribute(
                "big",
                array(vec![
                    AnyValue::default(),
                    AnyValue {
                        value: Some(any_value::Value::StringValue("é".repeat(len / 2))),
                    },
                ]),
            ),
        ])
    };
    assert_eq!(
        outcome(Signal::Traces, &string(1_048_576), &Caps::default()),
        Ok(())
    );
    assert_eq!(
        outcome(Signal::Traces, &string(1_048_578), &Caps::default()),
        Err(format!(
            "{SPAN}.attributes[1].value.arrayValue.values[1]: longer than the limit of 1048576 bytes"
        ))
    );
    let caps = Caps {
        max_attribute_bytes: 16,
    };
    let bytes = |len: usize| {
        with_attributes(vec![attribute(
            "b",
            AnyValue {
                value: Some(any_value::Value::BytesValue(vec![0xab; len])),
            },
        )])
    };
    assert_eq!(outcome(Signal::Traces, &bytes(16), &caps), Ok(()));
    assert_eq!(
        outcome(Signal::Traces, &bytes(17), &caps),
        Err(format!(
            "{SPAN}.attributes[0].value: longer than the limit of 16 bytes"
        ))
    );
    let log = |len: usize| ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord::default(),
                    LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("l".repeat(len))),
                        }),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_eq!(outcome(Signal::Logs, &log(16), &caps), Ok(()));
    assert_eq!(
        outcome(Signal::Logs, &log(17), &caps),
        Err(
            "resourceLogs[0].scopeLogs[0].logRecords[1].body: longer than the limit of 16 bytes"
                .into()
        )
    );
}
