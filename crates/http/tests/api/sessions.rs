//! Dashboard sessions: logins that tell nothing, the CSRF token, the throttles, answers never cached.

use super::*;

#[actix_web::test]
async fn wrong_email_and_wrong_password_are_indistinguishable() {
    let TestApp { app, .. } = test_app().await;
    let mut answers = Vec::new();
    for (email, password) in [
        ("ada@example.com", "wrong password"),
        ("bob@example.com", PASSWORD),
    ] {
        let req = test::TestRequest::post()
            .uri("/api/v1/auth/login")
            .set_json(json!({"email": email, "password": password}));
        let (status, headers, body) = send(&app, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.get(header::SET_COOKIE).is_none());
        answers.push(body);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0]["error"], "invalid_credentials");
}

#[actix_web::test]
async fn a_session_needs_the_csrf_token_for_unsafe_methods() {
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let (cookie, csrf) = login(&app).await;
    let with_cookie = |req: test::TestRequest| req.insert_header((header::COOKIE, cookie.clone()));
    let create = || {
        test::TestRequest::post()
            .uri(KEYS)
            .set_json(json!({"name": "ci", "scopes": ["write"]}))
    };

    let (status, _, body) = send(&app, with_cookie(get(KEYS))).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"data": [], "next_cursor": null}))
    );
    let (status, _, body) = send(&app, with_cookie(create())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_failed"))
    );
    let wrong = with_cookie(create()).insert_header(("X-CSRF-Token", "0".repeat(64)));
    assert_eq!(send(&app, wrong).await.0, StatusCode::FORBIDDEN);
    let right = with_cookie(create()).insert_header(("X-CSRF-Token", csrf.clone()));
    let (status, _, body) = send(&app, right).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(body["key"].as_str().unwrap().starts_with("av_"));

    let (status, _, body) = send(&app, with_cookie(get("/api/v1/auth/session"))).await;
    assert_eq!(
        (status, body["csrf_token"].as_str()),
        (StatusCode::OK, Some(csrf.as_str()))
    );
    let logout = || with_cookie(test::TestRequest::post().uri("/api/v1/auth/logout/"));
    assert_eq!(send(&app, logout()).await.0, StatusCode::FORBIDDEN);
    let (status, _, _) = send(&app, logout().insert_header(("X-CSRF-Token", csrf))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = send(&app, with_cookie(get(KEYS))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_session"))
    );
}

#[actix_web::test]
async fn an_authorization_header_wins_over_the_cookie() {
    let t = test_app().await;
    let (cookie, _) = t.session().await;
    let TestApp { app, .. } = t;
    let req = get(KEYS)
        .insert_header((header::COOKIE, cookie))
        .insert_header((header::AUTHORIZATION, "Bearer nonsense"));
    let (status, _, body) = send(&app, req).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
    );
}

#[actix_web::test]
async fn session_endpoints_refuse_api_keys() {
    let t = test_app().await;
    let admin = t.key("read,write,admin").await;
    let TestApp { app, .. } = t;
    let (status, _, body) = send(&app, bearer(get("/api/v1/auth/session"), &admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_required"))
    );
    let logout = bearer(test::TestRequest::post().uri("/api/v1/auth/logout"), &admin);
    assert_eq!(send(&app, logout).await.0, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn logins_past_the_accounts_throttle_are_429_even_with_the_right_password() {
    let TestApp { app, .. } = test_app().await;
    let login = |password: &str| {
        test::TestRequest::post()
            .uri("/api/v1/auth/login/")
            .set_json(json!({"email": "ada@example.com", "password": password}))
    };
    let burst = agentvista_http::ThrottleConfig::default()
        .per_account_and_address
        .burst
        .get();
    for _ in 0..burst {
        let (status, _, _) = send(&app, login("wrong password")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = send(&app, login(PASSWORD)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_attempts");
    let retry: u64 = headers
        .get(header::RETRY_AFTER)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
}

#[actix_web::test]
async fn logins_with_a_string_that_is_no_email_fail_alike_and_count_for_no_account() {
    let TestApp { app, .. } = test_app().await;
    let burst = agentvista_http::ThrottleConfig::default()
        .per_account_and_address
        .burst
        .get();
    // Past the account's burst: a string that names no account has no bucket to empty.
    for _ in 0..=burst {
        let login = test::TestRequest::post()
            .uri("/api/v1/auth/login/")
            .set_json(json!({"email": "ada", "password": PASSWORD}));
        let (status, _, body) = send(&app, login).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials")),
            "{body}"
        );
    }
}

#[actix_web::test]
async fn answers_carrying_secrets_are_never_cached() {
    let TestApp { app, .. } = test_app().await;
    let no_store = |headers: &header::HeaderMap| {
        headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("no-store"))
    };
    let req = test::TestRequest::post()
        .uri("/api/v1/auth/login/")
        .set_json(json!({"email": "ada@example.com", "password": PASSWORD}));
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(no_store(res.headers()), "login");
    let cookie = res.response().cookies().next().unwrap().into_owned();
    let body: Value = test::read_body_json(res).await;
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();

    let (status, headers, _) =
        send(&app, get("/api/v1/auth/session/").cookie(cookie.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(no_store(&headers), "session");
    let req = test::TestRequest::post()
        .uri(KEYS)
        .cookie(cookie)
        .insert_header(("X-CSRF-Token", csrf))
        .set_json(json!({"name": "k", "scopes": ["read"]}));
    let (status, headers, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(no_store(&headers), "key creation");
}
