//! Ingestion end to end: the OpenTelemetry SDK's own OTLP/HTTP exporter, the monthly quota
//! under concurrent clients, and the spend cap.

use std::collections::HashMap;

use agentvista_quota::Period;
use chrono::Utc;
use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Db, Server, bearer};

/// Exports `spans` spans, in one trace, with the real SDK and exporter; returns the trace id.
/// Runs on a thread of its own: the SDK's simple processor blocks on the export.
fn export_spans(endpoint: String, key: String, spans: usize) -> String {
    std::thread::spawn(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_headers(HashMap::from([(
                "Authorization".to_owned(),
                format!("Bearer {key}"),
            )]))
            .build()
            .unwrap();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .build();
        let tracer = provider.tracer("agentvista-e2e");
        let root = tracer.start("agent run");
        let trace_id = root.span_context().trace_id().to_string();
        let cx = opentelemetry::Context::current_with_span(root);
        for i in 1..spans {
            let mut child = tracer.start_with_context(format!("llm call {i}"), &cx);
            child.set_attribute(opentelemetry::KeyValue::new("gen_ai.system", "openai"));
            child.end();
        }
        cx.span().end();
        drop(cx);
        let _ = provider.shutdown();
        trace_id
    })
    .join()
    .unwrap()
}

pub(crate) async fn the_opentelemetry_sdk_exports_spans_that_are_stored_and_counted(db: Db) {
    db.create_user("ada@example.com");
    let writer = db.create_key("ada@example.com", "sdk", "read,write");
    let reader = db.create_key("ada@example.com", "dashboard", "read");
    let server = Server::start(&db).await;
    let http = crate::harness::client();
    let endpoint = server.url("/otlp/v1/traces");

    let trace_id = export_spans(endpoint.clone(), writer.clone(), 4);
    let trace: Value = server
        .get_json(&http, &format!("/api/v1/traces/{trace_id}/"), &reader)
        .await;
    let events = trace["events"].as_array().unwrap();
    assert_eq!(events.len(), 4, "{trace}");
    assert!(
        events
            .iter()
            .all(|e| e["type"] == "span" && e["id"].as_str().unwrap().starts_with(&trace_id))
    );
    assert!(events.iter().any(|e| e["name"] == "agent run"));
    let usage: Value = server.get_json(&http, "/api/v1/me/usage/", &reader).await;
    assert_eq!(usage["events_used"], 4);

    // The same exporter with a read-only key: refused, nothing stored, nothing counted.
    let refused = export_spans(endpoint, reader.clone(), 3);
    let res = bearer(
        http.get(server.url(&format!("/api/v1/traces/{refused}/"))),
        &reader,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let usage: Value = server.get_json(&http, "/api/v1/me/usage/", &reader).await;
    assert_eq!(usage["events_used"], 4);
    assert!(
        server.log().contains("status=403"),
        "the refused export reached the server"
    );
    server.stop_and_check_logs(&[&writer, &reader]).await;
}

/// Batch sizes of 1 to 5 events, from the seeded random source.
fn sizes(seed: u64) -> impl Iterator<Item = usize> {
    let mut rng = agentvista_store::testing::Rng::from_seed(seed);
    std::iter::from_fn(move || Some(1 + usize::try_from(rng.below(5)).unwrap()))
}

pub(crate) async fn the_monthly_limit_holds_under_concurrent_clients(db: Db) {
    const LIMIT: u64 = 25;
    let plan = [("AGENTVISTA__PLANS__FREE__MONTHLY_EVENTS", "25")];
    db.create_user("ada@example.com");
    let key = db.create_key("ada@example.com", "sdk", "read,write");
    let server = Server::start_with(&db, &plan).await;
    let http = crate::harness::client();
    let seed = getrandom::u64().unwrap();

    let clients: Vec<_> = (0..8u64)
        .map(|client| {
            let (http, key, url) = (http.clone(), key.clone(), server.url("/api/v1/traces/batch/"));
            tokio::spawn(async move {
                let mut acknowledged = 0u64;
                for size in sizes(seed ^ client) {
                    let batch: Vec<Value> = (0..size)
                        .map(|_| json!({"type": "span", "trace_id": format!("client-{client}"), "timestamp": Utc::now()}))
                        .collect();
                    let res = bearer(http.post(&url), &key).json(&json!({"batch": batch})).send().await.unwrap();
                    match res.status() {
                        StatusCode::OK => {
                            let body: Value = res.json().await.unwrap();
                            assert_eq!(body["accepted"], size);
                            acknowledged += size as u64;
                        }
                        StatusCode::TOO_MANY_REQUESTS => {
                            let retry_after: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                            let body: Value = res.json().await.unwrap();
                            assert_eq!(body["error"], "monthly_event_limit_exceeded");
                            assert_eq!(body["limit"], LIMIT);
                            assert!(body["used"].as_u64().unwrap() + size as u64 > LIMIT, "{body}");
                            let period = Period::containing(Utc::now());
                            assert_eq!(body["resets_at"], period.resets_at().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                            assert!(retry_after.abs_diff(period.seconds_until_reset(Utc::now())) <= 2, "{retry_after}");
                            return acknowledged;
                        }
                        other => panic!("unexpected {other}"),
                    }
                }
                unreachable!("the size generator never ends")
            })
        })
        .collect();
    let mut acknowledged = 0;
    for client in clients {
        acknowledged += client.await.unwrap();
    }

    let usage: Value = server.get_json(&http, "/api/v1/me/usage", &key).await;
    let used = usage["events_used"].as_u64().unwrap();
    assert!(used <= LIMIT, "{used}");
    assert_eq!(
        used, acknowledged,
        "the count equals the events acknowledged with 200"
    );
    let mut readable = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/traces/?limit=3".to_owned();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = server.get_json(&http, &path, &key).await;
        readable += page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["event_count"].as_u64().unwrap())
            .sum::<u64>();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        readable, used,
        "the count equals the events readable through the API"
    );
    server.stop_and_check_logs(&[&key]).await;
}

