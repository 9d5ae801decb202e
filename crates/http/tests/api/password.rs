//! A person changes their own password: the session that asked stays, every other one ends,
//! and a wrong current password is a 400 naming it (never a 401, which reads as signed out).

use std::num::NonZeroU32;
use std::time::Duration;

use agentvista_http::{Bucket, ThrottleConfig};

use super::*;

const PASSWORD_PATH: &str = "/api/v1/me/password/";
const SESSION: &str = "/api/v1/auth/session/";
const NEW_PASSWORD: &str = "a new and longer passphrase";

fn change(cookie: &str, csrf: &str, current: &str, new: &str) -> test::TestRequest {
    test::TestRequest::put()
        .uri(PASSWORD_PATH)
        .insert_header((header::COOKIE, cookie.to_owned()))
        .insert_header(("X-CSRF-Token", csrf.to_owned()))
        .set_json(json!({"current_password": current, "new_password": new}))
}

fn with_cookie(req: test::TestRequest, cookie: &str) -> test::TestRequest {
    req.insert_header((header::COOKIE, cookie.to_owned()))
}

async fn log_in_with<S, B>(app: &S, password: &str) -> StatusCode
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = test::TestRequest::post()
        .uri("/api/v1/auth/login/")
        .set_json(json!({"email": "ada@example.com", "password": password}));
    send(app, req).await.0
}

#[actix_web::test]
async fn a_change_keeps_this_session_and_ends_every_other_one() {
    let TestApp {
        app,
        store,
        account,
    } = test_app().await;
    let (here, csrf) = login(&app).await;
    let (elsewhere, _) = login(&app).await;

    let (status, headers, body) = send(&app, change(&here, &csrf, PASSWORD, NEW_PASSWORD)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");

    assert_eq!(
        send(&app, with_cookie(get(SESSION), &here)).await.0,
        StatusCode::OK
    );
    let (status, _, body) = send(&app, with_cookie(get(SESSION), &elsewhere)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_session");
    assert_eq!(log_in_with(&app, PASSWORD).await, StatusCode::UNAUTHORIZED);
    assert_eq!(log_in_with(&app, NEW_PASSWORD).await, StatusCode::OK);

    let page = store.audit().page(account, None, 10).await.unwrap();
    let changed: Vec<_> = page
        .entries
        .iter()
        .filter(|e| e.action == "user.password_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{:?}", page.entries);
    assert!(changed[0].actor.starts_with("user:"), "{:?}", changed[0]);
    assert_eq!(changed[0].target.as_deref(), Some("ada@example.com"));
    let logged = format!("{:?}", page.entries);
    assert!(!logged.contains(NEW_PASSWORD) && !logged.contains(PASSWORD));
}

#[actix_web::test]
async fn a_wrong_current_password_is_a_400_naming_it_and_changes_nothing() {
    let t = test_app().await;
    let (here, csrf) = t.session().await;
    let (elsewhere, _) = t.session().await;
    let TestApp { app, .. } = t;

    let (status, _, body) =
        send(&app, change(&here, &csrf, "not the password", NEW_PASSWORD)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("current_password:"),
        "{body}"
    );
    assert!(!body.to_string().contains(NEW_PASSWORD));
    // Nothing changed: both sessions live, the old password still signs in.
    for cookie in [&here, &elsewhere] {
        assert_eq!(
            send(&app, with_cookie(get(SESSION), cookie)).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        log_in_with(&app, NEW_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(log_in_with(&app, PASSWORD).await, StatusCode::OK);
}

#[actix_web::test]
async fn a_new_password_that_is_too_short_or_unchanged_is_a_400_naming_it() {
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let (cookie, csrf) = login(&app).await;
    for new in ["short", PASSWORD] {
        let (status, _, body) = send(&app, change(&cookie, &csrf, PASSWORD, new)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("new_password:"),
            "{body}"
        );
    }
    let req = with_cookie(test::TestRequest::put().uri(PASSWORD_PATH), &cookie)
        .insert_header(("X-CSRF-Token", csrf.clone()))
        .set_json(json!({"current_password": PASSWORD, "password": NEW_PASSWORD}));
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(log_in_with(&app, PASSWORD).await, StatusCode::OK);
}

#[actix_web::test]
async fn only_a_session_with_its_csrf_token_changes_a_password() {
    let t = test_app().await;
    let admin = t.key("read,write,admin").await;
    let (cookie, _) = t.session().await;
    let TestApp { app, .. } = t;
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});

    let req = bearer(test::TestRequest::put().uri(PASSWORD_PATH), &admin).set_json(&body);
    let (status, _, answer) = send(&app, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["error"], "session_required");

    let req = with_cookie(test::TestRequest::put().uri(PASSWORD_PATH), &cookie).set_json(&body);
    let (status, _, answer) = send(&app, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["error"], "csrf_failed");

    let req = test::TestRequest::put().uri(PASSWORD_PATH).set_json(&body);
    assert_eq!(send(&app, req).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(log_in_with(&app, PASSWORD).await, StatusCode::OK);
}

#[actix_web::test]
async fn password_changes_are_throttled_like_logins() {
    let f = fixture().await;
    let config = HttpConfig {
        throttle: ThrottleConfig {
            per_account_and_address: Bucket {
                burst: NonZeroU32::new(3).unwrap(),
                every: Duration::from_secs(3600),
            },
            ..ThrottleConfig::default()
        },
        ..config()
    };
    let app = app(AppState::new(f.store, config).unwrap()).await;
    // The login takes one attempt of the account's bucket.
    let (cookie, csrf) = login(&app).await;
    for _ in 0..2 {
        let (status, _, _) =
            send(&app, change(&cookie, &csrf, "a wrong guess", NEW_PASSWORD)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, headers, body) = send(&app, change(&cookie, &csrf, PASSWORD, NEW_PASSWORD)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_attempts");
    assert!(headers.contains_key(header::RETRY_AFTER));
}
