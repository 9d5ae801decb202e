//! The bad-input campaign: a table of hostile and clumsy requests, each with the answer the
//! contract (authentication and errors, as `docs/api.md` writes them) gives it. After each group of cases the
//! server must be healthy, no answer may have been a 5xx, no request may have hung, and the
//! account's usage must equal exactly what the accepted requests reported. Every case runs;
//! the test then fails listing each case whose answer differed, with what came back.

use std::fmt::Write as _;

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::harness::{self, Db, PASSWORD, Server, Session, bearer};
use crate::wire;

mod bodies;
mod encodings;
mod headers;
mod ids;
mod otlp;
mod sessions;
use bodies::bodies_and_json;
use encodings::{content_types, encodings};
use headers::headers_and_auth;
use ids::ids_and_paths;
use otlp::otlp;
use sessions::sessions_and_csrf;

const PING: &str = "/api/v1/me/api-keys/ping/";
const KEYS: &str = "/api/v1/me/api-keys/";
const LOGIN: &str = "/api/v1/auth/login/";
const LOGOUT: &str = "/api/v1/auth/logout/";
const SESSION: &str = "/api/v1/auth/session/";
const SETUP: &str = "/api/v1/setup/";
const CAP: &str = "/api/v1/me/billing/spend-cap/";
const BATCH: &str = "/api/v1/traces/batch/";
const TRACES: &str = "/api/v1/traces/";
const USAGE: &str = "/api/v1/me/usage/";
const OTLP_TRACES: &str = "/otlp/v1/traces";
const OTLP_LOGS: &str = "/otlp/v1/logs";
const OTLP_METRICS: &str = "/otlp/v1/metrics";

const EMAIL: &str = "ada@example.com";
const MAX_BODY: usize = 5 * 1024 * 1024;
/// The contract's cap on events per OTLP request.
const MAX_OTLP_EVENTS: usize = 10_000;
const AT: &str = "2026-11-27T12:00:00Z";
const WWW_MISSING: &str = r#"Bearer realm="agentvista""#;
const WWW_INVALID: &str = r#"Bearer realm="agentvista", error="invalid_token""#;
const JSON: &str = "application/json";
const PROTOBUF: &str = "application/x-protobuf";

