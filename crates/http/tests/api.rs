//! Handler tests: the whole API mounted with `configure`, driven by `actix_web::test` over an
//! in-memory SQLite store. One integration binary for the crate.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::{App, test, web};
use agentvista_http::auth::{KeyLookup, LookupFuture};
use agentvista_http::{AppState, BodyLimits, HttpConfig, configure};
use agentvista_keys::password::{Password, hash_password};
use agentvista_keys::{
    AccountId, Actor, ApiKey, Expiry, KeyHash, KeyId, KeyRecord, LookupError, Revoked,
};
use agentvista_quota::{Plan, Plans};
use agentvista_store::{NewKey, Store};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

#[path = "api/billing.rs"]
mod billing;
#[path = "api/keys.rs"]
mod keys;
#[path = "api/memory.rs"]
mod memory;
#[path = "api/password.rs"]
mod password;
#[path = "api/throttles.rs"]
mod throttles;

const PASSWORD: &str = "correct horse battery";

struct Fixture {
    store: Store,
    account: AccountId,
}

async fn fixture() -> Fixture {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let account = store
        .accounts()
        .create(&"acme".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    let hash = hash_password(&Password::new(PASSWORD.to_owned())).unwrap();
    store
        .users()
        .create(
            account,
            &"ada@example.com".parse().unwrap(),
            &hash,
            Utc::now(),
        )
        .await
        .unwrap();
    Fixture { store, account }
}

fn config() -> HttpConfig {
    HttpConfig {
        insecure_cookies: true,
        body: BodyLimits {
            max_bytes: 4096,
            ..BodyLimits::default()
        },
        ..HttpConfig::default()
    }
}

async fn app(
    state: AppState,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    let state = web::Data::new(state);
    test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await
}

async fn key(store: &Store, account: AccountId, scopes: &str) -> (String, KeyRecord) {
    key_with(store, account, scopes, Expiry::NEVER).await
}

async fn key_with(
    store: &Store,
    account: AccountId,
    scopes: &str,
    expiry: Expiry,
) -> (String, KeyRecord) {
    let new = NewKey {
        name: &"test".parse().unwrap(),
        scopes: scopes.parse().unwrap(),
        expiry,
        created_by: None,
        rate_limit: None,
    };
    let (key, record) = store.keys().create(account, new, Utc::now()).await.unwrap();
    (key.expose_secret().to_owned(), record)
}

/// Sends a request, returns status, headers and JSON body (Null when empty).
async fn send<S, B>(app: &S, req: test::TestRequest) -> (StatusCode, header::HeaderMap, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = test::read_body(res).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, headers, body)
}

fn get(path: &str) -> test::TestRequest {
    test::TestRequest::get().uri(path)
}

fn bearer(req: test::TestRequest, key: &str) -> test::TestRequest {
    req.insert_header((header::AUTHORIZATION, format!("Bearer {key}")))
}

const PING: &str = "/api/v1/me/api-keys/ping/";
const KEYS: &str = "/api/v1/me/api-keys/";

#[actix_web::test]
async fn health_and_readiness_answer_without_credentials() {
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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
    let f = fixture().await;
    let (read, _) = key(&f.store, f.account, "read").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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
    let f = fixture().await;
    let (write, _) = key(&f.store, f.account, "write,admin").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let (status, headers, body) = send(&app, bearer(get(PING), &write)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["required_scope"], "read");
    assert_eq!(
        headers.get(header::WWW_AUTHENTICATE).unwrap(),
        r#"Bearer error="insufficient_scope", scope="read""#
    );
}

/// Logs in; returns the cookie header value and the CSRF token.
async fn login<S, B>(app: &S) -> (String, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = test::TestRequest::post()
        .uri("/api/v1/auth/login/")
        .set_json(json!({"email": "ADA@example.com", "password": PASSWORD}));
    let res = test::call_service(app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.response().cookies().next().unwrap().into_owned();
    assert_eq!(cookie.name(), "av_session");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(
        cookie.same_site(),
        Some(actix_web::cookie::SameSite::Strict)
    );
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["user"]["email"], "ada@example.com");
    (
        format!("av_session={}", cookie.value()),
        body["csrf_token"].as_str().unwrap().to_owned(),
    )
}

