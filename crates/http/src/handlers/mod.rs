//! Request handlers: extract, call, answer.

pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod session;

use crate::ApiError;

/// Unknown routes and methods: the JSON 404 of the contract.
pub(crate) async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}
