//! Request handlers: extract, call, answer.

pub(crate) mod account;
pub(crate) mod audit;
pub(crate) mod health;
pub(crate) mod ingest;
pub(crate) mod invitations;
pub(crate) mod keys;
pub(crate) mod leaks;
pub(crate) mod members;
pub(crate) mod meta;
pub(crate) mod own_sessions;
mod paging;
pub(crate) mod password;
pub(crate) mod session;
pub(crate) mod setup;
pub(crate) mod traces;
pub(crate) mod usage;

use actix_web::http::header::{CACHE_CONTROL, CacheControl, CacheDirective, HeaderName};
use serde::Serialize;

use crate::ApiError;

/// `{"status":"ok"}`: the answer of `/healthz`, `/readyz` and the ping.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct StatusOk {
    /// Always `ok`.
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

/// The one [`StatusOk`].
pub(crate) const OK: StatusOk = StatusOk { status: "ok" };

/// The most a body sent without credentials may be (logins, first-run setup): what the
/// anonymous internet can make the server read and parse.
pub(crate) const UNAUTHENTICATED_BODY: usize = 64 * 1024;

/// Unknown routes and methods: the JSON 404 of the contract.
pub(crate) async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}

/// No cache may keep an answer that carries a key, a session or a CSRF token.
pub(crate) fn no_store() -> (HeaderName, CacheControl) {
    (CACHE_CONTROL, CacheControl(vec![CacheDirective::NoStore]))
}
