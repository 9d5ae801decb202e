//! `agentvista-ingest` on real payloads: the OpenTelemetry project's own OTLP/JSON examples
//! (unchanged, in `tests/fixtures/`), and protobuf bodies encoded by the `opentelemetry-proto`
//! crate's generated types — the encoder OpenTelemetry's Rust exporters use.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;

use agentvista_ingest::{
    ContentEncoding, Event, EventKind, Format, IngestError, Signal, decode_otlp, export_response,
};
use chrono::{DateTime, TimeZone, Utc};
use flate2::{Compression, write::GzEncoder};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use proptest::prelude::*;
use prost::Message;

const TRACE: &[u8] = include_bytes!("fixtures/trace.json");
const LOGS: &[u8] = include_bytes!("fixtures/logs.json");
const METRICS: &[u8] = include_bytes!("fixtures/metrics.json");

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn json(signal: Signal, body: &[u8]) -> Result<Vec<Event>, IngestError> {
    decode_otlp(signal, Format::Json, body, received())
}

#[test]
fn the_official_trace_example_is_one_span_with_lowercase_ids() {
    let events = json(Signal::Traces, TRACE).unwrap();
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
fn the_official_logs_example_is_one_record() {
    let events = json(Signal::Logs, LOGS).unwrap();
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
    let events = json(Signal::Metrics, METRICS).unwrap();
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
    )
    .unwrap();
    let as_json = serde_json::to_vec(&request).unwrap();
    assert_eq!(json(Signal::Traces, &as_json).unwrap(), protobuf);
    assert_eq!(protobuf.len(), 3);
    assert_eq!(
        protobuf[2].id.as_deref(),
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
        let from_protobuf = decode_otlp(signal, Format::Protobuf, &protobuf, received()).unwrap();
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
        decode_otlp(Signal::Traces, Format::Protobuf, &inflated, received())
            .unwrap()
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
        decode_otlp(Signal::Traces, Format::Protobuf, b"", received())
            .unwrap()
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
                let _ = decode_otlp(signal, format, &bytes, received());
            }
        }
        let _ = agentvista_ingest::decode_batch(&bytes);
        let _ = ContentEncoding::Gzip.decode(&bytes, 4096);
    }
}
