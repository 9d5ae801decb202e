//! The route table and the OpenAPI document: every documented operation reaches its handler, unknown routes are JSON 404s, every documented example is accepted.

use super::*;

#[actix_web::test]
async fn unknown_routes_and_methods_are_json_404s() {
    let TestApp { app, .. } = test_app().await;
    for req in [
        get("/nope"),
        get("/api/v1/me/api-keys/1/"),
        test::TestRequest::default().method(Method::PUT).uri(PING),
    ] {
        let (status, _, body) = send(&app, req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }
}

/// Every operation of the OpenAPI document, sent to the app `configure` mounts (with and
/// without the trailing slash, without credentials or a body, on an installation with no user
/// yet so that even the first-run setup answers), reaches a handler: no JSON 404 of the
/// fallback, no 405. And the fallback is what a method the document does not list gets, so a
/// 404 here would have been seen.
#[actix_web::test]
async fn every_documented_operation_reaches_its_handler_and_nothing_else_does() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let app = app(AppState::new(store, config()).unwrap()).await;
    let operations = documented_operations();
    assert!(operations.len() >= 20, "{operations:?}");
    for (path, method) in &operations {
        let path = concrete(path);
        let other = match path.strip_suffix('/') {
            Some(without) => without.to_owned(),
            None => format!("{path}/"),
        };
        for uri in [&path, &other] {
            let req = test::TestRequest::default().method(method.clone()).uri(uri);
            let res = test::call_service(&app, req.to_request()).await;
            let status = res.status();
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri} fell through to {status}"
            );
        }
        // TRACE is no operation of this API: the same path answers the fallback's 404.
        assert!(!operations.contains(&(path.clone(), Method::TRACE)));
        let req = test::TestRequest::default()
            .method(Method::TRACE)
            .uri(&path);
        let (status, _, body) = send(&app, req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "TRACE {path}"
        );
    }
}

#[actix_web::test]
async fn the_openapi_document_is_served_as_json_without_credentials() {
    let TestApp { app, .. } = test_app().await;
    let expected = agentvista_http::openapi().unwrap();
    for path in ["/api/v1/openapi.json", "/api/v1/openapi.json/"] {
        let (status, headers, body) = send(&app, get(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/json",
            "{path}"
        );
        assert_eq!(body, expected, "{path}");
    }
    assert_eq!(expected["openapi"], "3.1.0");
    assert!(expected["paths"]["/api/v1/openapi.json"]["get"].is_object());
}

/// Found by Schemathesis: serde reads a struct from a JSON array, field by field, so
/// `["ci", ["read"]]` created a key and `[5]` set the spend cap. Every body of the API is an
/// object (the OpenAPI document says so); an array is a 400 and changes nothing.
#[actix_web::test]
async fn a_json_array_is_no_request_body_even_in_the_order_of_the_fields() {
    let t = test_app().await;
    let admin = t.key("read,write,admin").await;
    let TestApp {
        app,
        store,
        account,
    } = t;
    let json_post = |method: Method, path: &str, body: &str| {
        bearer(
            test::TestRequest::default()
                .method(method)
                .uri(path)
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(body.to_owned()),
            &admin,
        )
    };
    for (method, path, body) in [
        (Method::POST, KEYS, r#"["ci", ["read"]]"#),
        (Method::PUT, "/api/v1/me/billing/spend-cap/", "[5]"),
        (
            Method::POST,
            "/api/v1/traces/batch/",
            r#" [[{"type": "span", "trace_id": "t", "timestamp": "2026-11-27T12:00:00Z"}]]"#,
        ),
        (
            Method::POST,
            "/api/v1/auth/login/",
            r#"["ada@example.com", "correct horse battery"]"#,
        ),
    ] {
        let (status, _, body) = send(&app, json_post(method.clone(), path, body)).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (
                StatusCode::BAD_REQUEST,
                Some("body: must be a JSON object, not an array.")
            ),
            "{method} {path}"
        );
    }
    // OTLP/JSON too, answered as a google.rpc.Status.
    let req = otlp("/otlp/v1/logs", &admin, "application/json", b"[]".to_vec());
    let (status, _, body) = send(&app, req).await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(3))
    );
    // Nothing changed: one key (the caller's), no cap, no event.
    assert_eq!(store.keys().list(account).await.unwrap().len(), 1);
    let (_, _, usage) = send(&app, bearer(get("/api/v1/me/usage/"), &admin)).await;
    assert_eq!(
        (
            usage["spend_cap_cents"].clone(),
            usage["events_used"].clone()
        ),
        (Value::Null, json!(0))
    );
}

/// The document's request examples are what Schemathesis sends first, and what a reader copies:
/// each one, sent as documented with a key of every scope, is accepted.
#[actix_web::test]
async fn every_request_example_in_the_openapi_document_is_accepted() {
    let t = test_app().await;
    let all = t.key("read,write,admin").await;
    let TestApp { app, .. } = t;
    let document = agentvista_http::openapi().unwrap();
    let mut sent = 0;
    for (path, method) in documented_operations() {
        let op = &document["paths"][&path][method.as_str().to_ascii_lowercase()];
        let content = &op["requestBody"]["content"]["application/json"];
        // An example of the body itself, or of the schema it refers to.
        let example = match (&content["example"], &content["schema"]["$ref"]) {
            (Value::Null, Value::String(target)) => document
                .pointer(target.trim_start_matches('#'))
                .map(|schema| schema["example"].clone())
                .unwrap_or(Value::Null),
            (example, _) => example.clone(),
        };
        if example.is_null() {
            continue;
        }
        let req = test::TestRequest::default()
            .method(method.clone())
            .uri(&concrete(&path))
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(example.to_string());
        let res = test::call_service(&app, bearer(req, &all).to_request()).await;
        let status = res.status();
        let body = test::read_body(res).await;
        assert!(
            status.is_success(),
            "{method} {path} with its example {example}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        sent += 1;
    }
    // A key, a roll, a leak report, a batch, a spend cap and the three OTLP signals.
    assert_eq!(sent, 8);
}
