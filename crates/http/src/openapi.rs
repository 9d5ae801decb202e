//! The OpenAPI 3.1 document of the JSON API, generated from the code: the handlers'
//! `#[utoipa::path]` annotations, the types they answer with (`ToSchema`), and the shared
//! error responses below. Served at `GET /api/v1/openapi.json`; [`crate::routes`] holds the
//! table of what is mounted, and its tests compare the two.

use std::borrow::Cow;

use agentvista_keys::Scope;
use serde_json::Value;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Array, ArrayBuilder, ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Schema, Type,
};
use utoipa::{Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use crate::auth::{CSRF_HEADER, SESSION_COOKIE};
use crate::handlers::{health, ingest, keys, openapi_json, session, setup, traces, usage};

/// What the document says of itself: what it covers and what it leaves out.
const DESCRIPTION: &str = "\
The JSON API of AgentVista Keys: API keys and their scopes, dashboard sessions, event \
ingestion (a JSON batch endpoint and OTLP/HTTP), traces and the monthly event quota.

Generated from the server's code; the contract it implements is `docs/api.md`.

* Every path also works with the trailing slash added or removed.
* Every JSON error has the body `ErrorBody`: a stable `error` code and a `message` sentence. \
  The OTLP endpoints answer errors with the same statuses and headers, but with a \
  `google.rpc.Status` body in the request's content type.
* Authentication: an API key as `Authorization: Bearer av_…` (`bearer_key`; each operation \
  names the scope it needs), or the dashboard session's `av_session` cookie (`session`), which \
  acts with every scope. A cookie-authenticated `POST`, `PUT`, `PATCH` or `DELETE` must also \
  send the session's CSRF token in `X-CSRF-Token` (`csrf_token`), else 403 `csrf_failed`. \
  When an `Authorization` header is present, cookies are ignored; two `Authorization` headers \
  are a 400.
* Request bodies may be sent with `Content-Encoding: gzip` or `deflate`; the size limit \
  (`limits.max_body_bytes`, 5 MiB by default) applies before and after decoding.
* The response headers this document lists are always sent with their response; headers sent \
  only sometimes are named in the response's description.
* Left out: the dashboard's HTML pages and their assets (`/`, `/login`, `/setup`, \
  `/settings/…`, `/traces/…`, `/assets/…`), which are not part of the JSON API.";

/// The whole document, assembled by utoipa from the annotated handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "AgentVista Keys API", description = DESCRIPTION),
    paths(
        health::healthz,
        health::readyz,
        openapi_json::openapi_json,
        setup::setup,
        session::login,
        session::logout,
        session::current,
        keys::ping,
        keys::list,
        keys::create,
        keys::revoke,
        ingest::batch,
        ingest::otlp_traces,
        ingest::otlp_logs,
        ingest::otlp_metrics,
        traces::list,
        traces::batch_trace,
        traces::events,
        usage::usage,
        usage::set_spend_cap,
    ),
    components(
        schemas(crate::error::ErrorBody, crate::error::ErrorCode, ScopeName),
        responses(
            BadRequest,
            Unauthorized,
            InvalidCredentials,
            Forbidden,
            NotFound,
            PayloadTooLarge,
            UnsupportedMediaType,
            TooManyAttempts,
            QuotaExceeded,
            Unavailable,
            Internal,
            OtlpBadRequest,
            OtlpUnauthorized,
            OtlpForbidden,
            OtlpPayloadTooLarge,
            OtlpUnsupportedMediaType,
            OtlpQuotaExceeded,
            OtlpUnavailable,
            OtlpInternal,
        )
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Liveness and readiness probes; no authentication."),
        (name = "sessions", description = "Dashboard log-in, log-out, first run."),
        (name = "keys", description = "API keys of the caller's account."),
        (name = "ingestion", description = "Events in: the batch endpoint and OTLP/HTTP."),
        (name = "traces", description = "Events out: traces and their events."),
        (name = "usage", description = "The month's usage and the spend cap."),
        (name = "meta", description = "This document."),
    )
)]
struct ApiDoc;

