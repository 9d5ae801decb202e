//! The OpenAPI 3.1 document of the JSON API, generated from the code: the handlers'
//! `#[utoipa::path]` annotations, the types they answer with (`ToSchema`), and the shared
//! responses of [`crate::schema`]. The operations are the ones [`crate::operations`] declares (the
//! same list mounts them); `handlers::meta` serves the document at `GET /api/v1/openapi.json`.

use std::sync::LazyLock;

use actix_web::web::Bytes;
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::auth::{CSRF_HEADER, SESSION_COOKIE};
use crate::handlers::{
    account, audit, health, ingest, invitations, keys, leaks, members, meta, own_sessions,
    password, session, setup, traces, usage,
};
use crate::schema::{
    BadRequest, Forbidden, Internal, InvalidCredentials, LastOwner, NotFound, OtlpBadRequest,
    OtlpForbidden, OtlpInternal, OtlpPayloadTooLarge, OtlpQuotaExceeded, OtlpUnauthorized,
    OtlpUnavailable, OtlpUnsupportedMediaType, PayloadTooLarge, QuotaExceeded, RateLimitSchema,
    RateLimited, RoleName, RollConflict, ScopeName, TooManyAttempts, TooManyInvitations,
    TooManyKeys, Unauthorized, Unavailable, UnsupportedMediaType,
};

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
* A key with a `rate_limit` gets `RateLimit-Limit`, `RateLimit-Remaining` and \
  `RateLimit-Reset` on every answer; past its limit, any operation it calls answers 429 \
  `rate_limited`.
* Request bodies may be sent with `Content-Encoding: gzip` or `deflate`; the size limit \
  (`limits.max_body_bytes`, 5 MiB by default) applies before and after decoding.
* The response headers this document lists are always sent with their response; headers sent \
  only sometimes are named in the response's description.
* Left out: the dashboard's HTML pages and their assets (`/`, `/login`, `/setup`, \
  `/settings/…`, `/traces/…`, `/assets/…`), which are not part of the JSON API.";

/// The document's derive, over the operations [`crate::operations`] declares.
macro_rules! api_doc {
    ($($module:ident :: $handler:ident => $access:ident),* $(,)?) => {
        /// The whole document, assembled by utoipa from the annotated handlers.
        #[derive(OpenApi)]
        #[openapi(
            info(title = "AgentVista Keys API", description = DESCRIPTION),
            paths($($module::$handler),*),
            components(
                schemas(
                    crate::error::ErrorBody,
                    crate::error::ErrorCode,
                    ScopeName,
                    RoleName,
                    RateLimitSchema,
                    ingest::RpcStatusJson,
                ),
                responses(
                    BadRequest,
                    Unauthorized,
                    InvalidCredentials,
                    Forbidden,
                    NotFound,
                    TooManyKeys,
                    TooManyInvitations,
                    RollConflict,
                    LastOwner,
                    PayloadTooLarge,
                    UnsupportedMediaType,
                    TooManyAttempts,
                    RateLimited,
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
                (name = "members", description = "The people of the caller's account, their roles, and the accounts and sessions of the person calling."),
                (name = "ingestion", description = "Events in: the batch endpoint and OTLP/HTTP."),
                (name = "traces", description = "Events out: traces and their events."),
                (name = "usage", description = "The month's usage and the spend cap."),
                (name = "meta", description = "This document."),
            )
        )]
        struct ApiDoc;
    };
}
crate::operations::operations!(api_doc);

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

/// The document as served, built once: the route table reads its operations from it and
/// [`DOCUMENT`] is its serialisation.
pub(crate) static VALUE: LazyLock<Result<Value, String>> =
    LazyLock::new(|| openapi().map_err(|err| err.to_string()));

/// The served document, serialised once: it is the same for every request and every worker.
/// [`crate::configure`] builds it when the app is set up.
pub(crate) static DOCUMENT: LazyLock<Result<Bytes, String>> = LazyLock::new(|| {
    VALUE.as_ref().map_err(Clone::clone).and_then(|document| {
        serde_json::to_vec(document)
            .map(Bytes::from)
            .map_err(|err| err.to_string())
    })
});

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

    /// Each operation's document says what its declared access enforces: public ones name no
    /// credential; the others a session (with the CSRF header on writes) and, unless they are
    /// session-only, a key with the declared scope.
    #[test]
    fn security_requirements_follow_the_declared_access() {
        use crate::auth::Access;
        let document = document();
        let declared = crate::routes::declared_operations();
        assert!(declared.len() > 30, "{}", declared.len());
        for operation in declared {
            let (path, method) = (&operation.path, operation.method.as_str().to_lowercase());
            let op = &document["paths"][path][&method];
            let security = op.get("security").and_then(Value::as_array);
            let (scope, keys) = match operation.access {
                Access::Public => {
                    assert!(security.is_none(), "{method} {path}: {security:?}");
                    continue;
                }
                Access::KeyOrSession { scope, .. } => (scope, true),
                Access::Session { .. } => (None, false),
            };
            let security = security.unwrap_or_else(|| panic!("{method} {path} has no security"));
            let with_session: Vec<&Value> = security
                .iter()
                .filter(|requirement| requirement.get("session").is_some())
                .collect();
            assert_eq!(with_session.len(), 1, "{method} {path}");
            let csrf = with_session[0].get("csrf_token").is_some();
            assert_eq!(csrf, method != "get", "{method} {path}: {security:?}");
            let key = security.iter().find_map(|r| r.get("bearer_key"));
            assert_eq!(key.is_some(), keys, "{method} {path}: {security:?}");
            if let Some(scope) = scope {
                assert_eq!(
                    key,
                    Some(&serde_json::json!([scope.as_str()])),
                    "{method} {path}"
                );
            }
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
        let names: Vec<&str> = agentvista_keys::Scope::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(listed, &serde_json::json!(names));
    }
}