pub(crate) async fn a_spend_cap_sets_the_allowance_exactly(db: Db) {
    let plan = [
        ("AGENTVISTA__PLANS__PRO__MONTHLY_EVENTS", "10"),
        (
            "AGENTVISTA__PLANS__PRO__OVERAGE_CENTS_PER_1000_EVENTS",
            "50",
        ),
    ];
    db.create_user("ada@example.com");
    assert!(
        db.cli(
            &[
                "accounts",
                "set-plan",
                "--email",
                "ada@example.com",
                "--plan",
                "pro"
            ],
            &plan,
            None
        )
        .status
        .success()
    );
    let key = db.create_key("ada@example.com", "ops", "read,write,admin");
    let server = Server::start_with(&db, &plan).await;
    let http = crate::harness::client();

    let usage: Value = server.get_json(&http, "/api/v1/me/usage/", &key).await;
    assert_eq!(
        (usage["plan"].as_str(), usage["events_limit"].clone()),
        (Some("pro"), Value::Null),
        "overage without a cap is unlimited"
    );
    // 10 included + floor(10¢ × 1000 / 50¢) = 210 events.
    let usage: Value = bearer(http.put(server.url("/api/v1/me/billing/spend-cap/")), &key)
        .json(&json!({"spend_cap_cents": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["events_limit"], 210);

    let send = |n: usize| {
        let batch: Vec<Value> = (0..n)
            .map(|_| json!({"type": "event", "trace_id": "t", "timestamp": Utc::now()}))
            .collect();
        bearer(http.post(server.url("/api/v1/traces/batch")), &key)
            .json(&json!({"batch": batch}))
            .send()
    };
    for n in [100, 100, 10] {
        assert_eq!(send(n).await.unwrap().status(), StatusCode::OK);
    }
    let refused = send(1).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        (body["limit"].as_u64(), body["used"].as_u64()),
        (Some(210), Some(210))
    );
    server.stop_and_check_logs(&[&key]).await;
}

/// The server sweeps events past their plan's retention at start-up: a trace whose events
/// arrived 31 days ago (free plan: 30) is gone from the list and its events from the API, a
/// fresh one stays, and the month's count is what it was.
pub(crate) async fn events_past_retention_are_gone_after_the_startup_sweep(db: Db) {
    db.create_user("ada@example.com");
    let key = db.create_key("ada@example.com", "sdk", "read,write");
    let server = Server::start(&db).await;
    let http = crate::harness::client();
    let at = Utc::now().to_rfc3339();
    let batch = json!({"batch": [
        {"id": "a1", "type": "trace", "trace_id": "aged", "timestamp": at, "name": "aged"},
        {"id": "a2", "type": "span", "trace_id": "aged", "timestamp": at},
        {"id": "f1", "type": "trace", "trace_id": "fresh", "timestamp": at, "name": "fresh"},
    ]});
    let res = bearer(http.post(server.url("/api/v1/traces/batch/")), &key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let used = |usage: &Value| usage["events_used"].as_u64().unwrap();
    let before = used(&server.get_json(&http, "/api/v1/me/usage/", &key).await);
    assert_eq!(before, 3);
    server.stop().await;

    db.set_received_at("aged", Utc::now() - chrono::TimeDelta::days(31))
        .await;
    let server = Server::start(&db).await;
    assert!(
        server.wait_for_log(
            "retention: rows past their retention deleted",
            std::time::Duration::from_secs(30)
        ),
        "no sweep deleted anything: {}",
        server.log()
    );
    let traces = server.get_json(&http, "/api/v1/traces/", &key).await;
    let listed: Vec<&str> = traces["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["fresh"], "{traces}");
    let res = bearer(http.get(server.url("/api/v1/traces/aged/")), &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let usage = server.get_json(&http, "/api/v1/me/usage/", &key).await;
    assert_eq!(used(&usage), before, "counts stay");
    server.stop_and_check_logs(&[&key]).await;
}
