//! Request handlers: extract, call, answer.

pub(crate) mod health;
pub(crate) mod ingest;
pub(crate) mod keys;
pub(crate) mod session;
pub(crate) mod setup;
pub(crate) mod traces;
pub(crate) mod usage;

use actix_web::http::header::{CACHE_CONTROL, CacheControl, CacheDirective, HeaderName};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::ApiError;

/// Unknown routes and methods: the JSON 404 of the contract.
pub(crate) async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}

/// No cache may keep an answer that carries a key, a session or a CSRF token.
pub(crate) fn no_store() -> (HeaderName, CacheControl) {
    (CACHE_CONTROL, CacheControl(vec![CacheDirective::NoStore]))
}

/// RFC 3339 in UTC with `Z`, as every time in the API.
pub(crate) fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
