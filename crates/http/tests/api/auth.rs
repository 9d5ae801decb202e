//! Credentials: keys by scope, one answer for every bad key, a database that cannot be reached is 503, never 401.

use super::*;

#[actix_web::test]
async fn health_and_readiness_answer_without_credentials() {
    let TestApp { app, .. } = test_app().await;
    for path in ["/healthz", "/healthz/", "/readyz", "/readyz/"] {
        let (status, _, body) = send(&app, get(path)).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({"status": "ok"})),
            "{path}"
        );
    }
}

#[actix_web::test]
async fn a_read_key_pings_with_or_without_trailing_slash_and_any_scheme_case() {
    let t = test_app().await;
    let read = t.key("read").await;
    let TestApp { app, .. } = t;
    for (path, scheme) in [
        (PING, "Bearer"),
        ("/api/v1/me/api-keys/ping", "bearer"),
        (PING, "BEARER"),
    ] {
        let req = get(path).insert_header((header::AUTHORIZATION, format!("{scheme} {read}")));
        let (status, _, body) = send(&app, req).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({"status": "ok"})),
            "{path} {scheme}"
        );
    }
}

#[actix_web::test]
async fn no_credentials_is_missing_api_key_with_a_bearer_challenge() {
    let TestApp { app, .. } = test_app().await;
    let (status, headers, body) = send(&app, get(PING)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "missing_api_key");
    assert!(body["message"].as_str().unwrap().ends_with('.'));
    assert_eq!(
        headers.get(header::WWW_AUTHENTICATE).unwrap(),
        r#"Bearer realm="agentvista""#
    );
}

#[actix_web::test]
async fn every_kind_of_bad_key_gets_one_and_the_same_answer() {
    let f = fixture().await;
    let (valid, _) = key(&f.store, f.account, "read").await;
    let (revoked, record) = key(&f.store, f.account, "read").await;
    KeyLookup::revoke(&f.store, f.account, record.id, Actor::Cli, Utc::now())
        .await
        .unwrap();
    let past = Expiry::at(Some(Utc::now() - TimeDelta::seconds(1)));
    let (expired, _) = key_with(&f.store, f.account, "read", past).await;
    let unknown = ApiKey::generate().unwrap().expose_secret().to_owned();
    let mut bad_checksum = valid.clone();
    let last = if bad_checksum.ends_with('A') {
        "B"
    } else {
        "A"
    };
    bad_checksum.replace_range(49.., last);
    let app = app(AppState::new(f.store, config()).unwrap()).await;

    let mut answers = Vec::new();
    for header_value in [
        format!("Bearer {}", &valid[..20]),
        format!("Bearer {bad_checksum}"),
        format!("Bearer {unknown}"),
        format!("Bearer {revoked}"),
        format!("Bearer {expired}"),
        format!("Basic {valid}"),
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
    ] {
        let req = get(PING).insert_header((header::AUTHORIZATION, header_value.clone()));
        let (status, headers, body) = send(&app, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header_value}");
        assert_eq!(
            headers.get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer realm="agentvista", error="invalid_token""#
        );
        assert!(
            !body.to_string().contains(&valid[12..]),
            "the key is echoed"
        );
        answers.push(body);
    }
    assert!(
        answers
            .iter()
            .all(|a| *a == answers[0] && a["error"] == "invalid_api_key")
    );
}

#[actix_web::test]
async fn a_key_without_the_scope_gets_insufficient_scope() {
    let t = test_app().await;
    let write = t.key("write,admin").await;
    let TestApp { app, .. } = t;
    let (status, headers, body) = send(&app, bearer(get(PING), &write)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["required_scope"], "read");
    assert_eq!(
        headers.get(header::WWW_AUTHENTICATE).unwrap(),
        r#"Bearer error="insufficient_scope", scope="read""#
    );
}

#[actix_web::test]
async fn an_unreachable_key_store_is_503_not_401() {
    let f = fixture().await;
    let (read, _) = key(&f.store, f.account, "read").await;
    let state = AppState::new(f.store, config())
        .unwrap()
        .with_key_lookup(Arc::new(Down));
    let app = app(state).await;
    let (status, headers, body) = send(&app, bearer(get(PING), &read)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
    );
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert!(
        !body.to_string().contains("connection refused"),
        "internals leak: {body}"
    );
}

#[actix_web::test]
async fn two_authorization_headers_are_a_400_never_the_first_ones_200() {
    let t = test_app().await;
    let read = t.key("read").await;
    let TestApp { app, .. } = t;
    let req = get(PING)
        .append_header((header::AUTHORIZATION, format!("Bearer {read}")))
        .append_header((header::AUTHORIZATION, "Bearer av_garbage"));
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad_request");
}