#[actix_web::test]
async fn wrong_email_and_wrong_password_are_indistinguishable() {
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let (cookie, _) = login(&app).await;
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
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "read,write,admin").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let (status, _, body) = send(&app, bearer(get("/api/v1/auth/session"), &admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_required"))
    );
    let logout = bearer(test::TestRequest::post().uri("/api/v1/auth/logout"), &admin);
    assert_eq!(send(&app, logout).await.0, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn the_full_key_is_returned_once_and_never_listed() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let create = bearer(test::TestRequest::post().uri(KEYS), &admin).set_json(
        json!({"name": "production", "scopes": ["write"], "expires_at": "2099-01-01T00:00:00Z"}),
    );
    let (status, _, created) = send(&app, create).await;
    assert_eq!(status, StatusCode::CREATED);
    let full = created["key"].as_str().unwrap();
    assert!(ApiKey::parse(full).is_ok());
    assert_eq!(created["prefix"], full[..11]);
    assert_eq!(created["scopes"], json!(["write"]));
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00Z");

    let (_, _, listed) = send(&app, bearer(get(KEYS), &admin)).await;
    let first = &listed["data"][0];
    let mut fields: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "expires_at",
            "id",
            "last_used_at",
            "name",
            "prefix",
            "rate_limit",
            "revoked_at",
            "scopes"
        ]
    );
    assert_eq!(first["rate_limit"], Value::Null);
    assert_eq!(first["id"], created["id"], "newest first");
    assert!(!listed.to_string().contains(&full[12..]));
    let hash = ApiKey::parse(full).unwrap().hash().to_hex();
    assert!(!listed.to_string().contains(&hash) && !created.to_string().contains(&hash));
}

#[actix_web::test]
async fn bad_create_bodies_get_a_400_naming_the_field() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let post = |body: Value| bearer(test::TestRequest::post().uri(KEYS), &admin).set_json(body);
    for (body, field) in [
        (
            json!({"name": "x", "scopes": ["write", "owner"]}),
            "scopes[1]",
        ),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x"}), "missing field `scopes`"),
        (json!({"name": "", "scopes": ["read"]}), "name"),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": "tomorrow"}),
            "expires_at",
        ),
    ] {
        let (status, _, answer) = send(&app, post(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"], "bad_request");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{answer} lacks {field}"
        );
    }
    let malformed = bearer(test::TestRequest::post().uri(KEYS), &admin)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload("{\"name\":");
    assert_eq!(send(&app, malformed).await.0, StatusCode::BAD_REQUEST);
    let form = bearer(test::TestRequest::post().uri(KEYS), &admin)
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload("name=x");
    let (status, _, answer) = send(&app, form).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let huge = bearer(test::TestRequest::post().uri(KEYS), &admin)
        .set_json(json!({"name": "x".repeat(5000), "scopes": ["read"]}));
    let (status, _, answer) = send(&app, huge).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
}