/// What a case must get back.
#[derive(Clone, Debug)]
enum Expect {
    /// A JSON error body with one of these statuses and `error` codes.
    Error(Vec<(u16, &'static str)>),
    /// An OTLP `google.rpc.Status` in JSON (`proto == false`) or protobuf, with this status and
    /// gRPC code.
    Otlp { status: u16, code: i64, proto: bool },
    /// A success with this status.
    Success(u16),
}

/// How the request goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    /// Through reqwest, body sent in full.
    Client,
    /// By hand: headers with `Content-Length: declared`, and never a byte of the body — an
    /// answer must come from the headers alone.
    HeadersOnly { declared: usize },
}

#[derive(Clone, Debug)]
struct Case {
    name: String,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Vec<u8>>,
    wire: Wire,
    expect: Expect,
    /// Headers the answer must carry (value must contain the given text).
    expect_headers: Vec<(&'static str, String)>,
    /// Fields the JSON answer must have, with these values.
    expect_fields: Vec<(&'static str, Value)>,
    /// For an OTLP request: how many events it carries, counted whenever it gets a 200.
    otlp_events: u64,
}

impl Case {
    fn new(name: impl Into<String>, method: Method, path: impl Into<String>) -> Case {
        Case {
            name: name.into(),
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
            wire: Wire::Client,
            expect: Expect::Success(200),
            expect_headers: Vec::new(),
            expect_fields: Vec::new(),
            otlp_events: 0,
        }
    }

    fn get(name: impl Into<String>, path: impl Into<String>) -> Case {
        Case::new(name, Method::GET, path)
    }

    fn post(name: impl Into<String>, path: impl Into<String>) -> Case {
        Case::new(name, Method::POST, path)
    }

    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Case {
        self.headers.push((
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_ref()).unwrap(),
        ));
        self
    }

    fn key(self, key: &str) -> Case {
        self.header("authorization", format!("Bearer {key}"))
    }

    fn cookie(self, session: &Session) -> Case {
        self.header("cookie", &session.cookie)
    }

    fn csrf(self, session: &Session) -> Case {
        self.header("x-csrf-token", &session.csrf)
    }

    /// A body with `Content-Type: application/json`.
    fn json(self, body: impl Into<Vec<u8>>) -> Case {
        self.header("content-type", JSON).raw(body)
    }

    /// A body with no `Content-Type` (add one with [`Case::header`]).
    fn raw(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some(body.into());
        self
    }

    fn headers_only(mut self, declared: usize) -> Case {
        self.wire = Wire::HeadersOnly { declared };
        self
    }

    fn err(mut self, status: u16, code: &'static str) -> Case {
        self.expect = Expect::Error(vec![(status, code)]);
        self
    }

    /// Where the contract allows either of two answers.
    fn err_either(mut self, first: (u16, &'static str), second: (u16, &'static str)) -> Case {
        self.expect = Expect::Error(vec![first, second]);
        self
    }

    fn ok(mut self, status: u16) -> Case {
        self.expect = Expect::Success(status);
        self
    }

    fn otlp_err(mut self, status: u16, code: i64) -> Case {
        let proto = self
            .headers
            .iter()
            .any(|(n, v)| n == "content-type" && v.to_str().is_ok_and(|v| v.starts_with(PROTOBUF)));
        self.expect = Expect::Otlp {
            status,
            code,
            proto,
        };
        self
    }

    fn otlp_ok(mut self, events: u64) -> Case {
        self.expect = Expect::Success(200);
        self.carries(events)
    }

    /// The events an OTLP body holds, counted if a server wrongly accepts it.
    fn carries(mut self, events: u64) -> Case {
        self.otlp_events = events;
        self
    }

    fn with_header(mut self, name: &'static str, contains: impl Into<String>) -> Case {
        self.expect_headers.push((name, contains.into()));
        self
    }

    fn with_field(mut self, name: &'static str, value: Value) -> Case {
        self.expect_fields.push((name, value));
        self
    }

    fn no_store(self) -> Case {
        self.with_header("cache-control", "no-store")
    }
}

/// The credentials and ids the cases are built from.
struct Ctx {
    read: String,
    write: String,
    admin: String,
    all: String,
    revoked: String,
    expired: String,
    /// Well-formed, right checksum, never issued.
    unknown: String,
    bad_checksum: String,
    session: Session,
    bob_session: Session,
    /// A session that logged out.
    stale_cookie: String,
    bob_read: String,
    bob_admin: String,
    bob_key_id: String,
    revoked_id: String,
    bob_trace: String,
}

fn event(extra: &Value) -> Value {
    let mut event = json!({"type": "span", "trace_id": "campaign", "timestamp": AT});
    for (k, v) in extra.as_object().unwrap() {
        event[k] = v.clone();
    }
    event
}

/// A batch body of one event with `extra` fields merged in.
fn batch_of(extra: &Value) -> Vec<u8> {
    json!({"batch": [event(extra)]}).to_string().into_bytes()
}

fn valid_batch() -> Vec<u8> {
    batch_of(&json!({}))
}

fn login_body() -> Vec<u8> {
    json!({"email": EMAIL, "password": PASSWORD})
        .to_string()
        .into_bytes()
}

fn setup_body() -> Vec<u8> {
    br#"{"account": "Evil", "email": "eve@example.com", "password": "taking over now"}"#.to_vec()
}

fn key_body() -> Vec<u8> {
    br#"{"name": "campaign", "scopes": ["read"]}"#.to_vec()
}

fn cap_body() -> Vec<u8> {
    br#"{"spend_cap_cents": null}"#.to_vec()
}

/// A fresh (trace id, span id) pair, unique within the run, as OTLP hex.
fn span_ids(n: u64) -> (String, String) {
    (
        format!("{:032x}", 0xca00_0000_u64 + n),
        format!("{:016x}", n + 1),
    )
}

fn otlp_spans_json(spans: &[(String, String)], attributes: &Value) -> Vec<u8> {
    let spans: Vec<Value> = spans
        .iter()
        .map(|(t, s)| {
            json!({"traceId": t, "spanId": s, "name": "llm call", "kind": 3,
                   "startTimeUnixNano": "1764244800000000000", "endTimeUnixNano": "1764244801000000000",
                   "attributes": attributes})
        })
        .collect();
    json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
        .to_string()
        .into_bytes()
}

fn otlp_logs_json(records: usize, body: &str) -> Vec<u8> {
    let record = json!({"timeUnixNano": "1764244800000000000", "severityNumber": 9,
                        "body": {"stringValue": body}});
    let records = vec![record; records];
    json!({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]})
        .to_string()
        .into_bytes()
}

fn otlp_metrics_json(points: usize, name: &str) -> Vec<u8> {
    let point = json!({"timeUnixNano": "1764244800000000000", "asInt": "1"});
    let points = vec![point; points];
    json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": name, "gauge": {"dataPoints": points}}
    ]}]}]})
    .to_string()
    .into_bytes()
}

