//! Handler tests: the whole API mounted with `configure`, driven by `actix_web::test` over an
//! in-memory SQLite store. One integration binary for the crate: the kit here (a store with an
//! account and a user, the app, keys, requests), the tests by feature in `api/<feature>.rs`.
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
    AccountId, Actor, ApiKey, Expiry, KeyHash, KeyId, KeyRecord, LookupError, Revoked, Role,
};
use agentvista_quota::{Plan, Plans};
use agentvista_store::{NewKey, Store, StoreOptions};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

// The suite, by feature.
#[path = "api/audit.rs"]
mod audit;
#[path = "api/auth.rs"]
mod auth;
#[path = "api/billing.rs"]
mod billing;
#[path = "api/dashboard.rs"]
mod dashboard;
#[path = "api/ingest.rs"]
mod ingest;
#[path = "api/invitations.rs"]
mod invitations;
#[path = "api/keys.rs"]
mod keys;
#[path = "api/leaks.rs"]
mod leaks;
#[path = "api/members.rs"]
mod members;
#[path = "api/memory.rs"]
mod memory;
#[path = "api/otlp.rs"]
mod otlp;
#[path = "api/password.rs"]
mod password;
#[path = "api/roles.rs"]
mod roles;
#[path = "api/rolls.rs"]
mod rolls;
#[path = "api/routing.rs"]
mod routing;
#[path = "api/sessions.rs"]
mod sessions;
#[path = "api/throttles.rs"]
mod throttles;
#[path = "api/traces.rs"]
mod traces;

const PASSWORD: &str = "correct horse battery";

struct Fixture {
    store: Store,
    account: AccountId,
}

async fn fixture() -> Fixture {
    fixture_with(StoreOptions::default()).await
}

/// [`fixture`] over a store opened with `options`.
async fn fixture_with(options: StoreOptions) -> Fixture {
    let store = Store::connect_with("sqlite::memory:", options)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let account = store
        .accounts()
        .create(&"acme".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    let hash = password_hash();
    store
        .users()
        .create(
            account,
            Role::Owner,
            &"ada@example.com".parse().unwrap(),
            &hash,
            Utc::now(),
        )
        .await
        .unwrap();
    Fixture { store, account }
}

/// A handler test's world: the store with the account "acme" and its user (`PASSWORD`), and
/// the whole API mounted over it. Keys ([`TestApp::key`]) and a logged-in session
/// ([`TestApp::session`]) on demand.
struct TestApp<S> {
    app: S,
    store: Store,
    account: AccountId,
}

/// [`TestApp`] with the suite's `config()`.
async fn test_app() -> TestApp<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    test_app_with(config()).await
}

/// [`TestApp`] with `config`.
async fn test_app_with(
    config: HttpConfig,
) -> TestApp<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    test_app_over(config, StoreOptions::default()).await
}

/// [`TestApp`] with `config`, over a store opened with `options`.
async fn test_app_over(
    config: HttpConfig,
    options: StoreOptions,
) -> TestApp<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let f = fixture_with(options).await;
    let app = app(AppState::new(f.store.clone(), config).unwrap()).await;
    TestApp {
        app,
        store: f.store,
        account: f.account,
    }
}

impl<S, B> TestApp<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// A new key of `scopes` in the account: the full key.
    async fn key(&self, scopes: &str) -> String {
        key(&self.store, self.account, scopes).await.0
    }

    /// A logged-in session of the account's user: its cookie and CSRF token.
    async fn session(&self) -> (String, String) {
        login(&self.app).await
    }

    /// A new person `name@example.com` in the account with `role` (password [`PASSWORD`]),
    /// logged in: their id, and their session's cookie and CSRF token.
    async fn member(&self, name: &str, role: Role) -> (agentvista_store::UserId, String, String) {
        let email = format!("{name}@example.com");
        let user = self
            .store
            .users()
            .create(
                self.account,
                role,
                &email.parse().unwrap(),
                &password_hash(),
                Utc::now(),
            )
            .await
            .unwrap();
        let (cookie, csrf) = login_as(&self.app, &email).await;
        (user.id, cookie, csrf)
    }
}

/// [`PASSWORD`]'s hash, made once for the whole suite (hashing is slow by design).
fn password_hash() -> agentvista_keys::password::PasswordHash {
    static HASH: std::sync::LazyLock<agentvista_keys::password::PasswordHash> =
        std::sync::LazyLock::new(|| hash_password(&Password::new(PASSWORD.to_owned())).unwrap());
    HASH.clone()
}

/// `req` with a session's cookie and CSRF token.
fn with_session(req: test::TestRequest, (cookie, csrf): (&str, &str)) -> test::TestRequest {
    req.insert_header((header::COOKIE, cookie.to_owned()))
        .insert_header(("X-CSRF-Token", csrf.to_owned()))
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

/// Logs in as the account's first user; returns the cookie header value and the CSRF token.
async fn login<S, B>(app: &S) -> (String, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    login_as(app, "ADA@example.com").await
}

/// Logs in as `email` (password [`PASSWORD`]); returns the cookie header value and the CSRF
/// token.
async fn login_as<S, B>(app: &S, email: &str) -> (String, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = test::TestRequest::post()
        .uri("/api/v1/auth/login/")
        .set_json(json!({"email": email, "password": PASSWORD}));
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
    assert_eq!(body["user"]["email"], email.to_lowercase());
    (
        format!("av_session={}", cookie.value()),
        body["csrf_token"].as_str().unwrap().to_owned(),
    )
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

fn roll(id: impl std::fmt::Display, key: &str, body: Value) -> test::TestRequest {
    bearer(
        test::TestRequest::post().uri(&format!("{KEYS}{id}/roll/")),
        key,
    )
    .set_json(body)
}
