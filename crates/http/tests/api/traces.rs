//! Reading traces: a trace named "batch"; a trace's events a page at a time, as a tree with
//! outcomes; the list filtered by name, start and errors.

use super::*;

#[actix_web::test]
async fn a_trace_named_batch_is_readable_and_a_traces_events_come_in_pages() {
    let t = test_app().await;
    let key = t.key("read,write").await;
    let TestApp { app, .. } = t;
    let items: Vec<Value> = (0..5)
        .map(|i| item(Some(&format!("e{i}")), "batch"))
        .collect();
    let req = bearer(test::TestRequest::post().uri("/api/v1/traces/batch/"), &key)
        .set_json(json!({"batch": items}));
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut seen = Vec::new();
    let mut uri = "/api/v1/traces/batch/?limit=2".to_owned();
    for _ in 0..4 {
        let (status, _, page) = send(&app, bearer(get(&uri), &key)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["trace_id"], "batch");
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        seen.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/v1/traces/batch/?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["e0", "e1", "e2", "e3", "e4"]);
    let (status, _, _) = send(&app, bearer(get("/api/v1/traces/batch/?cursor=zz"), &key)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(&app, bearer(get("/api/v1/traces/batch/?limit=1001"), &key)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The Python SDK's own request for a run of nested steps, one failing, one model call
/// (recorded by `sdk/python/tests/test_fixture.py`).
const SDK_TRACE: &[u8] = include_bytes!("../../../../bin/agentvista/tests/fixtures/sdk_trace.pb");
const SDK_TRACE_ID: &str = "f46d22239a13102b924f35e6b0b27c65";

#[actix_web::test]
async fn an_sdk_trace_reads_back_as_a_tree_with_durations_errors_and_tokens() {
    let t = test_app().await;
    let key = t.key("read,write").await;
    let TestApp { app, .. } = t;
    let req = otlp(
        "/otlp/v1/traces",
        &key,
        "application/x-protobuf",
        SDK_TRACE.to_vec(),
    );
    let (status, _, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, list) = send(&app, bearer(get("/api/v1/traces/"), &key)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let trace = &list["data"][0];
    assert_eq!(trace["trace_id"], SDK_TRACE_ID);
    assert_eq!(trace["name"], "run_agent");
    assert_eq!(trace["event_count"], 4);
    assert_eq!(trace["duration_ms"], 56.0);
    assert_eq!(trace["status"], "error");
    assert_eq!(
        (
            trace["input_tokens"].as_u64(),
            trace["output_tokens"].as_u64()
        ),
        (Some(12), Some(34))
    );

    let (status, _, page) = send(
        &app,
        bearer(get(&format!("/api/v1/traces/{SDK_TRACE_ID}/")), &key),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    let named = |name: &str| events.iter().find(|e| e["name"] == name).unwrap();
    let id_of = |name: &str| named(name)["id"].clone();
    assert_eq!(named("run_agent")["parent_id"], Value::Null);
    assert_eq!(named("plan")["parent_id"], id_of("run_agent"));
    assert_eq!(named("chat")["parent_id"], id_of("plan"));
    assert_eq!(named("search_docs")["parent_id"], id_of("run_agent"));
    assert_eq!(named("search_docs")["status"], "error");
    assert_eq!(
        named("search_docs")["status_message"],
        "ValueError: index unavailable"
    );
    assert_eq!(named("plan")["duration_ms"], 21.0);
    assert_eq!(named("chat")["model"], "gpt-4o-mini");
    assert_eq!(
        named("chat")["usage"],
        json!({"input_tokens": 12, "output_tokens": 34})
    );
    assert_eq!(named("plan")["usage"], Value::Null);
    assert_eq!(named("run_agent")["end_time"], "2026-12-06T12:00:00.056Z");
}

/// Traces `name` started `minute` minutes after noon, failed or not.
fn traced(name: &str, minute: u32, failed: bool) -> Value {
    json!({
        "id": name, "type": "span", "trace_id": name, "name": name,
        "timestamp": format!("2026-11-27T12:{minute:02}:00Z"),
        "end_time": format!("2026-11-27T12:{minute:02}:00.250Z"),
        "status": if failed { "error" } else { "ok" },
    })
}

#[actix_web::test]
async fn the_trace_list_filters_by_name_time_and_errors_and_refuses_what_it_cannot_read() {
    let t = test_app().await;
    let key = t.key("read,write").await;
    let TestApp { app, .. } = t;
    let batch = json!({"batch": [
        traced("Run Agent", 1, false),
        traced("run_agent_retry", 2, true),
        traced("plan", 3, true),
        traced("search", 4, false),
    ]});
    let req = bearer(test::TestRequest::post().uri("/api/v1/traces/batch/"), &key).set_json(batch);
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = |query: &'static str| {
        let app = &app;
        let key = &key;
        async move {
            let (status, _, page) =
                send(app, bearer(get(&format!("/api/v1/traces/?{query}")), key)).await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            let names: Vec<String> = page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            (names, page)
        }
    };
    assert_eq!(
        listed("name=AGENT").await.0,
        ["run_agent_retry", "Run Agent"]
    );
    assert_eq!(listed("status=error").await.0, ["plan", "run_agent_retry"]);
    assert_eq!(
        listed("from=2026-11-27T12:02:00Z&to=2026-11-27T12:04:00%2B00:00")
            .await
            .0,
        ["plan", "run_agent_retry"]
    );
    assert_eq!(listed("status=error&name=r").await.0, ["run_agent_retry"]);
    let (all, page) = listed("limit=4").await;
    assert_eq!(all.len(), 4);
    assert_eq!(page["data"][0]["duration_ms"], 250.0);
    assert_eq!(page["data"][0]["input_tokens"], Value::Null);

    let (_, first) = listed("status=error&limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (status, _, next) = send(
        &app,
        bearer(
            get(&format!(
                "/api/v1/traces/?status=error&limit=1&cursor={cursor}"
            )),
            &key,
        ),
    )
    .await;
    assert_eq!(
        (status, next["data"][0]["name"].as_str()),
        (StatusCode::OK, Some("run_agent_retry"))
    );
    let refused = [
        (
            format!("/api/v1/traces/?limit=1&cursor={cursor}"),
            "cursor:",
        ),
        (
            "/api/v1/traces/?from=yesterday".to_owned(),
            "from: not an RFC 3339 time",
        ),
        (
            "/api/v1/traces/?to=2026-11-27".to_owned(),
            "to: not an RFC 3339 time",
        ),
        (
            "/api/v1/traces/?from=9999-12-31T23:59:59-23:59".to_owned(),
            "from: not an RFC 3339 time from year 1 to 9999",
        ),
        (
            "/api/v1/traces/?status=ok".to_owned(),
            "status: only `error` is accepted",
        ),
        (
            "/api/v1/traces/?colour=red".to_owned(),
            "query: Query deserialize error: unknown field `colour`",
        ),
        (
            format!("/api/v1/traces/?name={}", "x".repeat(257)),
            "name: longer than 256 characters",
        ),
    ];
    for (uri, message) in refused {
        let (status, _, body) = send(&app, bearer(get(&uri), &key)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"], "bad_request");
        assert!(
            body["message"].as_str().unwrap().starts_with(message),
            "{uri}: {body}"
        );
    }
}

#[actix_web::test]
async fn a_batch_field_the_server_does_not_know_is_a_400_naming_it_and_nothing_is_stored() {
    let t = test_app().await;
    let key = t.key("read,write").await;
    let TestApp { app, .. } = t;
    let mut unknown = item(Some("u1"), "t");
    unknown["parentId"] = json!("root");
    let batch = json!({"batch": [item(Some("ok"), "t"), unknown]});
    let req = bearer(test::TestRequest::post().uri("/api/v1/traces/batch/"), &key).set_json(batch);
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("batch[1].parentId: unknown field `parentId`, expected one of"),
        "{message}"
    );
    assert!(message.contains("`parent_id`"), "{message}");
    let (status, _, _) = send(&app, bearer(get("/api/v1/traces/t/"), &key)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing of the batch was stored"
    );
}