/// The JSON endpoints, each with credentials and a body it would accept.
/// A JSON endpoint: label, method, path, credentials, and a body it would accept.
type JsonEndpoint = (&'static str, Method, &'static str, Option<String>, Vec<u8>);

fn json_endpoints(ctx: &Ctx) -> Vec<JsonEndpoint> {
    vec![
        ("login", Method::POST, LOGIN, None, login_body()),
        (
            "key create",
            Method::POST,
            KEYS,
            Some(ctx.admin.clone()),
            key_body(),
        ),
        (
            "spend cap",
            Method::PUT,
            CAP,
            Some(ctx.admin.clone()),
            cap_body(),
        ),
        (
            "batch",
            Method::POST,
            BATCH,
            Some(ctx.write.clone()),
            valid_batch(),
        ),
    ]
}

fn endpoint_case(name: String, method: &Method, path: &str, key: Option<&String>) -> Case {
    let case = Case::new(name, method.clone(), path);
    match key {
        Some(key) => case.key(key),
        None => case,
    }
}

/// Counters the campaign keeps while it runs.
#[derive(Default)]
struct Tally {
    /// Events the server said it accepted.
    accepted: u64,
    failures: Vec<String>,
    cases: usize,
}

fn header_text(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run_case(server: &Server, http: &reqwest::Client, case: &Case, tally: &mut Tally) {
    tally.cases += 1;
    let (status, headers, body) = match case.wire {
        Wire::Client => {
            let mut req = http.request(case.method.clone(), server.url(&case.path));
            for (name, value) in &case.headers {
                req = req.header(name.clone(), value.clone());
            }
            if let Some(body) = &case.body {
                req = req.body(body.clone());
            }
            let res = match req.send().await {
                Ok(res) => res,
                Err(err) => {
                    tally
                        .failures
                        .push(format!("{}: no answer: {err:?}", case.name));
                    return;
                }
            };
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            match res.bytes().await {
                Ok(body) => (status, headers, body.to_vec()),
                Err(err) => {
                    tally
                        .failures
                        .push(format!("{}: body not read: {err:?}", case.name));
                    return;
                }
            }
        }
        Wire::HeadersOnly { declared } => {
            let mut head = format!("{} {} HTTP/1.1", case.method, case.path);
            for (name, value) in &case.headers {
                let _ = write!(head, "\r\n{name}: {}", value.to_str().unwrap());
            }
            let addr = server.base().trim_start_matches("http://").to_owned();
            let answer = tokio::task::spawn_blocking(move || {
                wire::raw_exchange(&addr, &head, declared, &[])
            })
            .await
            .unwrap();
            match answer {
                Ok(raw) => {
                    let mut headers = reqwest::header::HeaderMap::new();
                    for (n, v) in raw.headers {
                        if let (Ok(n), Ok(v)) = (
                            HeaderName::from_bytes(n.as_bytes()),
                            HeaderValue::from_str(&v),
                        ) {
                            headers.append(n, v);
                        }
                    }
                    (raw.status, headers, raw.body)
                }
                Err(err) => {
                    tally
                        .failures
                        .push(format!("{}: no answer from the headers: {err}", case.name));
                    return;
                }
            }
        }
    };
    server.secrets().observe(&headers, &body);
    // Usage must follow what the server reported, right or wrong.
    if status == 200 && case.method == Method::POST {
        if case.path.starts_with(BATCH) {
            if let Ok(json) = serde_json::from_slice::<Value>(&body) {
                tally.accepted += json["accepted"].as_u64().unwrap_or(0);
            }
        } else if case.path.starts_with("/otlp/") {
            tally.accepted += case.otlp_events;
        }
    }
    let text = String::from_utf8_lossy(&body);
    let shown = &text[..text.len().min(300)];
    let mut fail = |what: String| {
        tally
            .failures
            .push(format!("{}: {what} (got {status}: {shown})", case.name));
    };
    if status >= 500 {
        fail("a 5xx".into());
        return;
    }
    match &case.expect {
        Expect::Success(expected) => {
            if status != *expected {
                fail(format!("expected {expected}"));
            }
        }
        Expect::Error(expected) => {
            let code = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned));
            let matched = expected
                .iter()
                .any(|(s, c)| *s == status && code.as_deref() == Some(*c));
            if !matched {
                fail(format!("expected {expected:?}"));
            }
        }
        Expect::Otlp {
            status: expected,
            code,
            proto,
        } => {
            let got = if *proto {
                wire::rpc_status_code(&body)
            } else {
                serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["code"].as_i64())
            };
            if status != *expected || got != Some(*code) {
                fail(format!(
                    "expected {expected} with a {} google.rpc.Status code {code}",
                    if *proto { "protobuf" } else { "JSON" }
                ));
            }
        }
    }
    let json = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    for (name, value) in &case.expect_fields {
        if json[name] != *value {
            fail(format!("expected {name}: {value}"));
        }
    }
    for (name, contains) in &case.expect_headers {
        let value = header_text(&headers, name);
        if !value.contains(contains.as_str()) {
            fail(format!(
                "expected {name} containing {contains:?}, got {value:?}"
            ));
        }
    }
}

