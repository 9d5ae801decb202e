//! The memory budget and bounded reads: a request that cannot be paid for is a 503
//! `overloaded` that stores nothing, one account cannot take another's room, and a page of a
//! trace's events ends before it passes `limits.max_response_bytes`.

use std::io::Write;
use std::time::Duration;

use agentvista_http::BudgetLimits;

use super::*;

const BATCH: &str = "/api/v1/traces/batch/";
const KIB: usize = 1024;

fn budgeted(budget_bytes: usize, share: f64) -> HttpConfig {
    HttpConfig {
        body: BodyLimits {
            max_bytes: 1024 * KIB,
            ..BodyLimits::default()
        },
        memory: BudgetLimits {
            memory_budget_bytes: budget_bytes,
            account_share: share,
            wait: Duration::from_millis(100),
        },
        ..config()
    }
}

/// A batch of one event whose body holds `filler` bytes of text.
fn batch_of(id: &str, filler: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({"batch": [{
        "id": id, "type": "span", "trace_id": "t", "timestamp": "2026-11-27T12:00:00Z",
        "body": {"text": "x".repeat(filler)}
    }]}))
    .unwrap()
}

fn post_batch(key: &str, body: Vec<u8>) -> test::TestRequest {
    bearer(test::TestRequest::post().uri(BATCH), key)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(body)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[actix_web::test]
async fn a_body_that_cannot_be_paid_for_is_503_overloaded_and_stores_nothing() {
    let f = fixture().await;
    let (key, _) = key(&f.store, f.account, "read,write").await;
    // One account may hold 256 KiB: a 64 KiB body costs more than that once decoded.
    let state = AppState::new(f.store.clone(), budgeted(1024 * KIB, 0.25)).unwrap();
    let app = app(state).await;
    let big = batch_of("big", 64 * KIB);
    let (status, headers, body) = send(&app, post_batch(&key, big.clone())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "overloaded");
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    // Compressed, the same body is refused while it inflates, a step at a time.
    let (status, _, body) = send(
        &app,
        post_batch(&key, gzip(&big)).insert_header((header::CONTENT_ENCODING, "gzip")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded"))
    );
    assert_eq!(f.store.events().count(f.account).await.unwrap(), 0);
    // A body of an ordinary size is paid for and stored.
    let (status, _, body) = send(&app, post_batch(&key, batch_of("small", 100))).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"accepted": 1, "duplicates": 0}))
    );
}

#[actix_web::test]
async fn otlp_answers_overloaded_as_a_retryable_unavailable() {
    let f = fixture().await;
    let (key, _) = key(&f.store, f.account, "write").await;
    let app = app(AppState::new(f.store.clone(), budgeted(1024 * KIB, 0.25)).unwrap()).await;
    let body = format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{{"stringValue":"{}"}}}}]}}]}}]}}"#,
        "l".repeat(64 * KIB)
    );
    let (status, headers, body) = send(
        &app,
        otlp("/otlp/v1/logs", &key, "application/json", body.into_bytes()),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(body["code"], 14);
    assert_eq!(body["details"][0]["reason"], "overloaded");
}

#[actix_web::test]
async fn an_account_holding_its_share_waits_then_gets_503_while_another_is_served() {
    let f = fixture().await;
    let other = f
        .store
        .accounts()
        .create(&"other".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    let (flooder, _) = key(&f.store, f.account, "write").await;
    let (neighbour, _) = key(&f.store, other, "write").await;
    let state = AppState::new(f.store.clone(), budgeted(4096 * KIB, 0.25)).unwrap();
    // The flood: requests in flight holding all of the first account's share.
    let mut flood = state.budget().grant(f.account, "test");
    flood.grow(1024 * KIB).await.unwrap();
    let app = app(state).await;
    let (status, _, body) = send(&app, post_batch(&flooder, batch_of("a", 100))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded"))
    );
    let (status, _, _) = send(&app, post_batch(&neighbour, batch_of("b", 100))).await;
    assert_eq!(status, StatusCode::OK);
    // Once the flood's requests are answered, the account is served again.
    drop(flood);
    let (status, _, _) = send(&app, post_batch(&flooder, batch_of("a", 100))).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn a_trace_page_ends_before_max_response_bytes_and_its_cursors_reach_every_event() {
    let f = fixture().await;
    let (key, _) = key(&f.store, f.account, "read,write").await;
    let config = HttpConfig {
        max_response_bytes: 64 * KIB,
        ..budgeted(256 * 1024 * KIB, 0.25)
    };
    let app = app(AppState::new(f.store.clone(), config).unwrap()).await;
    // One 20 KiB resource attribute shared by 50 spans: stored once, shown in every event.
    let spans: Vec<Value> = (0..50)
        .map(|i| {
            json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": format!("{:016x}", i + 1),
                   "name": "s", "startTimeUnixNano": format!("{}", 1_764_244_800_000_000_000u64 + i)})
        })
        .collect();
    let request = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "big", "value": {"stringValue": "r".repeat(20 * KIB)}}]},
        "scopeSpans": [{"spans": spans}]
    }]});
    let (status, _, _) = send(
        &app,
        otlp(
            "/otlp/v1/traces",
            &key,
            "application/json",
            serde_json::to_vec(&request).unwrap(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &cursor {
            Some(c) => {
                format!("/api/v1/traces/5b8efff798038103d269b633813fc60c/?limit=1000&cursor={c}")
            }
            None => "/api/v1/traces/5b8efff798038103d269b633813fc60c/?limit=1000".to_owned(),
        };
        let (status, _, bytes) = raw(&app, bearer(get(&uri), &key)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(bytes.len() <= 64 * KIB, "a page of {} bytes", bytes.len());
        let page: Value = serde_json::from_slice(&bytes).unwrap();
        for event in page["events"].as_array().unwrap() {
            assert_eq!(
                event["body"]["resource"]["big"].as_str().unwrap().len(),
                20 * KIB
            );
            seen.push(event["id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(pages > 1, "the bound never ended a page");
    let expected: Vec<String> = (0..50)
        .map(|i| format!("5b8efff798038103d269b633813fc60c-{:016x}", i + 1))
        .collect();
    assert_eq!(seen, expected);
}

#[actix_web::test]
async fn bodies_sent_without_credentials_are_capped_at_64_kib() {
    let config = || HttpConfig {
        body: BodyLimits {
            max_bytes: 1024 * KIB,
            ..BodyLimits::default()
        },
        ..config()
    };
    // First-run setup exists only on an empty installation.
    let empty = Store::connect("sqlite::memory:").await.unwrap();
    empty.migrate().await.unwrap();
    let f = fixture().await;
    for (store, path) in [
        (empty, "/api/v1/setup/"),
        (f.store.clone(), "/api/v1/auth/login/"),
    ] {
        let app = app(AppState::new(store, config()).unwrap()).await;
        let big = json!({"email": "ada@example.com", "password": "p".repeat(64 * KIB)});
        let req = test::TestRequest::post().uri(path).set_json(big);
        let (status, _, body) = send(&app, req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
            "{path}"
        );
    }
    // Under the cap, the login is read and answered as ever.
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let small = json!({"email": "ada@example.com", "password": "wrong password"});
    let req = test::TestRequest::post()
        .uri("/api/v1/auth/login/")
        .set_json(small);
    assert_eq!(send(&app, req).await.0, StatusCode::UNAUTHORIZED);
}
