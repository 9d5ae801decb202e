//! OTLP/HTTP: protobuf and JSON answered in kind, errors as google.rpc.Status.

use super::*;

#[actix_web::test]
async fn otlp_json_and_protobuf_are_answered_in_kind_and_retries_cost_nothing() {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use prost::Message;
    let t = test_app().await;
    let key = t.key("read,write").await;
    let TestApp {
        app,
        store,
        account,
    } = t;

    let (status, headers, body) = raw(
        &app,
        otlp(
            "/otlp/v1/traces",
            &key,
            "application/json; charset=utf-8",
            TRACE_JSON.to_vec(),
        ),
    )
    .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"{}"[..]));
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );

    let request: ExportTraceServiceRequest = serde_json::from_slice(TRACE_JSON).unwrap();
    let (status, headers, body) = raw(
        &app,
        otlp(
            "/otlp/v1/traces/",
            &key,
            "application/x-protobuf",
            request.encode_to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/x-protobuf"
    );
    assert_eq!(
        ExportTraceServiceResponse::decode(&body[..]).unwrap(),
        ExportTraceServiceResponse::default()
    );
    assert_eq!(
        store.events().count(account).await.unwrap(),
        1,
        "the retry is a duplicate"
    );

    let logs = include_bytes!("../../../ingest/tests/fixtures/logs.json").to_vec();
    let metrics = include_bytes!("../../../ingest/tests/fixtures/metrics.json").to_vec();
    assert_eq!(
        raw(&app, otlp("/otlp/v1/logs", &key, "application/json", logs))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        raw(
            &app,
            otlp("/otlp/v1/metrics", &key, "application/json", metrics)
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, _, usage) = send(&app, bearer(get("/api/v1/me/usage"), &key)).await;
    assert_eq!(usage["events_used"], 1 + 1 + 3);
    let (_, _, trace) = send(
        &app,
        bearer(
            get("/api/v1/traces/5b8efff798038103d269b633813fc60c/"),
            &key,
        ),
    )
    .await;
    assert_eq!(
        trace["events"][0]["id"],
        "5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174"
    );
}

#[actix_web::test]
async fn otlp_errors_are_google_rpc_status_in_the_request_format() {
    use prost::Message;
    let f = fixture().await;
    let (read_only, _) = key(&f.store, f.account, "read").await;
    let (writer, _) = key(&f.store, f.account, "write").await;
    let app = app(AppState::new(f.store.clone(), plans(0)).unwrap()).await;

    let (status, headers, body) = raw(
        &app,
        otlp(
            "/otlp/v1/traces",
            &read_only,
            "application/x-protobuf",
            Vec::new(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/x-protobuf"
    );
    assert_eq!(
        headers.get(header::WWW_AUTHENTICATE).unwrap(),
        r#"Bearer error="insufficient_scope", scope="write""#
    );
    let rpc = tonic_types::Status::decode(&body[..]).unwrap();
    assert_eq!(rpc.code, 7);
    assert!(rpc.message.contains("write"));
    // The contract's code and fields, as a google.rpc.ErrorInfo.
    assert_eq!(rpc.details.len(), 1);
    assert_eq!(
        rpc.details[0].type_url,
        "type.googleapis.com/google.rpc.ErrorInfo"
    );
    let info = tonic_types::pb::ErrorInfo::decode(&rpc.details[0].value[..]).unwrap();
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("insufficient_scope", "agentvista")
    );
    assert_eq!(info.metadata["required_scope"], "write");

    let anonymous = test::TestRequest::post()
        .uri("/otlp/v1/logs")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload("{}");
    let (status, _, body) = raw(&app, anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let rpc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(rpc["code"], 16);

    let (status, _, body) = raw(
        &app,
        otlp("/otlp/v1/traces", &writer, "text/plain", b"hi".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["code"], 3);

    let (status, _, body) = raw(
        &app,
        otlp(
            "/otlp/v1/traces",
            &writer,
            "application/x-protobuf",
            b"\xff\xff\xff".to_vec(),
        ),
    )
    .await;
    assert_eq!(
        (status, tonic_types::Status::decode(&body[..]).unwrap().code),
        (StatusCode::BAD_REQUEST, 3)
    );

    let (status, headers, body) = raw(
        &app,
        otlp(
            "/otlp/v1/traces",
            &writer,
            "application/json",
            TRACE_JSON.to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "a plan of 0 events");
    assert!(headers.contains_key(header::RETRY_AFTER));
    let rpc = serde_json::from_slice::<Value>(&body).unwrap();
    assert_eq!(rpc["code"], 8);
    let info = &rpc["details"][0];
    assert_eq!(info["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(info["reason"], "monthly_event_limit_exceeded");
    assert_eq!(
        (&info["metadata"]["limit"], &info["metadata"]["used"]),
        (&json!("0"), &json!("0"))
    );
    assert!(
        info["metadata"]["resets_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(f.store.events().count(f.account).await.unwrap(), 0);
}