/// After a group: healthy, and usage equal to what was accepted.
async fn check_after_group(
    server: &Server,
    http: &reqwest::Client,
    ctx: &Ctx,
    group: &str,
    tally: &mut Tally,
) {
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "after {group}: /healthz");
    let usage: Value = bearer(http.get(server.url(USAGE)), &ctx.read)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    if usage["events_used"] != tally.accepted {
        tally.failures.push(format!(
            "after {group}: events_used {} but the accepted requests reported {}",
            usage["events_used"], tally.accepted
        ));
    }
}

async fn setup_ctx(db: &Db, server: &Server, http: &reqwest::Client) -> Ctx {
    let revoked = db.create_key(EMAIL, "revoked", "read");
    db.revoke_key(EMAIL, &revoked);
    let expired = db.create_key(EMAIL, "expired", "read");
    db.set_expiry(
        &expired[..11],
        chrono::Utc::now() - chrono::TimeDelta::seconds(1),
    )
    .await;
    let read = db.create_key(EMAIL, "reader", "read");
    let admin = db.create_key(EMAIL, "admin", "admin");
    let all = db.create_key(EMAIL, "all", "read,write,admin");
    let bob_read = db.create_key("bob@example.com", "bob", "read,write");
    let bob_admin = db.create_key("bob@example.com", "bob-admin", "admin");
    let listed: Value = server.get_json(http, KEYS, &admin).await;
    let id_of = |listed: &Value, key: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["prefix"] == key[..11])
            .unwrap()["id"]
            .to_string()
    };
    let revoked_id = id_of(&listed, &revoked);
    let bob_listed: Value = server.get_json(http, KEYS, &bob_admin).await;
    let bob_key_id = id_of(&bob_listed, &bob_read);
    let bob_trace = "bobs-private-trace".to_owned();
    let res = bearer(http.post(server.url(BATCH)), &bob_read)
        .json(&json!({"batch": [event(&json!({"trace_id": bob_trace}))]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let stale = server.login(http, EMAIL, PASSWORD).await;
    let res = http
        .post(server.url(LOGOUT))
        .header("cookie", &stale.cookie)
        .header("x-csrf-token", &stale.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let mut bad_checksum = read.clone();
    bad_checksum.replace_range(49.., if read.ends_with('x') { "y" } else { "x" });
    let unknown = agentvista_keys::ApiKey::generate()
        .unwrap()
        .expose_secret()
        .to_owned();
    Ctx {
        write: db.create_key(EMAIL, "writer", "write"),
        read,
        admin,
        all,
        revoked,
        expired,
        unknown,
        bad_checksum,
        session: server.login(http, EMAIL, PASSWORD).await,
        bob_session: server.login(http, "bob@example.com", PASSWORD).await,
        stale_cookie: stale.cookie,
        bob_read,
        bob_admin,
        bob_key_id,
        revoked_id,
        bob_trace,
    }
}

/// Reads every event of a trace, following `next_cursor` where the server pages.
pub(crate) async fn trace_events(
    server: &Server,
    http: &reqwest::Client,
    key: &str,
    trace_id: &str,
    limit: Option<u32>,
) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut path = format!("{TRACES}{trace_id}/");
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        if let Some(cursor) = &cursor {
            query.push(format!("cursor={cursor}"));
        }
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let res = bearer(http.get(server.url(&path)), key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let page: Value = res.json().await.unwrap();
        assert_eq!(page["trace_id"], trace_id);
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(!next.is_empty());
                cursor = Some(next.to_owned());
            }
            None => return events,
        }
    }
    panic!("{trace_id}: the cursor never ended");
}

