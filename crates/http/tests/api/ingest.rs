//! The batch endpoint: stored and counted once, refused whole with the index named, gzip bounded, the monthly limit, bodies that are not JSON or never arrive.

use super::*;

#[actix_web::test]
async fn a_batch_is_stored_counted_and_retries_are_duplicates() {
    let f = fixture().await;
    let (key, _) = key(&f.store, f.account, "read,write").await;
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let batch =
        json!({"batch": [item(Some("e1"), "t1"), item(Some("e2"), "t1"), item(None, "t2")]});
    let post = || bearer(test::TestRequest::post().uri(BATCH), &key).set_json(batch.clone());
    let (status, _, body) = send(&app, post()).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"accepted": 3, "duplicates": 0}))
    );
    let (_, _, body) = send(&app, post()).await;
    assert_eq!(
        body,
        json!({"accepted": 1, "duplicates": 2}),
        "the id-less event is new each time"
    );

    let (_, _, usage) = send(&app, bearer(get("/api/v1/me/usage/"), &key)).await;
    assert_eq!(usage["events_used"], 4);
    assert_eq!(usage["events_limit"], 50_000);
    // Per day and key: today has the 4, the month's days add up to the count, the key has them.
    let (status, _, daily) = send(&app, bearer(get("/api/v1/me/usage/daily/"), &key)).await;
    assert_eq!(status, StatusCode::OK, "{daily}");
    assert_eq!(daily["period_start"], usage["period_start"]);
    let days = daily["days"].as_array().unwrap();
    assert!((28..=31).contains(&days.len()), "{daily}");
    let today = Utc::now().date_naive().to_string();
    let on_today: Vec<&Value> = days.iter().filter(|d| d["date"] == today).collect();
    assert_eq!(on_today.len(), 1);
    assert_eq!(on_today[0]["events"], 4);
    assert_eq!(
        days.iter()
            .map(|d| d["events"].as_u64().unwrap())
            .sum::<u64>(),
        4
    );
    assert_eq!(daily["keys"].as_array().unwrap().len(), 1);
    assert_eq!(daily["keys"][0]["events"], 4);
    assert_eq!(daily["keys"][0]["prefix"], key[..11]);
    let (_, _, traces) = send(&app, bearer(get("/api/v1/traces/"), &key)).await;
    assert_eq!(
        traces["data"][0]["event_count"].as_u64().unwrap()
            + traces["data"][1]["event_count"].as_u64().unwrap(),
        4
    );
    let (status, _, trace) = send(&app, bearer(get("/api/v1/traces/t1"), &key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(trace["events"].as_array().unwrap().len(), 2);
    assert_eq!(trace["events"][0]["body"], json!({"tokens": 3}));
    assert_eq!(
        send(&app, bearer(get("/api/v1/traces/nope/"), &key))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    for bad in [
        "/api/v1/traces/?limit=0",
        "/api/v1/traces/?cursor=zz",
        "/api/v1/traces/?limit=x",
    ] {
        let (status, _, body) = send(&app, bearer(get(bad), &key)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{bad}"
        );
    }
}

#[actix_web::test]
async fn one_invalid_event_refuses_the_batch_and_names_its_index() {
    let f = fixture().await;
    let (key, _) = key(&f.store, f.account, "write").await;
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let mut bad = item(None, "t");
    bad["type"] = json!("spam");
    let req = bearer(test::TestRequest::post().uri(BATCH), &key)
        .set_json(json!({"batch": [item(None, "t"), bad]}));
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("batch[1].type:"),
        "{body}"
    );
    assert_eq!(
        f.store.events().count(f.account).await.unwrap(),
        0,
        "nothing of it stored"
    );

    let (status, _, body) = send(
        &app,
        bearer(test::TestRequest::post().uri(BATCH), &key).set_json(json!({"batch": []})),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("batch: 1 to 1000 events, got 0.")
        )
    );
    let text = bearer(test::TestRequest::post().uri(BATCH), &key)
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload("{}");
    assert_eq!(send(&app, text).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let read_only = key_with(&f.store, f.account, "read", Expiry::NEVER).await.0;
    let req = bearer(test::TestRequest::post().uri(BATCH), &read_only)
        .set_json(json!({"batch": [item(None, "t")]}));
    let (status, _, body) = send(&app, req).await;
    assert_eq!(
        (status, body["required_scope"].as_str()),
        (StatusCode::FORBIDDEN, Some("write"))
    );
}

#[actix_web::test]
async fn a_gzipped_batch_is_accepted_and_a_bomb_is_413() {
    use std::io::Write;
    let f = fixture().await;
    let (key, _) = key(&f.store, f.account, "write").await;
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let gzip = |data: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    };
    let body = serde_json::to_vec(&json!({"batch": [item(Some("z1"), "t")]})).unwrap();
    let req = bearer(test::TestRequest::post().uri(BATCH), &key)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CONTENT_ENCODING, "gzip"))
        .set_payload(gzip(&body));
    assert_eq!(
        send(&app, req).await.2,
        json!({"accepted": 1, "duplicates": 0})
    );
    // 1 MiB of spaces inflates past the 4 KiB limit of this configuration.
    let bomb = gzip(&vec![b' '; 1 << 20]);
    assert!(bomb.len() < 4096);
    let req = bearer(test::TestRequest::post().uri(BATCH), &key)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CONTENT_ENCODING, "gzip"))
        .set_payload(bomb);
    let (status, _, body) = send(&app, req).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
}

