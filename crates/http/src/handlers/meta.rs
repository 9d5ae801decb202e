//! `GET /api/v1/openapi.json`: the API's own description.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use actix_web::web::{Bytes, Data};

use crate::ApiError;

/// The document as served, serialised once: `configure` registers it as app data (the
/// document lists this handler, so the handler takes the document rather than building it).
pub(crate) struct Document(pub(crate) &'static Result<Bytes, String>);

/// The document could not be serialised (it always can; the error is answered, not assumed
/// away).
#[derive(Debug, thiserror::Error)]
#[error("the OpenAPI document could not be serialised: {0}")]
struct Unserialisable(String);

/// The OpenAPI 3.1 document of this API, generated from the server's code.
///
/// Built once; no authentication.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This document.", body = crate::schema::AnyObject)),
)]
pub(crate) async fn openapi(document: Data<Document>) -> Result<HttpResponse, ApiError> {
    let document = document
        .0
        .as_ref()
        .map_err(|err| ApiError::internal(Unserialisable(err.clone())))?;
    Ok(HttpResponse::Ok()
        .insert_header(ContentType::json())
        .body(document.clone()))
}
