//! Reading traces: a trace named "batch", and a trace's events a page at a time.

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