#[actix_web::test]
async fn past_the_monthly_limit_nothing_is_stored_and_429_says_when_to_retry() {
    let f = fixture().await;
    let (key, _) = key(&f.store, f.account, "write").await;
    let app = app(AppState::new(f.store.clone(), plans(3)).unwrap()).await;
    let post = |n: usize| {
        let items: Vec<Value> = (0..n).map(|_| item(None, "t")).collect();
        bearer(test::TestRequest::post().uri(BATCH), &key).set_json(json!({"batch": items}))
    };
    assert_eq!(send(&app, post(2)).await.0, StatusCode::OK);
    let (status, headers, body) = send(&app, post(2)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "monthly_event_limit_exceeded");
    assert_eq!(
        (body["limit"].as_u64(), body["used"].as_u64()),
        (Some(3), Some(2))
    );
    let period = agentvista_quota::Period::containing(Utc::now());
    assert_eq!(
        body["resets_at"],
        period
            .resets_at()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let retry: u64 = headers
        .get(header::RETRY_AFTER)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        retry.abs_diff(period.seconds_until_reset(Utc::now())) <= 2,
        "{retry}"
    );
    assert_eq!(f.store.events().count(f.account).await.unwrap(), 2);
    assert_eq!(
        send(&app, post(1)).await.0,
        StatusCode::OK,
        "exactly the limit fits"
    );
    assert_eq!(send(&app, post(1)).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn json_endpoints_take_only_json_in_an_encoding_they_know() {
    let t = test_app().await;
    let admin = t.key("admin").await;
    let TestApp { app, .. } = t;
    let body = json!({"name": "k", "scopes": ["read"]}).to_string();
    let post = || bearer(test::TestRequest::post().uri(KEYS), &admin);

    // No Content-Type at all: a cross-site "simple" request must not get through.
    let (status, _, answer) = send(&app, post().set_payload(body.clone())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");
    assert_eq!(answer["error"], "unsupported_media_type");
    for encoding in ["br", "zstd", "compress", "x-unknown"] {
        let req = post()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header((header::CONTENT_ENCODING, encoding))
            .set_payload(body.clone());
        let (status, _, answer) = send(&app, req).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{encoding}: {answer}"
        );
    }
    // (Setup answers 404 once a user exists; the e2e suite checks it on a fresh database.)
    let req = test::TestRequest::post()
        .uri("/api/v1/auth/login/")
        .set_payload(json!({"email": "ada@example.com", "password": PASSWORD}).to_string());
    let (status, _, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "login");
    // gzip is an encoding every JSON endpoint takes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, body.as_bytes()).unwrap();
    let req = post()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CONTENT_ENCODING, "gzip"))
        .set_payload(gz.finish().unwrap());
    let (status, _, answer) = send(&app, req).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[actix_web::test]
async fn a_nul_character_in_any_json_string_is_a_400() {
    let t = test_app().await;
    let admin = t.key("admin,write").await;
    let TestApp { app, .. } = t;
    let cases = [
        (KEYS, r#"{"name":"a\u0000b","scopes":["read"]}"#),
        (
            "/api/v1/auth/login/",
            r#"{"email":"ada@example.com\u0000","password":"x"}"#,
        ),
        (
            "/api/v1/traces/batch/",
            r#"{"batch":[{"type":"span","trace_id":"t\u0000","timestamp":"2026-11-27T12:00:00Z"}]}"#,
        ),
    ];
    for (path, body) in cases {
        let req = bearer(test::TestRequest::post().uri(path), &admin)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body);
        let (status, _, answer) = send(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["error"], "bad_request");
    }
    // A backslash followed by the text "u0000" is no NUL.
    let req = bearer(test::TestRequest::post().uri(KEYS), &admin)
        .set_json(json!({"name": "a\\u0000b", "scopes": ["read"]}));
    let (status, _, answer) = send(&app, req).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["name"], "a\\u0000b");
}

#[actix_web::test]
async fn a_body_that_never_completes_is_a_400_after_the_deadline() {
    use futures_util::StreamExt;
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let base = config();
    let config = HttpConfig {
        body: BodyLimits {
            timeout: std::time::Duration::from_millis(200),
            ..base.body
        },
        ..base
    };
    let app = app(AppState::new(f.store, config).unwrap()).await;
    let req = bearer(test::TestRequest::post().uri(KEYS), &admin)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CONTENT_LENGTH, "100"))
        .to_request();
    // One byte, then nothing more, ever.
    let trickle = futures_util::stream::iter([Ok(actix_web::web::Bytes::from_static(b"{"))])
        .chain(futures_util::stream::pending());
    let stream: actix_http::BoxedPayloadStream = Box::pin(trickle);
    let (req, _) = req.replace_payload(actix_http::Payload::from(stream));
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(!res.response().head().keep_alive(), "the connection closes");
}
