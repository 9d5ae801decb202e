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

fn headers_and_auth(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    // Every authenticated endpoint, without credentials and with each flavour of bad key.
    // Bodies that would be accepted: only the credentials are at fault.
    let endpoints: Vec<(Method, String, Option<Vec<u8>>)> = vec![
        (Method::GET, PING.into(), None),
        (Method::GET, KEYS.into(), None),
        (Method::POST, KEYS.into(), Some(key_body())),
        (Method::DELETE, format!("{KEYS}{}/", ctx.revoked_id), None),
        (Method::GET, USAGE.into(), None),
        (Method::PUT, CAP.into(), Some(cap_body())),
        (Method::GET, TRACES.into(), None),
        (Method::GET, format!("{TRACES}campaign/"), None),
        (Method::POST, BATCH.into(), Some(valid_batch())),
    ];
    let request = |name: String, (method, path, body): &(Method, String, Option<Vec<u8>>)| {
        let case = Case::new(name, method.clone(), path);
        match body {
            Some(body) => case.json(body.clone()),
            None => case,
        }
    };
    for endpoint in &endpoints {
        cases.push(
            request(
                format!("no credentials: {} {}", endpoint.0, endpoint.1),
                endpoint,
            )
            .err(401, "missing_api_key")
            .with_header("www-authenticate", WWW_MISSING),
        );
    }
    let bad_keys: Vec<(&str, Vec<u8>)> = vec![
        ("other scheme", format!("Basic {}", ctx.read).into_bytes()),
        ("empty token", b"Bearer".to_vec()),
        ("blank token", b"Bearer    ".to_vec()),
        ("malformed", b"Bearer av_123".to_vec()),
        (
            "bad checksum",
            format!("Bearer {}", ctx.bad_checksum).into_bytes(),
        ),
        ("unknown", format!("Bearer {}", ctx.unknown).into_bytes()),
        ("revoked", format!("Bearer {}", ctx.revoked).into_bytes()),
        ("expired", format!("Bearer {}", ctx.expired).into_bytes()),
        (
            "trailing byte",
            format!("Bearer {}x", ctx.read).into_bytes(),
        ),
        (
            "upper-cased",
            format!("Bearer {}", ctx.read.to_uppercase()).into_bytes(),
        ),
        ("non-UTF-8", b"Bearer av_\xff\xfe\x80".to_vec()),
        (
            "4 KiB token",
            format!("Bearer av_{}", "a".repeat(4096)).into_bytes(),
        ),
        ("key in the scheme", ctx.read.clone().into_bytes()),
    ];
    for (i, (what, value)) in bad_keys.iter().enumerate() {
        // Each flavour on ping, and on one more endpoint in turn.
        let other = &endpoints[1 + i % (endpoints.len() - 1)];
        for endpoint in [&endpoints[0], other] {
            cases.push(
                request(
                    format!("{what} key: {} {}", endpoint.0, endpoint.1),
                    endpoint,
                )
                .header("authorization", value)
                .err(401, "invalid_api_key")
                .with_header("www-authenticate", WWW_INVALID),
            );
        }
    }
    // A bad key beside a good cookie: the cookie is ignored.
    cases.push(
        Case::get("bad key with a valid session cookie", USAGE)
            .key(&ctx.unknown)
            .cookie(&ctx.session)
            .err(401, "invalid_api_key"),
    );
    // Two Authorization headers: malformed, whatever they hold (the contract says so).
    type Twice<'a> = (&'a str, Method, &'a str, &'a str, &'a str, Option<Vec<u8>>);
    let twice: Vec<Twice> = vec![
        (
            "same key twice",
            Method::GET,
            PING,
            &ctx.read,
            &ctx.read,
            None,
        ),
        (
            "good then bad",
            Method::GET,
            PING,
            &ctx.read,
            &ctx.unknown,
            None,
        ),
        (
            "bad then good",
            Method::GET,
            PING,
            &ctx.unknown,
            &ctx.read,
            None,
        ),
        (
            "read then write",
            Method::GET,
            USAGE,
            &ctx.read,
            &ctx.write,
            None,
        ),
        (
            "two write keys on batch",
            Method::POST,
            BATCH,
            &ctx.write,
            &ctx.write,
            Some(valid_batch()),
        ),
        (
            "two admin keys on key create",
            Method::POST,
            KEYS,
            &ctx.admin,
            &ctx.admin,
            Some(key_body()),
        ),
    ];
    for (what, method, path, first, second, body) in twice {
        let mut case = Case::new(format!("two Authorization headers: {what}"), method, path)
            .key(first)
            .key(second);
        if let Some(body) = body {
            case = case.json(body);
        }
        cases.push(case.err(400, "bad_request"));
    }
    cases.push(
        Case::post("two Authorization headers on OTLP", OTLP_TRACES)
            .key(&ctx.write)
            .key(&ctx.write)
            .header("content-type", JSON)
            .raw(otlp_spans_json(&[span_ids(900)], &json!([])))
            .carries(1)
            .otlp_err(400, 3),
    );
    // Wrong scope: 403 with the scope named.
    for (key, method, path, scope, body) in [
        (&ctx.write, Method::GET, PING, "read", None),
        (&ctx.write, Method::GET, USAGE, "read", None),
        (&ctx.admin, Method::GET, TRACES, "read", None),
        (&ctx.read, Method::GET, KEYS, "admin", None),
        (&ctx.read, Method::POST, KEYS, "admin", Some(key_body())),
        (&ctx.read, Method::PUT, CAP, "admin", Some(cap_body())),
        (&ctx.read, Method::POST, BATCH, "write", Some(valid_batch())),
        (
            &ctx.admin,
            Method::POST,
            BATCH,
            "write",
            Some(valid_batch()),
        ),
    ] {
        let mut case = Case::new(
            format!("scope {scope} missing: {method} {path}"),
            method,
            path,
        )
        .key(key);
        if let Some(body) = body {
            case = case.json(body);
        }
        cases.push(
            case.err(403, "insufficient_scope")
                .with_header("www-authenticate", format!(r#"scope="{scope}""#)),
        );
    }
    // A well-formed random key with a 5 MiB body: refused from the headers, before any byte.
    for (path, content_type) in [
        (BATCH, JSON),
        (KEYS, JSON),
        (CAP, JSON),
        (OTLP_TRACES, PROTOBUF),
    ] {
        let method = if path == CAP {
            Method::PUT
        } else {
            Method::POST
        };
        let case = Case::new(
            format!("random key, 5 MiB declared, body never sent: {path}"),
            method,
            path,
        )
        .key(&ctx.unknown)
        .header("content-type", content_type)
        .headers_only(MAX_BODY);
        cases.push(if path == OTLP_TRACES {
            case.otlp_err(401, 16)
        } else {
            case.err(401, "invalid_api_key")
        });
    }
    cases
}

fn bodies_and_json(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    let malformed: [(&str, &[u8]); 9] = [
        ("empty body", b""),
        ("not JSON", b"not json"),
        ("truncated", b"{\"a\": "),
        ("array", b"[]"),
        ("null", b"null"),
        ("string", b"\"text\""),
        ("trailing garbage", b"{} x"),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}"),
        ("lone surrogate", b"{\"name\": \"\\ud800\"}"),
    ];
    for (label, method, path, key, _) in json_endpoints(ctx) {
        for (what, body) in malformed {
            // Every login attempt spends the client address's throttle, which the whole
            // campaign shares: a few cases make the point there (the body reader is shared).
            if path == LOGIN && !matches!(what, "empty body" | "not JSON" | "trailing garbage") {
                continue;
            }
            cases.push(
                endpoint_case(format!("{label}: {what}"), &method, path, key.as_ref())
                    .json(body)
                    .err(400, "bad_request"),
            );
        }
        cases.push(
            endpoint_case(
                format!("{label}: unknown field"),
                &method,
                path,
                key.as_ref(),
            )
            .json(br#"{"surprise": 1}"#.to_vec())
            .err(400, "bad_request"),
        );
    }

    // Login and setup.
    for (what, body) in [
        ("email a number", json!({"email": 5, "password": PASSWORD})),
        ("password null", json!({"email": EMAIL, "password": null})),
        ("no password", json!({"email": EMAIL})),
        (
            "unknown field",
            json!({"email": EMAIL, "password": PASSWORD, "remember": true}),
        ),
        (
            "NUL in email",
            json!({"email": "ada\u{0}@example.com", "password": PASSWORD}),
        ),
        (
            "NUL in password",
            json!({"email": EMAIL, "password": "correct\u{0}horse"}),
        ),
    ] {
        cases.push(
            Case::post(format!("login: {what}"), LOGIN)
                .json(body.to_string())
                .err(400, "bad_request"),
        );
    }
    for (what, email, password) in [
        ("wrong password", EMAIL, "not the password at all"),
        ("unknown e-mail", "nobody@example.com", PASSWORD),
    ] {
        cases.push(
            Case::post(format!("login: {what}"), LOGIN)
                .json(json!({"email": email, "password": password}).to_string())
                .err(401, "invalid_credentials"),
        );
    }
    // Once a user exists, setup is gone whatever is sent (see `first_run_setup_takes_only_json`
    // for the endpoint while it exists).
    for (what, content_type, encoding) in [
        ("valid body", Some(JSON), None),
        ("no Content-Type", None, None),
        ("Content-Encoding br", Some(JSON), Some("br")),
    ] {
        let mut case = Case::post(format!("setup after the first user: {what}"), SETUP);
        if let Some(content_type) = content_type {
            case = case.header("content-type", content_type);
        }
        if let Some(encoding) = encoding {
            case = case.header("content-encoding", encoding);
        }
        cases.push(case.raw(setup_body()).err(404, "not_found"));
    }

    // Key creation.
    for (what, body) in [
        ("empty name", json!({"name": "", "scopes": ["read"]})),
        ("blank name", json!({"name": "   ", "scopes": ["read"]})),
        (
            "101-character name",
            json!({"name": "n".repeat(101), "scopes": ["read"]}),
        ),
        ("name a number", json!({"name": 5, "scopes": ["read"]})),
        ("no name", json!({"scopes": ["read"]})),
        ("no scopes", json!({"name": "x"})),
        ("empty scopes", json!({"name": "x", "scopes": []})),
        ("unknown scope", json!({"name": "x", "scopes": ["owner"]})),
        ("scopes a string", json!({"name": "x", "scopes": "read"})),
        ("scope a number", json!({"name": "x", "scopes": [1]})),
        (
            "expiry in the past",
            json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
        ),
        (
            "expiry not a time",
            json!({"name": "x", "scopes": ["read"], "expires_at": "tomorrow"}),
        ),
        (
            "expiry a number",
            json!({"name": "x", "scopes": ["read"], "expires_at": 5}),
        ),
        (
            "NUL in name",
            json!({"name": "a\u{0}b", "scopes": ["read"]}),
        ),
    ] {
        cases.push(
            Case::post(format!("key create: {what}"), KEYS)
                .key(&ctx.admin)
                .json(body.to_string())
                .err(400, "bad_request"),
        );
    }

    // Spend cap.
    for (what, body) in [
        ("negative", r#"{"spend_cap_cents": -1}"#),
        ("fraction", r#"{"spend_cap_cents": 2.5}"#),
        ("string", r#"{"spend_cap_cents": "10"}"#),
        ("boolean", r#"{"spend_cap_cents": true}"#),
        ("1e30", r#"{"spend_cap_cents": 1e30}"#),
        (
            "null and an unknown field",
            r#"{"spend_cap_cents": null, "x": 1}"#,
        ),
    ] {
        cases.push(
            Case::new(format!("spend cap: {what}"), Method::PUT, CAP)
                .key(&ctx.admin)
                .json(body)
                .err(400, "bad_request"),
        );
    }
    cases.push(
        Case::new("spend cap: 100 sets a cap", Method::PUT, CAP)
            .key(&ctx.admin)
            .json(r#"{"spend_cap_cents": 100}"#)
            .ok(200)
            .with_field("spend_cap_cents", json!(100)),
    );
    cases.push(
        Case::new("spend cap: empty object", Method::PUT, CAP)
            .key(&ctx.admin)
            .json("{}")
            .err(400, "bad_request"),
    );
    cases.push(
        Case::get("spend cap: kept after the refused empty object", USAGE)
            .key(&ctx.read)
            .ok(200)
            .with_field("spend_cap_cents", json!(100)),
    );
    cases.push(
        Case::new("spend cap: null removes the cap", Method::PUT, CAP)
            .key(&ctx.admin)
            .json(cap_body())
            .ok(200)
            .with_field("spend_cap_cents", Value::Null),
    );

    // Batches.
    // 300 nested arrays inside an event's body: past any sane recursion limit.
    let nested = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let deep = String::from_utf8(batch_of(&json!({"body": {"a": "DEEP"}})))
        .unwrap()
        .replace("\"DEEP\"", &nested)
        .into_bytes();
    let long = "x".repeat(257);
    let mut batches: Vec<(&str, Vec<u8>)> = vec![
        ("empty batch", br#"{"batch": []}"#.to_vec()),
        (
            "1001 events",
            json!({"batch": vec![event(&json!({})); 1001]})
                .to_string()
                .into(),
        ),
        ("batch an object", br#"{"batch": {}}"#.to_vec()),
        ("batch a string", br#"{"batch": "x"}"#.to_vec()),
        ("no batch", br#"{"events": []}"#.to_vec()),
        (
            "unknown top-level field",
            json!({"batch": [event(&json!({}))], "x": 1})
                .to_string()
                .into(),
        ),
        ("item an array", br#"{"batch": [[]]}"#.to_vec()),
        ("deeply nested body", deep),
    ];
    for (what, extra) in [
        ("unknown type", json!({"type": "spam"})),
        ("type a number", json!({"type": 5})),
        ("no type", json!({"type": null})),
        ("trace_id a number", json!({"trace_id": 5})),
        ("empty trace_id", json!({"trace_id": ""})),
        ("blank trace_id", json!({"trace_id": "   "})),
        ("257-character trace_id", json!({"trace_id": long})),
        ("257-character id", json!({"id": long})),
        ("id a number", json!({"id": 7})),
        ("empty name", json!({"name": ""})),
        ("timestamp not a time", json!({"timestamp": "yesterday"})),
        ("timestamp a number", json!({"timestamp": 1_764_244_800})),
        ("body a string", json!({"body": "text"})),
        ("body an array", json!({"body": [1]})),
        ("NUL in id", json!({"id": "\u{0}"})),
        ("NUL in trace_id", json!({"trace_id": "a\u{0}b"})),
        ("NUL in name", json!({"name": "x\u{0}"})),
        ("NUL in a body key", json!({"body": {"k\u{0}": 1}})),
        ("NUL in a body value", json!({"body": {"k": "v\u{0}"}})),
        (
            "NUL deep in the body",
            json!({"body": {"a": {"b": ["ok", "\u{0}"]}}}),
        ),
    ] {
        batches.push((what, batch_of(&extra)));
    }
    let nth_bad =
        json!({"batch": [event(&json!({})), event(&json!({})), event(&json!({"type": "spam"}))]});
    batches.push(("third event invalid", nth_bad.to_string().into_bytes()));
    for (what, body) in batches {
        cases.push(
            Case::post(format!("batch: {what}"), BATCH)
                .key(&ctx.write)
                .json(body)
                .err(400, "bad_request"),
        );
    }
    cases.push(
        Case::post("batch: unknown item fields are ignored", BATCH)
            .key(&ctx.write)
            .json(batch_of(&json!({"future_field": {"x": 1}})))
            .ok(200),
    );
    cases
}

fn encodings(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    // Encodings no JSON endpoint takes: 415, whatever the body.
    for (label, method, path, key, body) in json_endpoints(ctx) {
        for encoding in ["br", "zstd", "x-unknown"] {
            cases.push(
                endpoint_case(
                    format!("{label}: Content-Encoding {encoding}"),
                    &method,
                    path,
                    key.as_ref(),
                )
                .header("content-encoding", encoding)
                .json(body.clone())
                .err(415, "unsupported_media_type"),
            );
        }
    }
    let batch = valid_batch();
    let half = batch.len() / 2;
    let mut multi = wire::gzip(&batch[..half]);
    multi.extend_from_slice(&wire::gzip(&batch[half..]));
    let mut trailing = wire::gzip(&batch);
    trailing.extend_from_slice(b"garbage after the gzip member");
    let mut corrupt = wire::gzip(&batch);
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    // 6.2 MiB of zeros from about 40 KiB.
    let bomb = wire::gzip_bomb(MAX_BODY / 258 + 4096);
    let gz = |name: &str, encoding: &str, body: Vec<u8>| {
        Case::post(format!("batch: {name}"), BATCH)
            .key(&ctx.write)
            .header("content-encoding", encoding)
            .json(body)
    };
    cases.extend([
        gz("gzip", "gzip", wire::gzip(&batch)).ok(200),
        gz("x-gzip", "x-gzip", wire::gzip(&batch)).ok(200),
        gz("deflate", "deflate", wire::zlib(&batch)).ok(200),
        gz("identity", "identity", batch.clone()).ok(200),
        gz("multi-member gzip", "gzip", multi).ok(200),
        gz("gzip with trailing garbage", "gzip", trailing.clone()).err(400, "bad_request"),
        gz("corrupt gzip", "gzip", corrupt).err(400, "bad_request"),
        gz("plain JSON labelled gzip", "gzip", batch.clone()).err(400, "bad_request"),
        gz("gzip labelled deflate", "deflate", wire::gzip(&batch)).err(400, "bad_request"),
        gz("truncated gzip", "gzip", wire::gzip(&batch)[..20].to_vec()).err(400, "bad_request"),
        gz("gzip of non-JSON", "gzip", wire::gzip(b"\x00\x01binary")).err(400, "bad_request"),
        gz("gzip bomb", "gzip", bomb.clone()).err(413, "payload_too_large"),
        gz(
            "deflate bomb",
            "deflate",
            wire::zlib_bomb(MAX_BODY / 258 + 4096),
        )
        .err(413, "payload_too_large"),
    ]);
    cases.push(
        Case::post("OTLP: gzip bomb", OTLP_TRACES)
            .key(&ctx.write)
            .header("content-type", PROTOBUF)
            .header("content-encoding", "gzip")
            .raw(bomb)
            .otlp_err(413, 3),
    );
    let mut otlp_trailing = wire::gzip(&otlp_logs_json(1, "trailing"));
    otlp_trailing.extend_from_slice(b"garbage after the gzip member");
    cases.push(
        Case::post("OTLP: gzip with trailing garbage", OTLP_LOGS)
            .key(&ctx.write)
            .header("content-type", JSON)
            .header("content-encoding", "gzip")
            .raw(otlp_trailing)
            .carries(1)
            .otlp_err(400, 3),
    );
    for encoding in ["br", "zstd", "compress"] {
        cases.push(
            Case::post(format!("OTLP: Content-Encoding {encoding}"), OTLP_LOGS)
                .key(&ctx.write)
                .header("content-type", JSON)
                .header("content-encoding", encoding)
                .raw(otlp_logs_json(1, "x"))
                .carries(1)
                .otlp_err(415, 3),
        );
    }
    // Declared bodies over the limit: refused from the headers (413), before any byte.
    for (path, key, content_type) in [
        (BATCH, Some(&ctx.write), JSON),
        (KEYS, Some(&ctx.admin), JSON),
        (OTLP_TRACES, Some(&ctx.write), PROTOBUF),
    ] {
        let case = endpoint_case(
            format!("{path}: 5 MiB + 1 declared"),
            &Method::POST,
            path,
            key,
        )
        .header("content-type", content_type)
        .headers_only(MAX_BODY + 1);
        cases.push(if path == OTLP_TRACES {
            case.otlp_err(413, 3)
        } else {
            case.err(413, "payload_too_large")
        });
    }
    cases
}

fn content_types(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    for (label, method, path, key, body) in json_endpoints(ctx) {
        cases.push(
            endpoint_case(
                format!("{label}: no Content-Type"),
                &method,
                path,
                key.as_ref(),
            )
            .raw(body.clone())
            .err(415, "unsupported_media_type"),
        );
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ] {
            if path == LOGIN && content_type != "text/plain" {
                continue;
            }
            cases.push(
                endpoint_case(
                    format!("{label}: Content-Type {content_type}"),
                    &method,
                    path,
                    key.as_ref(),
                )
                .header("content-type", content_type)
                .raw(body.clone())
                .err(415, "unsupported_media_type"),
            );
        }
    }
    for content_type in ["application/json; charset=utf-8", "APPLICATION/JSON"] {
        cases.push(
            Case::post(format!("batch: Content-Type {content_type}"), BATCH)
                .key(&ctx.write)
                .header("content-type", content_type)
                .raw(valid_batch())
                .ok(200),
        );
    }
    for (what, content_type) in [
        ("no Content-Type", None),
        ("text/plain", Some("text/plain")),
        ("application/grpc", Some("application/grpc")),
    ] {
        let mut case = Case::post(format!("OTLP: {what}"), OTLP_TRACES).key(&ctx.write);
        if let Some(content_type) = content_type {
            case = case.header("content-type", content_type);
        }
        cases.push(
            case.raw(otlp_spans_json(&[span_ids(901)], &json!([])))
                .carries(1)
                .otlp_err(415, 3),
        );
    }
    cases
}

fn ids_and_paths(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    let long = "t".repeat(4096);
    for (what, id) in [
        ("unknown trace", "no-such-trace".to_owned()),
        ("another account's trace", ctx.bob_trace.clone()),
        ("traversal-ish", "..%2F..%2Fetc%2Fpasswd".to_owned()),
        ("encoded slash", "campaign%2F..".to_owned()),
        ("4096-character id", long),
        ("quote and angle brackets", "%22%3Cscript%3E".to_owned()),
        ("SQL-ish", "x'%20OR%20'1'%3D'1".to_owned()),
    ] {
        cases.push(
            Case::get(format!("trace: {what}"), format!("{TRACES}{id}/"))
                .key(&ctx.read)
                .err(404, "not_found"),
        );
    }
    for (what, id) in [("NUL", "%00"), ("invalid UTF-8", "%FF%FE")] {
        cases.push(
            Case::get(format!("trace: {what} in the id"), format!("{TRACES}{id}/"))
                .key(&ctx.read)
                .err_either((404, "not_found"), (400, "bad_request")),
        );
    }
    for (what, query) in [
        ("limit 0", "limit=0"),
        ("limit 101", "limit=101"),
        ("limit -1", "limit=-1"),
        ("limit not a number", "limit=ten"),
        ("garbage cursor", "cursor=garbage"),
        ("NUL cursor", "cursor=%00"),
        ("unknown parameter", "order=asc"),
        ("invalid UTF-8 in the query", "cursor=%FF"),
    ] {
        cases.push(
            Case::get(format!("trace list: {what}"), format!("{TRACES}?{query}"))
                .key(&ctx.read)
                .err(400, "bad_request"),
        );
    }
    cases.push(
        Case::get(
            "trace events: garbage cursor",
            format!("{TRACES}campaign/?cursor=garbage"),
        )
        .key(&ctx.read)
        .err(400, "bad_request"),
    );
    cases.push(
        Case::get(
            "trace events: limit 0",
            format!("{TRACES}campaign/?limit=0"),
        )
        .key(&ctx.read)
        .err(400, "bad_request"),
    );
    for (what, id) in [
        ("another account's key", ctx.bob_key_id.clone()),
        ("not a number", "abc".to_owned()),
        ("negative", "-1".to_owned()),
        ("zero", "0".to_owned()),
        ("past i64", "99999999999999999999999".to_owned()),
        ("exponent", "1e3".to_owned()),
        ("NUL", "%00".to_owned()),
    ] {
        cases.push(
            Case::new(
                format!("key delete: {what}"),
                Method::DELETE,
                format!("{KEYS}{id}/"),
            )
            .key(&ctx.admin)
            .err(404, "not_found"),
        );
    }
    cases.push(
        Case::new(
            "key delete: our key id with another account's admin key",
            Method::DELETE,
            format!("{KEYS}{}/", ctx.revoked_id),
        )
        .key(&ctx.bob_admin)
        .err(404, "not_found"),
    );
    for (what, method, path) in [
        (
            "unknown route",
            Method::GET,
            "/api/v1/nothing-here/".to_owned(),
        ),
        ("unknown version", Method::GET, "/api/v2/traces/".to_owned()),
        ("wrong method on usage", Method::DELETE, USAGE.to_owned()),
        ("wrong method on keys", Method::PATCH, KEYS.to_owned()),
        ("wrong method on ping", Method::POST, PING.to_owned()),
        ("GET on OTLP", Method::GET, OTLP_TRACES.to_owned()),
        ("double slash", Method::GET, "/api/v1//traces/".to_owned()),
    ] {
        cases.push(
            Case::new(format!("path: {what}"), method, path)
                .key(&ctx.all)
                .err(404, "not_found"),
        );
    }
    cases.push(
        Case::get(
            "trace events of another account, by Bob",
            format!("{TRACES}campaign/"),
        )
        .key(&ctx.bob_read)
        .err(404, "not_found"),
    );
    cases
}

fn sessions_and_csrf(ctx: &Ctx) -> Vec<Case> {
    let s = &ctx.session;
    let mut cases = vec![
        Case::post("login: valid", LOGIN)
            .json(login_body())
            .ok(200)
            .no_store(),
        Case::get("session: valid", SESSION)
            .cookie(s)
            .ok(200)
            .no_store(),
        Case::post("key create with the session", KEYS)
            .cookie(s)
            .csrf(s)
            .json(key_body())
            .ok(201)
            .no_store(),
        Case::post("key create with an admin key", KEYS)
            .key(&ctx.admin)
            .json(key_body())
            .ok(201)
            .no_store(),
        Case::post("batch with the session and its token", BATCH)
            .cookie(s)
            .csrf(s)
            .json(valid_batch())
            .ok(200),
        Case::get("usage with the session, no token needed to read", USAGE)
            .cookie(s)
            .ok(200),
    ];
    for (what, cookie) in [
        ("garbage", "av_session=garbage".to_owned()),
        ("empty", "av_session=".to_owned()),
        (
            "64 hex never issued",
            format!("av_session={}", "ab".repeat(32)),
        ),
        ("4 KiB", format!("av_session={}", "z".repeat(4096))),
        ("logged out", ctx.stale_cookie.clone()),
    ] {
        for (method, path) in [
            (Method::GET, USAGE),
            (Method::GET, SESSION),
            (Method::POST, BATCH),
        ] {
            let mut case = Case::new(
                format!("{what} cookie: {method} {path}"),
                method.clone(),
                path,
            )
            .header("cookie", &cookie)
            .header("x-csrf-token", &ctx.session.csrf);
            if method == Method::POST {
                case = case.json(valid_batch());
            }
            cases.push(case.err(401, "invalid_session"));
        }
    }
    let unsafe_requests: Vec<(Method, String, Option<Vec<u8>>)> = vec![
        (Method::POST, KEYS.into(), Some(key_body())),
        (Method::PUT, CAP.into(), Some(cap_body())),
        (Method::POST, BATCH.into(), Some(valid_batch())),
        (Method::DELETE, format!("{KEYS}{}/", ctx.revoked_id), None),
        (Method::POST, LOGOUT.into(), None),
    ];
    for (method, path, body) in &unsafe_requests {
        for (what, token) in [
            ("no", None),
            ("wrong", Some("not-the-token".to_owned())),
            ("another session's", Some(ctx.bob_session.csrf.clone())),
            ("empty", Some(String::new())),
        ] {
            let mut case = Case::new(
                format!("{what} CSRF token: {method} {path}"),
                method.clone(),
                path.clone(),
            )
            .cookie(s);
            if let Some(token) = token {
                case = case.header("x-csrf-token", token);
            }
            if let Some(body) = body {
                case = case.json(body.clone());
            }
            cases.push(case.err(403, "csrf_failed"));
        }
    }
    cases.push(
        Case::post("OTLP with the session, no token", OTLP_TRACES)
            .cookie(s)
            .header("content-type", JSON)
            .raw(otlp_spans_json(&[span_ids(902)], &json!([])))
            .carries(1)
            .otlp_err(403, 7),
    );
    for (method, path) in [(Method::GET, SESSION), (Method::POST, LOGOUT)] {
        cases.push(
            Case::new(format!("API key on session-only {path}"), method, path)
                .key(&ctx.all)
                .err(403, "session_required"),
        );
    }
    cases.push(Case::get("session without credentials", SESSION).err(401, "missing_api_key"));
    cases
}

fn otlp(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    let json_case = |name: String, path: &str, body: Vec<u8>| {
        Case::post(name, path)
            .key(&ctx.write)
            .header("content-type", JSON)
            .raw(body)
    };
    let spans = |from: u64, n: u64| (from..from + n).map(span_ids).collect::<Vec<_>>();
    let proto_span = |n: u64| {
        let trace: [u8; 16] = (0xcb00_0000_u128 + u128::from(n)).to_be_bytes();
        let span: [u8; 8] = (n + 1).to_be_bytes();
        (trace, span)
    };
    cases.extend([
        json_case(
            "OTLP traces: one span".into(),
            OTLP_TRACES,
            otlp_spans_json(&spans(1, 1), &json!([])),
        )
        .otlp_ok(1),
        json_case(
            "OTLP traces: trailing slash".into(),
            "/otlp/v1/traces/",
            otlp_spans_json(&spans(2, 3), &json!([])),
        )
        .otlp_ok(3),
        json_case(
            "OTLP traces: the same span again is a duplicate".into(),
            OTLP_TRACES,
            otlp_spans_json(&spans(1, 1), &json!([])),
        )
        .otlp_ok(0),
        json_case(
            "OTLP traces: empty request".into(),
            OTLP_TRACES,
            b"{}".to_vec(),
        )
        .otlp_ok(0),
        json_case(
            "OTLP logs: two records".into(),
            OTLP_LOGS,
            otlp_logs_json(2, "hello"),
        )
        .otlp_ok(2),
        json_case(
            "OTLP metrics: one point".into(),
            OTLP_METRICS,
            otlp_metrics_json(1, "tokens"),
        )
        .otlp_ok(1),
        Case::post("OTLP traces: protobuf", OTLP_TRACES)
            .key(&ctx.write)
            .header("content-type", PROTOBUF)
            .raw(wire::otlp_spans_proto(
                &[proto_span(1), proto_span(2)],
                "proto",
            ))
            .otlp_ok(2),
        Case::post("OTLP traces: gzipped protobuf", OTLP_TRACES)
            .key(&ctx.write)
            .header("content-type", PROTOBUF)
            .header("content-encoding", "gzip")
            .raw(wire::gzip(&wire::otlp_spans_proto(&[proto_span(3)], "gz")))
            .otlp_ok(1),
        json_case("OTLP logs: multi-member gzip".into(), OTLP_LOGS, {
            let body = otlp_logs_json(1, "multi");
            let mut multi = wire::gzip(&body[..10]);
            multi.extend(wire::gzip(&body[10..]));
            multi
        })
        .header("content-encoding", "gzip")
        .otlp_ok(1),
    ]);
    for path in [OTLP_TRACES, OTLP_LOGS, OTLP_METRICS] {
        let body = otlp_logs_json(1, "x");
        cases.push(
            Case::post(format!("OTLP {path}: no credentials"), path)
                .header("content-type", JSON)
                .raw(body.clone())
                .otlp_err(401, 16),
        );
        cases.push(
            Case::post(format!("OTLP {path}: unknown key"), path)
                .key(&ctx.unknown)
                .header("content-type", PROTOBUF)
                .raw(Vec::new())
                .otlp_err(401, 16),
        );
        cases.push(
            Case::post(format!("OTLP {path}: read key"), path)
                .key(&ctx.read)
                .header("content-type", JSON)
                .raw(body)
                .otlp_err(403, 7),
        );
        cases.push(
            json_case(
                format!("OTLP {path}: not JSON"),
                path,
                b"{not json".to_vec(),
            )
            .otlp_err(400, 3),
        );
        cases.push(
            Case::post(format!("OTLP {path}: not protobuf"), path)
                .key(&ctx.write)
                .header("content-type", PROTOBUF)
                .raw(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01".to_vec())
                .otlp_err(400, 3),
        );
    }
    let too_many = u64::try_from(MAX_OTLP_EVENTS).unwrap() + 1;
    let no_attributes = json!([]);
    let attribute = |key: &str, value: &str| json!([{"key": key, "value": {"stringValue": value}}]);
    let one_id = format!("{:016x}", 1);
    let resource_nul = json!({"resourceSpans": [{
        "resource": {"attributes": attribute("service.name", "\u{0}")},
        "scopeSpans": [{"spans": [{"traceId": span_ids(52).0, "spanId": span_ids(52).1, "name": "s"}]}],
    }]});
    // (what, endpoint, JSON body, events it carries): each a 400 with code 3, nothing counted.
    let invalid: [(&str, &str, Vec<u8>, u64); 9] = [
        (
            "10,001 spans",
            OTLP_TRACES,
            otlp_spans_json(&spans(10_000, too_many), &no_attributes),
            too_many,
        ),
        (
            "10,001 log records",
            OTLP_LOGS,
            otlp_logs_json(MAX_OTLP_EVENTS + 1, "x"),
            too_many,
        ),
        (
            "10,001 data points",
            OTLP_METRICS,
            otlp_metrics_json(MAX_OTLP_EVENTS + 1, "tokens"),
            too_many,
        ),
        (
            "a 15-byte trace id",
            OTLP_TRACES,
            otlp_spans_json(&[(format!("{:030x}", 1), one_id.clone())], &no_attributes),
            0,
        ),
        (
            "a trace id not hex",
            OTLP_TRACES,
            otlp_spans_json(&[("zz".repeat(16), one_id)], &no_attributes),
            0,
        ),
        (
            "NUL in an attribute value",
            OTLP_TRACES,
            otlp_spans_json(&spans(50, 1), &attribute("k", "a\u{0}b")),
            1,
        ),
        (
            "NUL in an attribute key",
            OTLP_TRACES,
            otlp_spans_json(&spans(51, 1), &attribute("k\u{0}", "v")),
            1,
        ),
        (
            "NUL in a log body",
            OTLP_LOGS,
            otlp_logs_json(1, "log\u{0}line"),
            1,
        ),
        (
            "NUL in a resource attribute",
            OTLP_TRACES,
            resource_nul.to_string().into_bytes(),
            1,
        ),
    ];
    for (what, path, body, events) in invalid {
        cases.push(
            json_case(format!("OTLP {path}: {what}"), path, body)
                .carries(events)
                .otlp_err(400, 3),
        );
    }
    let proto_spans: Vec<_> = (100..100 + too_many).map(proto_span).collect();
    cases.push(
        Case::post("OTLP traces: 10,001 spans in protobuf", OTLP_TRACES)
            .key(&ctx.write)
            .header("content-type", PROTOBUF)
            .raw(wire::otlp_spans_proto(&proto_spans, "p"))
            .carries(too_many)
            .otlp_err(400, 3),
    );
    cases
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
