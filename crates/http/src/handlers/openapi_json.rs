//! `GET /api/v1/openapi.json`: the OpenAPI document of this API.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use actix_web::web;

use crate::AppState;
use crate::openapi::AnyObject;

/// The OpenAPI 3.1 document of this API, generated from the server's code.
///
/// Built once when the server starts; no authentication.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses((status = 200, description = "This document.", body = AnyObject)),
)]
pub(crate) async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .body(state.openapi.clone())
}