/// The positive halves of the new paths: a trace named `batch`, and trace events in pages.
async fn trace_reads(server: &Server, http: &reqwest::Client, ctx: &Ctx, tally: &mut Tally) {
    let events: Vec<Value> = (0..5)
        .map(|i| {
            json!({"id": format!("paged-{i}"), "type": "event", "trace_id": "paged",
                   "timestamp": format!("2026-11-27T12:00:0{i}Z")})
        })
        .chain([json!({"id": "in-batch", "type": "trace", "trace_id": "batch", "timestamp": AT})])
        .collect();
    let res = bearer(http.post(server.url(BATCH)), &ctx.write)
        .json(&json!({"batch": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    tally.accepted += body["accepted"].as_u64().unwrap();

    tally.cases += 1;
    let res = bearer(http.get(server.url("/api/v1/traces/batch/")), &ctx.read)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status != 200 || body["events"][0]["id"] != "in-batch" {
        tally.failures.push(format!(
            "GET /api/v1/traces/batch/: the trace named batch is not readable ({status}: {body})"
        ));
    }

    tally.cases += 1;
    let res = bearer(
        http.get(server.url("/api/v1/traces/paged/?limit=2")),
        &ctx.read,
    )
    .send()
    .await
    .unwrap();
    let first: Value = res.json().await.unwrap_or(Value::Null);
    let paged = first["events"].as_array().map_or(0, Vec::len) == 2
        && first["next_cursor"].as_str().is_some_and(|c| !c.is_empty());
    if paged {
        let all = trace_events(server, http, &ctx.read, "paged", Some(2)).await;
        let ids: Vec<&str> = all.iter().filter_map(|e| e["id"].as_str()).collect();
        assert_eq!(ids, ["paged-0", "paged-1", "paged-2", "paged-3", "paged-4"]);
    } else {
        tally.failures.push(format!(
            "GET /api/v1/traces/paged/?limit=2: expected 2 events and a next_cursor, got {first}"
        ));
    }
}

pub(crate) async fn hostile_and_clumsy_requests_get_the_contracts_answers(db: Db) {
    db.create_user(EMAIL);
    db.create_user("bob@example.com");
    let server = Server::start(&db).await;
    let http = harness::client();
    let ctx = setup_ctx(&db, &server, &http).await;
    for secret in [
        &ctx.unknown,
        &ctx.bad_checksum,
        "not the password at all",
        "taking over now",
    ] {
        server.secret(secret);
    }
    let mut tally = Tally::default();

    let groups: [(&str, Vec<Case>); 6] = [
        ("headers and auth", headers_and_auth(&ctx)),
        ("bodies and JSON", bodies_and_json(&ctx)),
        ("encodings", encodings(&ctx)),
        ("content types", content_types(&ctx)),
        ("ids and paths", ids_and_paths(&ctx)),
        ("sessions and CSRF", sessions_and_csrf(&ctx)),
    ];
    for (group, cases) in groups {
        for case in &cases {
            run_case(&server, &http, case, &mut tally).await;
        }
        if group == "ids and paths" {
            trace_reads(&server, &http, &ctx, &mut tally).await;
        }
        check_after_group(&server, &http, &ctx, group, &mut tally).await;
    }
    let otlp_cases = otlp(&ctx);
    for case in &otlp_cases {
        run_case(&server, &http, case, &mut tally).await;
    }
    check_after_group(&server, &http, &ctx, "OTLP", &mut tally).await;

    let res = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cases = tally.cases;
    let failures = std::mem::take(&mut tally.failures);
    server.stop_and_check_logs(&[]).await;
    assert!(cases >= 150, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `POST /api/v1/setup/` while the installation has no user: only JSON, and the session it
/// starts is not cached.
pub(crate) async fn first_run_setup_takes_only_json(db: Db) {
    let server = Server::start(&db).await;
    let http = harness::client();
    let password = "first run password";
    server.secret(password);
    let body = json!({"account": "Acme", "email": EMAIL, "password": password}).to_string();
    let mut cases = Vec::new();
    let post = |what: &str| Case::post(format!("setup: {what}"), SETUP);
    cases.push(
        post("no Content-Type")
            .raw(body.clone())
            .err(415, "unsupported_media_type"),
    );
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        cases.push(
            post(content_type)
                .header("content-type", content_type)
                .raw(body.clone())
                .err(415, "unsupported_media_type"),
        );
    }
    for encoding in ["br", "zstd", "x-unknown"] {
        cases.push(
            post(&format!("Content-Encoding {encoding}"))
                .header("content-encoding", encoding)
                .json(body.clone())
                .err(415, "unsupported_media_type"),
        );
    }
    for (what, bad) in [
        ("not JSON", "{".to_owned()),
        (
            "unknown field",
            json!({"account": "Acme", "email": EMAIL, "password": password, "plan": "pro"})
                .to_string(),
        ),
        (
            "NUL in the password",
            json!({"account": "Acme", "email": EMAIL, "password": "first\u{0}run password"})
                .to_string(),
        ),
        (
            "NUL in the account",
            json!({"account": "Ac\u{0}me", "email": EMAIL, "password": password}).to_string(),
        ),
    ] {
        cases.push(post(what).json(bad).err(400, "bad_request"));
    }
    cases.push(
        post("valid")
            .header("content-type", "application/json; charset=utf-8")
            .raw(body.clone())
            .ok(200)
            .no_store(),
    );
    cases.push(post("replayed").json(body).err(404, "not_found"));
    cases.push(
        Case::post("login as the first user", LOGIN)
            .json(json!({"email": EMAIL, "password": password}).to_string())
            .ok(200)
            .no_store(),
    );
    let mut tally = Tally::default();
    for case in &cases {
        run_case(&server, &http, case, &mut tally).await;
    }
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    server.stop_and_check_logs(&[]).await;
    assert!(
        tally.failures.is_empty(),
        "{} of {} cases failed:\n{}",
        tally.failures.len(),
        tally.cases,
        tally.failures.join("\n")
    );
}