#[actix_web::test]
async fn revocation_rules_and_tenant_isolation() {
    let f = fixture().await;
    let globex = f
        .store
        .accounts()
        .create(&"globex".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let (writer, writer_record) = key(&f.store, f.account, "write").await;
    let (_, other_record) = key(&f.store, f.account, "read").await;
    let (_, theirs) = key(&f.store, globex, "read").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let delete = |id: KeyId, key: &str| {
        bearer(
            test::TestRequest::delete().uri(&format!("{KEYS}{}/", id.0)),
            key,
        )
    };

    let (status, _, body) = send(&app, delete(theirs.id, &admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _, body) = send(&app, delete(other_record.id, &writer)).await;
    assert_eq!(
        (status, body["required_scope"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin"))
    );
    let garbage = bearer(
        test::TestRequest::delete().uri(&format!("{KEYS}abc/")),
        &admin,
    );
    assert_eq!(send(&app, garbage).await.0, StatusCode::NOT_FOUND);

    assert_eq!(
        send(&app, delete(other_record.id, &admin)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, delete(other_record.id, &admin)).await.0,
        StatusCode::NO_CONTENT
    );
    // A key may revoke itself, and fails on the very next request.
    let own = bearer(
        test::TestRequest::delete().uri(&format!("/api/v1/me/api-keys/{}", writer_record.id.0)),
        &writer,
    );
    assert_eq!(send(&app, own).await.0, StatusCode::NO_CONTENT);
    let (status, _, body) = send(&app, bearer(get(PING), &writer)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
    );
}

#[actix_web::test]
async fn unknown_routes_and_methods_are_json_404s() {
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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

/// A lookup whose storage is down: clients must see 503, never 401.
struct Down;

impl KeyLookup for Down {
    fn find_by_hash<'a>(&'a self, _: &'a KeyHash) -> LookupFuture<'a, Option<KeyRecord>> {
        Box::pin(async { Err(LookupError::Unavailable("connection refused".into())) })
    }
    fn touch_last_used(&self, _: KeyId, _: DateTime<Utc>) -> LookupFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn revoke(
        &self,
        _: AccountId,
        _: KeyId,
        _: Actor,
        _: DateTime<Utc>,
    ) -> LookupFuture<'_, Option<Revoked>> {
        Box::pin(async { Err(LookupError::Unavailable("connection refused".into())) })
    }
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

// ---------------------------------------------------------------- ingestion

const BATCH: &str = "/api/v1/traces/batch/";

fn item(id: Option<&str>, trace: &str) -> Value {
    let mut item = json!({"type": "span", "trace_id": trace, "timestamp": "2026-11-27T12:00:00Z", "name": "llm", "body": {"tokens": 3}});
    if let Some(id) = id {
        item["id"] = json!(id);
    }
    item
}

fn plans(free_events: u64) -> HttpConfig {
    let mut plans = Plan::defaults();
    plans.get_mut("free").unwrap().monthly_events = free_events;
    HttpConfig {
        plans: Plans::new(plans),
        ..config()
    }
}

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
async fn the_spend_cap_moves_the_limit_only_on_plans_with_overage() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "read,admin").await;
    let (writer, _) = key(&f.store, f.account, "read,write").await;
    let store = f.store.clone();
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let put = |cap: Value, key: &str| {
        bearer(
            test::TestRequest::put().uri("/api/v1/me/billing/spend-cap/"),
            key,
        )
        .set_json(json!({"spend_cap_cents": cap}))
    };
    let (status, _, usage) = send(&app, put(json!(100), &admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (usage["plan"].as_str(), usage["events_limit"].as_u64()),
        (Some("free"), Some(50_000)),
        "a hard limit ignores the cap"
    );
    assert_eq!(usage["spend_cap_cents"], 100);

    store.accounts().set_plan(f.account, "pro").await.unwrap();
    let (_, _, usage) = send(&app, bearer(get("/api/v1/me/usage"), &writer)).await;
    assert_eq!(usage["events_limit"], 1_000_000 + 100 * 1000 / 50);
    let (_, _, usage) = send(&app, put(json!(99), &admin)).await;
    assert_eq!(usage["events_limit"], 1_000_000 + 1_980);
    let (_, _, usage) = send(&app, put(Value::Null, &admin)).await;
    assert_eq!(
        (
            usage["events_limit"].clone(),
            usage["spend_cap_cents"].clone()
        ),
        (Value::Null, Value::Null)
    );
    assert!(
        usage["period_start"]
            .as_str()
            .unwrap()
            .ends_with("-01T00:00:00Z")
    );

    let (status, _, body) = send(&app, put(json!(-5), &admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("spend_cap_cents:")
    );
    assert_eq!(
        send(&app, put(json!(5), &writer)).await.0,
        StatusCode::FORBIDDEN
    );
}

// ---------------------------------------------------------------- OTLP

const TRACE_JSON: &[u8] = include_bytes!("../../ingest/tests/fixtures/trace.json");

fn otlp(path: &str, key: &str, content_type: &str, body: Vec<u8>) -> test::TestRequest {
    bearer(test::TestRequest::post().uri(path), key)
        .insert_header((header::CONTENT_TYPE, content_type))
        .set_payload(body)
}

async fn raw<S, B>(app: &S, req: test::TestRequest) -> (StatusCode, header::HeaderMap, Vec<u8>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, test::read_body(res).await.to_vec())
}

#[actix_web::test]
async fn otlp_json_and_protobuf_are_answered_in_kind_and_retries_cost_nothing() {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use prost::Message;
    let f = fixture().await;
    let (key, _) = key(&f.store, f.account, "read,write").await;
    let store = f.store.clone();
    let app = app(AppState::new(f.store, config()).unwrap()).await;

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
        store.events().count(f.account).await.unwrap(),
        1,
        "the retry is a duplicate"
    );

    let logs = include_bytes!("../../ingest/tests/fixtures/logs.json").to_vec();
    let metrics = include_bytes!("../../ingest/tests/fixtures/metrics.json").to_vec();
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

// ---------------------------------------------------------------- dashboard

#[actix_web::test]
async fn setup_exists_only_until_the_first_user() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let app = app(AppState::new(store, config()).unwrap()).await;
    let res = test::call_service(&app, get("/").to_request()).await;
    assert_eq!(
        (
            res.status(),
            res.headers()
                .get(header::LOCATION)
                .unwrap()
                .to_str()
                .unwrap()
        ),
        (StatusCode::SEE_OTHER, "/setup")
    );
    let res = test::call_service(&app, get("/setup").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
    assert!(
        res.headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(
        html.contains("<label for=\"setup-email\">"),
        "form controls are labelled"
    );

    let setup = |password: &str| {
        test::TestRequest::post()
            .uri("/api/v1/setup/")
            .set_json(json!({"account": "Acme", "email": "ada@example.com", "password": password}))
    };
    let (status, _, body) = send(&app, setup("short")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let res = test::call_service(&app, setup(PASSWORD).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.response().cookies().any(|c| c.name() == "av_session"));

    let (status, _, _) = send(&app, setup(PASSWORD)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "setup cannot be replayed");
    assert_eq!(
        test::call_service(&app, get("/setup").to_request())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// The 400s of the name and e-mail rules, word for word, and which field a body wrong in
/// several is refused for: the shape of the body first, then the fields in the handler's order.
#[actix_web::test]
async fn names_and_emails_are_refused_with_the_same_messages_as_ever() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let app = app(AppState::new(store, config()).unwrap()).await;
    let html = String::from_utf8(
        test::read_body(test::call_service(&app, get("/setup").to_request()).await)
            .await
            .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains(r#"name="account" type="text" required maxlength="100""#),
        "{html}"
    );
    let long = "a".repeat(101);
    for (account, email, message) in [
        (
            "  ",
            "ada@example.com",
            "account: needs 1 to 100 characters.",
        ),
        (
            long.as_str(),
            "ada@example.com",
            "account: needs 1 to 100 characters.",
        ),
        ("Acme", "ada", "email: not an e-mail address."),
        ("Acme", "ada@localhost", "email: not an e-mail address."),
        ("", "ada", "account: needs 1 to 100 characters."),
    ] {
        let setup = test::TestRequest::post()
            .uri("/api/v1/setup/")
            .set_json(json!({"account": account, "email": email, "password": PASSWORD}));
        let (status, _, body) = send(&app, setup).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{account:?} {email:?}");
        assert_eq!(body["message"], message, "{account:?} {email:?}");
    }
    // Trimmed and lower-cased on the way in: the first user logs in in any case.
    let setup = test::TestRequest::post().uri("/api/v1/setup/").set_json(
        json!({"account": "  Acme ", "email": " Ada@Example.COM ", "password": PASSWORD}),
    );
    let (status, _, body) = send(&app, setup).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "ada@example.com");
    let (cookie, csrf) = login(&app).await;

    let create = |body: Value| {
        test::TestRequest::post()
            .uri(KEYS)
            .insert_header((header::COOKIE, cookie.clone()))
            .insert_header(("X-CSRF-Token", csrf.clone()))
            .set_json(body)
    };
    let html = String::from_utf8(
        test::read_body(
            test::call_service(
                &app,
                get("/settings/api-keys")
                    .insert_header((header::COOKIE, cookie.clone()))
                    .to_request(),
            )
            .await,
        )
        .await
        .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains(r#"name="name" type="text" required maxlength="100""#),
        "{html}"
    );
    let long = "n".repeat(101);
    for (body, message) in [
        (
            json!({"name": "", "scopes": ["read"]}),
            "name: needs 1 to 100 characters.",
        ),
        (
            json!({"name": " \t ", "scopes": ["read"]}),
            "name: needs 1 to 100 characters.",
        ),
        (
            json!({"name": long, "scopes": ["read"]}),
            "name: needs 1 to 100 characters.",
        ),
        (
            json!({"name": "", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "name: needs 1 to 100 characters.",
        ),
        (
            json!({"name": "", "scopes": []}),
            "scopes: a key needs at least one scope: read, write or admin.",
        ),
    ] {
        let (status, _, answer) = send(&app, create(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["message"], message, "{body}");
    }
    let longest = "n".repeat(100);
    for (name, kept) in [
        (longest.as_str(), longest.as_str()),
        ("  padded  ", "padded"),
    ] {
        let (status, _, answer) =
            send(&app, create(json!({"name": name, "scopes": ["read"]}))).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["name"], kept);
    }
}

#[actix_web::test]
async fn pages_send_strangers_to_the_login_and_never_show_a_key() {
    let f = fixture().await;
    let (full, _) = key(&f.store, f.account, "write").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    for page in ["/settings/api-keys", "/settings/billing", "/traces"] {
        let res = test::call_service(&app, get(page).to_request()).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(res.headers().get(header::LOCATION).unwrap(), "/login");
    }
    let (cookie, csrf) = login(&app).await;
    let res = test::call_service(
        &app,
        get("/settings/api-keys")
            .insert_header((header::COOKIE, cookie))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(html.contains(&full[..11]) && !html.contains(&full[12..]));
    assert!(html.contains(&format!("<meta name=\"csrf-token\" content=\"{csrf}\">")));
    let res = test::call_service(&app, get("/assets/app.js").to_request()).await;
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/javascript; charset=utf-8"
    );
}

// ---- Hostile and odd input ----

#[actix_web::test]
async fn two_authorization_headers_are_a_400_never_the_first_ones_200() {
    let f = fixture().await;
    let (read, _) = key(&f.store, f.account, "read").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let req = get(PING)
        .append_header((header::AUTHORIZATION, format!("Bearer {read}")))
        .append_header((header::AUTHORIZATION, "Bearer av_garbage"));
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad_request");
}

#[actix_web::test]
async fn json_endpoints_take_only_json_in_an_encoding_they_know() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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
async fn an_empty_spend_cap_body_is_a_400_and_null_removes_the_cap() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin,read").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let put = |body: Value| {
        bearer(test::TestRequest::put(), &admin)
            .uri("/api/v1/me/billing/spend-cap/")
            .set_json(body)
    };
    let (status, _, body) = send(&app, put(json!({"spend_cap_cents": 500}))).await;
    assert_eq!(
        (status, &body["spend_cap_cents"]),
        (StatusCode::OK, &json!(500))
    );
    let (status, _, body) = send(&app, put(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spend_cap_cents"),
        "{body}"
    );
    let (_, _, usage) = send(&app, bearer(get("/api/v1/me/usage/"), &admin)).await;
    assert_eq!(
        usage["spend_cap_cents"], 500,
        "a refused body changed nothing"
    );
    let (status, _, body) = send(&app, put(json!({"spend_cap_cents": null}))).await;
    assert_eq!(
        (status, &body["spend_cap_cents"]),
        (StatusCode::OK, &Value::Null)
    );
}

#[actix_web::test]
async fn a_nul_character_in_any_json_string_is_a_400() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin,write").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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
async fn answers_carrying_secrets_are_never_cached() {
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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

#[actix_web::test]
async fn logins_past_the_accounts_throttle_are_429_even_with_the_right_password() {
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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

#[actix_web::test]
async fn a_trace_named_batch_is_readable_and_a_traces_events_come_in_pages() {
    let f = fixture().await;
    let (key, _) = key(&f.store, f.account, "read,write").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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

/// The documented operations, as (path, METHOD), from the document `openapi()` builds.
fn documented_operations() -> Vec<(String, Method)> {
    let document = agentvista_http::openapi().unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            operations.push((path.clone(), method));
        }
    }
    operations
}

/// `path` with its parameters filled in with values the handlers parse.
fn concrete(path: &str) -> String {
    path.replace("{key_id}", "1").replace("{trace_id}", "t-1")
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
        // PATCH is no operation of this API: the same path answers the fallback's 404.
        assert!(!operations.contains(&(path.clone(), Method::PATCH)));
        let req = test::TestRequest::default()
            .method(Method::PATCH)
            .uri(&path);
        let (status, _, body) = send(&app, req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "PATCH {path}"
        );
    }
}

#[actix_web::test]
async fn the_openapi_document_is_served_as_json_without_credentials() {
    let f = fixture().await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "read,write,admin").await;
    let store = f.store.clone();
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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
    assert_eq!(store.keys().list(f.account).await.unwrap().len(), 1);
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
    let f = fixture().await;
    let (all, _) = key(&f.store, f.account, "read,write,admin").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
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

// ---------------------------------------------------------------- rolling keys

fn roll(id: impl std::fmt::Display, key: &str, body: Value) -> test::TestRequest {
    bearer(
        test::TestRequest::post().uri(&format!("{KEYS}{id}/roll/")),
        key,
    )
    .set_json(body)
}

#[actix_web::test]
async fn a_rolled_key_hands_over_and_the_old_one_stops_after_its_grace() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let (old, record) = key(&f.store, f.account, "read,write").await;
    let (reader, _) = key(&f.store, f.account, "read").await;
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;

    let (status, headers, body) = send(
        &app,
        roll(record.id.0, &admin, json!({"grace_seconds": 3600})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let new = body["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(body["name"], "test");
    assert_eq!(body["scopes"], json!(["read", "write"]));
    assert_eq!(body["rolled"]["id"], record.id.0);
    assert!(
        body["rolled"].get("key").is_none(),
        "the old key is never shown"
    );
    let ends: DateTime<Utc> = body["rolled"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let grace = ends - Utc::now();
    assert!(
        grace > TimeDelta::minutes(59) && grace <= TimeDelta::hours(1),
        "{ends}"
    );
    for key in [&old, &new] {
        let (status, _, _) = send(&app, bearer(get(PING), key)).await;
        assert_eq!(status, StatusCode::OK, "within the grace both keys work");
    }

    // Rolled again without grace: the old key fails on the next request.
    let new_id = body["id"].as_i64().unwrap();
    let (status, _, body) = send(&app, roll(new_id, &admin, json!({"grace_seconds": 0}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = send(&app, bearer(get(PING), &new)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let newest = body["key"].as_str().unwrap();
    let (status, _, _) = send(&app, bearer(get(PING), newest)).await;
    assert_eq!(status, StatusCode::OK);

    // Refusals: a key rolled already (revoked too, but that it rolled comes first), a grace
    // past 7 days, no grace given, another account's or no key, a key without admin.
    let cases = [
        (
            roll(new_id, &admin, json!({"grace_seconds": 0})),
            StatusCode::CONFLICT,
            "already_rolled",
        ),
        (
            roll(record.id.0, &admin, json!({"grace_seconds": 604_801})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            roll(record.id.0, &admin, json!({})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            roll(9_999, &admin, json!({"grace_seconds": 0})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            roll("x", &admin, json!({"grace_seconds": 0})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            roll(record.id.0, &reader, json!({"grace_seconds": 0})),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
    ];
    for (req, want, code) in cases {
        let (status, _, body) = send(&app, req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (want, Some(code)),
            "{body}"
        );
    }
    let (_, _, body) = send(&app, roll(new_id, &admin, json!({"grace_seconds": 0}))).await;
    assert!(
        body["message"].as_str().unwrap().contains("rolled already"),
        "{body}"
    );
    // Nothing was created by the refusals: admin, reader, and the three generations.
    assert_eq!(f.store.keys().list(f.account).await.unwrap().len(), 5);
}

// ---------------------------------------------------------------- audit log

#[actix_web::test]
async fn the_audit_log_records_who_did_what_from_where_newest_first() {
    let f = fixture().await;
    let (admin, admin_record) = key(&f.store, f.account, "admin").await;
    let (reader, _) = key(&f.store, f.account, "read").await;
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let from = |req: test::TestRequest| {
        req.peer_addr("198.51.100.9:5000".parse().unwrap())
            .insert_header((header::USER_AGENT, "audit-test/1.0"))
    };

    let (status, _, created) = send(
        &app,
        from(bearer(test::TestRequest::post().uri(KEYS), &admin))
            .set_json(json!({"name": "ci", "scopes": ["write"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_i64().unwrap();
    let (status, _, rolled) =
        send(&app, from(roll(id, &admin, json!({"grace_seconds": 60})))).await;
    assert_eq!(status, StatusCode::CREATED);
    let new_id = rolled["id"].as_i64().unwrap();
    let (status, _, _) = send(
        &app,
        from(bearer(
            test::TestRequest::delete().uri(&format!("{KEYS}{new_id}/")),
            &admin,
        )),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = send(
        &app,
        from(bearer(
            test::TestRequest::put().uri("/api/v1/me/billing/spend-cap/"),
            &admin,
        ))
        .set_json(json!({"spend_cap_cents": 500})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for password in ["wrong password", PASSWORD] {
        send(
            &app,
            from(test::TestRequest::post().uri("/api/v1/auth/login/"))
                .set_json(json!({"email": "ada@example.com", "password": password})),
        )
        .await;
    }
    // An unknown address has no account whose log could hold it.
    send(
        &app,
        from(test::TestRequest::post().uri("/api/v1/auth/login/"))
            .set_json(json!({"email": "nobody@example.com", "password": "whatever it is"})),
    )
    .await;

    let log = "/api/v1/me/audit-log/";
    let (status, _, first) = send(&app, bearer(get(&format!("{log}?limit=3")), &admin)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let actions = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        actions(&first),
        [
            "login.succeeded",
            "login.failed",
            "billing.spend_cap_changed"
        ]
    );
    let failed = &first["data"][1];
    assert_eq!(
        (&failed["actor"], &failed["target"]),
        (&json!("anonymous"), &json!("ada@example.com"))
    );
    assert!(
        first["data"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("user:")
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, _, rest) = send(
        &app,
        bearer(get(&format!("{log}?limit=3&cursor={cursor}")), &admin),
    )
    .await;
    assert_eq!(actions(&rest), ["key.revoked", "key.rolled", "key.created"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let created_entry = &rest["data"][2];
    assert_eq!(
        created_entry["actor"],
        format!("key:{}", admin_record.prefix)
    );
    assert_eq!(created_entry["target"], created["prefix"]);
    assert_eq!(created_entry["client_address"], "198.51.100.9");
    assert_eq!(created_entry["user_agent"], "audit-test/1.0");
    assert_eq!(rest["data"][1]["detail"]["grace_seconds"], 60);
    assert_eq!(rest["data"][1]["detail"]["new_prefix"], rolled["prefix"]);
    // Never a key, a hash or a password in the log.
    let all = format!("{first}{rest}");
    assert!(!all.contains(rolled["key"].as_str().unwrap()));
    assert!(!all.contains("wrong password"));

    let (status, _, _) = send(&app, bearer(get(log), &reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for query in [
        "?cursor=abc",
        "?cursor=0",
        "?limit=0",
        "?limit=101",
        "?other=1",
    ] {
        let (status, _, body) = send(&app, bearer(get(&format!("{log}{query}")), &admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
}

// ---------------------------------------------------------------- plans from the dashboard

#[actix_web::test]
async fn a_session_changes_the_plan_only_where_the_operator_allows_it() {
    let plan = |plan: &str| {
        test::TestRequest::put()
            .uri("/api/v1/me/billing/plan/")
            .set_json(json!({"plan": plan}))
    };
    // Off by default: the endpoint is as if it did not exist.
    let f = fixture().await;
    let app_off = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let (cookie, csrf) = login(&app_off).await;
    let session = |req: test::TestRequest| {
        req.insert_header((header::COOKIE, cookie.clone()))
            .insert_header(("X-CSRF-Token", csrf.clone()))
    };
    let (status, _, _) = send(&app_off, session(plan("pro"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let on = HttpConfig {
        self_serve_plans: vec!["free".into(), "pro".into()],
        ..config()
    };
    let app = app(AppState::new(f.store.clone(), on).unwrap()).await;
    let (status, _, body) = send(&app, session(plan("pro"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["plan"].as_str(), body["events_limit"].as_u64()),
        (Some("pro"), None)
    );
    let (status, _, body) = send(&app, session(plan("platinum"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("one of: free, pro"),
        "{body}"
    );
    // Without the CSRF token, or with a key (even admin): refused.
    let (status, _, _) = send(
        &app,
        plan("free").insert_header((header::COOKIE, cookie.clone())),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let (status, _, body) = send(&app, bearer(plan("free"), &admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_required"))
    );
    assert_eq!(f.store.accounts().get(f.account).await.unwrap().plan, "pro");
    // In the audit log, with the plan it left.
    let page = f.store.audit().page(f.account, None, 10).await.unwrap();
    let changed = page
        .entries
        .iter()
        .find(|e| e.action == "billing.plan_changed")
        .unwrap();
    assert_eq!(changed.detail, Some(json!({"plan": "pro", "was": "free"})));
}

#[actix_web::test]
async fn the_billing_page_names_both_ways_out_once_the_limit_is_reached() {
    let f = fixture().await;
    let (writer, _) = key(&f.store, f.account, "write").await;
    let app = app(AppState::new(f.store.clone(), plans(1)).unwrap()).await;
    let (cookie, _) = login(&app).await;
    let billing = || get("/settings/billing").insert_header((header::COOKIE, cookie.clone()));
    let page = |res: ServiceResponse<_>| async {
        String::from_utf8(test::read_body(res).await.to_vec()).unwrap()
    };
    let before = page(test::call_service(&app, billing().to_request()).await).await;
    assert!(!before.contains("over-limit"), "a banner before the limit");
    let event =
        json!({"batch": [{"type": "event", "trace_id": "t", "timestamp": "2026-11-27T12:00:00Z"}]});
    let req = bearer(
        test::TestRequest::post().uri("/api/v1/traces/batch/"),
        &writer,
    )
    .set_json(&event);
    let (status, _, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    let req = bearer(
        test::TestRequest::post().uri("/api/v1/traces/batch/"),
        &writer,
    )
    .set_json(&event);
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("larger plan or raise the spend cap"),
        "{body}"
    );
    let after = page(test::call_service(&app, billing().to_request()).await).await;
    assert!(after.contains("id=\"over-limit\""), "{after}");
    assert!(after.contains("move to a larger plan"), "{after}");
}

#[actix_web::test]
async fn a_keys_rate_limit_is_set_at_creation_shown_enforced_and_changed_by_a_roll() {
    use actix_web::middleware::from_fn;
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let state = web::Data::new(AppState::new(f.store, plans(1_000)).unwrap());
    // As the server mounts it: `request_log` adds the headers to the answers that pass.
    let app = test::init_service(
        App::new()
            .wrap(from_fn(agentvista_http::request_log))
            .configure(move |cfg| configure(cfg, state)),
    )
    .await;
    let create = |body: Value| bearer(test::TestRequest::post().uri(KEYS), &admin).set_json(body);

    // Out of bounds, or an unknown field: a 400 naming it.
    for (body, field) in [
        (
            json!({"per_second": 0, "burst": 1}),
            "rate_limit.per_second",
        ),
        (
            json!({"per_second": 1, "burst": 1_000_001}),
            "rate_limit.burst",
        ),
        (json!({"per_second": 1, "bust": 1}), "bust"),
    ] {
        let (status, _, answer) = send(
            &app,
            create(json!({"name": "x", "scopes": ["read"], "rate_limit": body})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }

    // One a second, three at once: the fourth ping in a row is refused.
    let (status, _, created) = send(
        &app,
        create(json!({"name": "slow", "scopes": ["read", "write"], "rate_limit": {"per_second": 1, "burst": 3}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["rate_limit"], json!({"per_second": 1, "burst": 3}));
    let (_, _, listed) = send(&app, bearer(get(KEYS), &admin)).await;
    assert_eq!(
        listed["data"][0]["rate_limit"],
        json!({"per_second": 1, "burst": 3})
    );
    let slow = created["key"].as_str().unwrap();
    let ping = || bearer(get("/api/v1/me/api-keys/ping/"), slow);
    for remaining in ["2", "1", "0"] {
        let (status, headers, _) = send(&app, ping()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get("ratelimit-limit").unwrap(), "3");
        assert_eq!(headers.get("ratelimit-remaining").unwrap(), remaining);
    }
    let (status, headers, body) = send(&app, ping()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(headers.get("ratelimit-remaining").unwrap(), "0");
    let reset: u64 = headers
        .get("ratelimit-reset")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&reset), "RateLimit-Reset {reset}");
    // Distinct from the month's limit: no `limit`, `used`, `resets_at`.
    assert!(body.get("used").is_none());
    // OTLP answers it as the specification's retryable 429: code 8, Retry-After.
    let (status, headers, answer) = raw(
        &app,
        otlp("/otlp/v1/traces", slow, "application/json", b"{}".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert!(headers.contains_key("ratelimit-limit"));
    let rpc: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(rpc["code"], 8);
    assert_eq!(rpc["details"][0]["reason"], "rate_limited");

    // Keys without a limit are not limited, and answer without the headers.
    let (status, headers, _) = send(&app, bearer(get(KEYS), &admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("ratelimit-limit"));

    // A roll keeps the limit unless told otherwise; `null` removes it.
    let id = created["id"].as_i64().unwrap();
    let roll = |id: i64, body: Value| {
        bearer(
            test::TestRequest::post().uri(&format!("{KEYS}{id}/roll/")),
            &admin,
        )
        .set_json(body)
    };
    let (status, _, kept) = send(&app, roll(id, json!({"grace_seconds": 60}))).await;
    assert_eq!(status, StatusCode::CREATED, "{kept}");
    assert_eq!(kept["rate_limit"], json!({"per_second": 1, "burst": 3}));
    let (_, _, changed) = send(
        &app,
        roll(
            kept["id"].as_i64().unwrap(),
            json!({"grace_seconds": 60, "rate_limit": {"per_second": 7}}),
        ),
    )
    .await;
    assert_eq!(changed["rate_limit"], json!({"per_second": 7, "burst": 7}));
    let (_, _, removed) = send(
        &app,
        roll(
            changed["id"].as_i64().unwrap(),
            json!({"grace_seconds": 60, "rate_limit": null}),
        ),
    )
    .await;
    assert_eq!(removed["rate_limit"], Value::Null);
}

// ---------------------------------------------------------------- leaked-key reports

#[actix_web::test]
async fn a_reported_key_is_revoked_and_logged_and_every_report_gets_the_same_answer() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let (leaked, leaked_record) = key(&f.store, f.account, "write").await;
    let (revoked, revoked_record) = key(&f.store, f.account, "read").await;
    let config = HttpConfig {
        throttle: agentvista_http::ThrottleConfig {
            leak_reports_per_address: agentvista_http::Bucket {
                burst: std::num::NonZeroU32::new(4).unwrap(),
                every: std::time::Duration::from_secs(3600),
            },
            ..agentvista_http::ThrottleConfig::default()
        },
        ..config()
    };
    let app = app(AppState::new(f.store.clone(), config).unwrap()).await;
    let (status, _, _) = send(
        &app,
        bearer(
            test::TestRequest::delete().uri(&format!("{KEYS}{}/", revoked_record.id)),
            &admin,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let report = |body: Value| {
        test::TestRequest::post()
            .uri("/api/v1/keys/report-leak/")
            .peer_addr("203.0.113.7:4000".parse().unwrap())
            .insert_header((header::USER_AGENT, "scanner/2.0"))
            .set_json(body)
    };
    let unknown = ApiKey::generate().unwrap();
    let source = "https://github.com/acme/app/blob/3f2a1c/config.py#L7";

    // Garbage, an unknown key, a revoked key and a live one (twice): all the same answer.
    let (status, _, garbage) = send(
        &app,
        report(json!({"keys": ["hello", "av_12345678_short", unknown.expose_secret()]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, live) = send(
        &app,
        report(json!({"keys": [revoked, leaked, format!(" {leaked}\n")], "source": source})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(garbage, json!({"status": "received"}));
    assert_eq!(live, garbage, "the answer says nothing of the strings");

    // The live key fails on the very next request; the others are as they were.
    let (status, _, _) = send(&app, bearer(get("/api/v1/me/api-keys/ping/"), &leaked)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let record = f
        .store
        .keys()
        .get(f.account, leaked_record.id)
        .await
        .unwrap();
    assert!(record.revoked_at.is_some());
    let (_, _, log) = send(&app, bearer(get("/api/v1/me/audit-log/"), &admin)).await;
    let reported: Vec<&Value> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "key.reported_leaked")
        .collect();
    assert_eq!(reported.len(), 2, "one entry per key found: {log}");
    let of = |record: &agentvista_keys::KeyRecord| {
        let prefix = record.prefix.to_string();
        *reported.iter().find(|e| e["target"] == prefix).unwrap()
    };
    assert_eq!(of(&revoked_record)["detail"]["already_revoked"], true);
    let entry = of(&leaked_record);
    assert_eq!(entry["detail"]["already_revoked"], false);
    assert_eq!(entry["actor"], "leak_report");
    assert_eq!(entry["detail"]["source"], source);
    assert_eq!(entry["client_address"], "203.0.113.7");
    assert_eq!(entry["user_agent"], "scanner/2.0");
    assert!(!log.to_string().contains(&leaked[12..]));

    // A key sent where a list belongs: a 400 that does not repeat it.
    let (status, _, body) = send(&app, report(json!({ "keys": admin }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.to_string().contains(&admin[12..]), "{body}");
    // Too many strings: a 400 naming them.
    let many: Vec<String> = (0..101).map(|n| format!("s{n}")).collect();
    let (status, _, body) = send(&app, report(json!({ "keys": many }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("keys"), "{body}");
    // The address's bucket (4 here) is spent: the fifth report is a 429 before any lookup.
    let (status, headers, body) = send(&app, report(json!({"keys": [admin]}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_attempts");
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (status, _, _) = send(&app, bearer(get(KEYS), &admin)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the throttled report revoked nothing"
    );
}
