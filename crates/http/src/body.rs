//! Request bodies: read under the size limit, and [`JsonBody`] for JSON endpoints.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web::BytesMut};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::{ApiError, auth::state};

/// A JSON body deserialized into `T`.
///
/// - `Content-Type` must be `application/json` (parameters allowed) or absent, else 415;
/// - the body may not exceed `limits.max_body_bytes`, else 413 (checked on `Content-Length`
///   before reading, and while reading);
/// - a malformed body is a 400 whose message names the field, e.g.
///   `scopes[1]: unknown variant "owner", expected one of "read", "write", "admin"`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = state(req).map(|s| s.config.max_body_bytes);
        let json = is_json(req.headers());
        let declared = declared_length(req.headers());
        let payload = payload.take();
        Box::pin(async move {
            let limit = limit?;
            json?;
            let body = read_body(payload, limit, declared).await?;
            Ok(JsonBody(agentvista_ingest::json::parse(&body)?))
        })
    }
}

/// Accepts `application/json` (with parameters) or no `Content-Type` at all.
pub(crate) fn is_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(content_type) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = content_type
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "This endpoint takes Content-Type: application/json".into(),
        ))
    }
}

pub(crate) fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

/// Reads the whole body, refusing it (413) as soon as it is known to exceed `limit`: from
/// `Content-Length` before reading anything, else while streaming.
pub(crate) async fn read_body(
    mut payload: Payload,
    limit: usize,
    declared: Option<usize>,
) -> Result<BytesMut, ApiError> {
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