/// The security schemes the operations refer to by name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("av_<8 hex>_<38 base62>")
                    .description(Some(
                        "An API key: `Authorization: Bearer av_…` (the scheme name in any \
                         case). The scopes listed in an operation's requirement are the ones \
                         the key needs (`read`, `write`, `admin`; they do not imply each other).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The dashboard session cookie set by `POST /api/v1/auth/login/`; it acts with \
                 every scope. Ignored when an `Authorization` header is present.",
            ))),
        );
        components.add_security_scheme(
            "csrf_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                CSRF_HEADER,
                "The session's CSRF token (`csrf_token` of the login or session answer), \
                 required with the session cookie on `POST`, `PUT`, `PATCH` and `DELETE`.",
            ))),
        );
    }
}

/// The document as served, built from the code.
///
/// It is a JSON value rather than utoipa's type because one rule is applied after utoipa:
/// every response header it lists is marked `required`, which the document promises (headers
/// sent only sometimes are described in words instead), so that a client or a conformance
/// tester may rely on them.
///
/// # Errors
/// If utoipa's document cannot be turned into JSON (it always can; the error is passed on
/// rather than assumed away).
pub fn openapi() -> Result<Value, serde_json::Error> {
    let mut document = serde_json::to_value(ApiDoc::openapi())?;
    require_headers(&mut document);
    Ok(document)
}

/// Marks every response header in `value` as required. Only response objects have a
/// `headers` map in this document (request headers are parameters), so every `headers`
/// object found is a response's.
fn require_headers(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if let (true, Some(headers)) = (key == "headers", child.as_object_mut()) {
                    for header in headers.values_mut().filter_map(Value::as_object_mut) {
                        header.insert("required".into(), Value::Bool(true));
                    }
                } else {
                    require_headers(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(require_headers),
        _ => {}
    }
}

/// A scope's name, as the API writes it: the schema of [`Scope`], which lives in the pure
/// `agentvista-keys` crate and so knows nothing of OpenAPI. Built from [`Scope::ALL`], so a
/// new scope appears in the document by itself.
pub(crate) struct ScopeName;

impl PartialSchema for ScopeName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Scope::ALL.map(Scope::as_str)))
            .description(Some(
                "`read`: reads and the ping; `write`: ingestion; `admin`: keys and billing.",
            ))
            .into()
    }
}

impl ToSchema for ScopeName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Scope")
    }
}

/// The scopes of a key as answers show them: one to three, distinct, in the order read,
/// write, admin (what `Scopes` serialises).
pub(crate) fn scope_set() -> Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name(ScopeName::name()))
        .min_items(Some(1))
        .max_items(Some(Scope::ALL.len()))
        .unique_items(true)
        .build()
}

/// A protobuf message, as a request or response body (`application/x-protobuf`).
pub(crate) struct Protobuf;

impl PartialSchema for Protobuf {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .content_media_type("application/x-protobuf")
            .description(Some("A protobuf-encoded message."))
            .into()
    }
}

impl ToSchema for Protobuf {}

/// Any JSON object (OTLP/JSON requests and answers are described by the OpenTelemetry
/// specification, not here).
pub(crate) struct AnyObject;

impl PartialSchema for AnyObject {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Object).into()
    }
}

impl ToSchema for AnyObject {}

/// A `Retry-After` header: whole seconds.
fn retry_after() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("Whole seconds to wait before retrying."))
        .build()
}

/// A JSON error answer with the shared `ErrorBody`, and `headers`.
fn json_error(
    description: &str,
    headers: impl IntoIterator<Item = (&'static str, utoipa::openapi::Header)>,
) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    headers
        .into_iter()
        .fold(
            ResponseBuilder::new()
                .description(description)
                .content("application/json", content),
            |response, (name, header)| response.header(name, header),
        )
        .build()
}

/// An OTLP error answer: a `google.rpc.Status` in the request's content type, and `headers`.
fn otlp_error(
    description: &str,
    headers: impl IntoIterator<Item = (&'static str, utoipa::openapi::Header)>,
) -> Response {
    let json = ContentBuilder::new()
        .schema(Some(ingest::RpcStatusJson::schema()))
        .build();
    let protobuf = ContentBuilder::new()
        .schema(Some(Protobuf::schema()))
        .build();
    headers
        .into_iter()
        .fold(
            ResponseBuilder::new()
                .description(description)
                .content("application/json", json)
                .content("application/x-protobuf", protobuf),
            |response, (name, header)| response.header(name, header),
        )
        .build()
}

/// Declares response components: a marker type per shared answer, referred to from the
/// handlers' annotations as `(status = 401, response = Unauthorized)`.
macro_rules! responses {
    ($($(#[$doc:meta])* $name:ident => $build:expr;)*) => {$(
        $(#[$doc])*
        pub(crate) struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), $build.into())
            }
        }
    )*};
}

responses! {
    /// 400 `bad_request`.
    BadRequest => json_error(
        "`bad_request`: a malformed body, parameter or header (the message names the field; \
         two `Authorization` headers are one), or a body not received within the deadline (the \
         connection is then closed).",
        [],
    );
    /// 401 from authentication.
    Unauthorized => json_error(
        "`missing_api_key` (no credentials; `WWW-Authenticate: Bearer realm=\"agentvista\"`), \
         `invalid_api_key` (an `Authorization` header that is no valid key: one answer for \
         every reason; `WWW-Authenticate: Bearer realm=\"agentvista\", error=\"invalid_token\"`) \
         or `invalid_session` (an unknown or expired session cookie).",
        [],
    );
    /// 401 from the login.
    InvalidCredentials => json_error(
        "`invalid_credentials`: a wrong e-mail address or password (one answer for both).",
        [],
    );
    /// 403.
    Forbidden => json_error(
        "`insufficient_scope` (a key without the scope the operation needs; the body's \
         `required_scope` and `WWW-Authenticate: Bearer error=\"insufficient_scope\", \
         scope=\"…\"` name it), `csrf_failed` (a session's write without its `X-CSRF-Token`), \
         or `session_required` (a session-only operation called with an API key).",
        [],
    );
    /// 404 `not_found`.
    NotFound => json_error(
        "`not_found`: an unknown id, or an id of another account.",
        [],
    );
    /// 413 `payload_too_large`.
    PayloadTooLarge => json_error(
        "`payload_too_large`: the body is over `limits.max_body_bytes`, before or after \
         decoding; the connection is closed.",
        [],
    );
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType => json_error(
        "`unsupported_media_type`: a `Content-Type` other than `application/json`, none, or a \
         `Content-Encoding` other than `gzip`, `deflate` or `identity`.",
        [],
    );
    /// 429 `too_many_attempts`.
    TooManyAttempts => json_error(
        "`too_many_attempts`: too many logins or first-run setups from this address or for \
         this account, or too many password checks at once.",
        [("Retry-After", retry_after())],
    );
    /// 429 `monthly_event_limit_exceeded`.
    QuotaExceeded => json_error(
        "`monthly_event_limit_exceeded`: the events do not fit what the plan and the spend cap \
         still allow this month; nothing was stored. The body has `limit`, `used` and \
         `resets_at`; `Retry-After` counts the seconds until the month resets.",
        [("Retry-After", retry_after())],
    );
    /// 503 `unavailable`.
    Unavailable => json_error(
        "`unavailable`: the database cannot be reached.",
        [("Retry-After", retry_after())],
    );
    /// 500 `internal`.
    Internal => json_error(
        "`internal`: a fault of the server or its operator (e.g. an account on a plan the \
         configuration no longer defines); the server log says which.",
        [],
    );
    /// 400 on OTLP.
    OtlpBadRequest => otlp_error(
        "A malformed OTLP body (or two `Authorization` headers): code 3.",
        [],
    );
    /// 401 on OTLP.
    OtlpUnauthorized => otlp_error(
        "No credentials, an invalid key or an invalid session: code 16. `WWW-Authenticate` as \
         on the JSON endpoints.",
        [],
    );
    /// 403 on OTLP.
    OtlpForbidden => otlp_error(
        "A key without `write`, or a session's request without `X-CSRF-Token`: code 7.",
        [],
    );
    /// 413 on OTLP.
    OtlpPayloadTooLarge => otlp_error(
        "The body is over the limit, before or after decoding: code 3; the connection is \
         closed.",
        [],
    );
    /// 415 on OTLP.
    OtlpUnsupportedMediaType => otlp_error(
        "A `Content-Type` other than `application/x-protobuf` or `application/json`, or an \
         unknown `Content-Encoding`: code 3 (in JSON when the content type is unknown).",
        [],
    );
    /// 429 on OTLP.
    OtlpQuotaExceeded => otlp_error(
        "The events do not fit what the month still allows; nothing was stored: code 8.",
        [("Retry-After", retry_after())],
    );
    /// 503 on OTLP.
    OtlpUnavailable => otlp_error(
        "The database cannot be reached: code 14.",
        [("Retry-After", retry_after())],
    );
    /// 500 on OTLP.
    OtlpInternal => otlp_error("A fault of the server or its operator: code 13.", []);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn document() -> Value {
        openapi().unwrap()
    }

    /// Every `$ref` string anywhere in `value`.
    fn refs<'v>(value: &'v Value, found: &mut Vec<&'v str>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(target)) = object.get("$ref") {
                    found.push(target);
                }
                object.values().for_each(|child| refs(child, found));
            }
            Value::Array(items) => items.iter().for_each(|child| refs(child, found)),
            _ => {}
        }
    }

    /// Every operation of the document, as (path, method, operation).
    fn operations(document: &Value) -> Vec<(&str, &str, &Value)> {
        let paths = document["paths"].as_object().unwrap();
        paths
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().unwrap();
                item.iter()
                    .map(move |(method, op)| (path.as_str(), method.as_str(), op))
            })
            .collect()
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_reference_resolves() {
        let document = document();
        assert_eq!(document["openapi"], "3.1.0");
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(found.len() > 50, "{found:?}");
        for target in found {
            let pointer = target.strip_prefix('#').unwrap();
            assert!(
                document.pointer(pointer).is_some(),
                "{target} is referred to but not defined"
            );
        }
    }

    #[test]
    fn operation_ids_are_unique_and_every_operation_answers_success_and_describes_itself() {
        let document = document();
        let mut ids = HashSet::new();
        for (path, method, op) in operations(&document) {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id), "operationId {id} twice");
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert!(
                statuses.iter().any(|s| s.starts_with('2')),
                "{method} {path}: {statuses:?}"
            );
        }
    }

    /// Authenticated operations name their credentials; a session's writes add the CSRF
    /// header; the few public ones name none.
    #[test]
    fn security_requirements_follow_the_contract() {
        let document = document();
        let public = [
            "/healthz",
            "/readyz",
            "/api/v1/openapi.json",
            "/api/v1/setup/",
            "/api/v1/auth/login/",
        ];
        for (path, method, op) in operations(&document) {
            let security = op.get("security").and_then(Value::as_array);
            if public.contains(&path) {
                assert!(security.is_none(), "{method} {path}: {security:?}");
                continue;
            }
            let security = security.unwrap_or_else(|| panic!("{method} {path} has no security"));
            let with_session: Vec<&Value> = security
                .iter()
                .filter(|requirement| requirement.get("session").is_some())
                .collect();
            assert_eq!(with_session.len(), 1, "{method} {path}");
            let csrf = with_session[0].get("csrf_token").is_some();
            assert_eq!(csrf, method != "get", "{method} {path}: {security:?}");
            // Every operation but the session-only ones takes a key.
            let session_only = path.starts_with("/api/v1/auth/");
            let keys = security.iter().any(|r| r.get("bearer_key").is_some());
            assert_eq!(keys, !session_only, "{method} {path}");
            // A 401 is documented wherever credentials are needed.
            assert!(op["responses"].get("401").is_some(), "{method} {path}");
        }
    }

    #[test]
    fn every_documented_response_header_is_required() {
        let document = document();
        let retry = &document["components"]["responses"]["QuotaExceeded"]["headers"]["Retry-After"];
        assert_eq!(retry["required"], true, "{retry}");
        let cookie = &document["paths"]["/api/v1/auth/login/"]["post"]["responses"]["200"]["headers"]
            ["Set-Cookie"];
        assert_eq!(cookie["required"], true, "{cookie}");
    }

    #[test]
    fn the_scope_schema_lists_every_scope() {
        let document = document();
        let listed = &document["components"]["schemas"]["Scope"]["enum"];
        let names: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(listed, &serde_json::json!(names));
    }
}
