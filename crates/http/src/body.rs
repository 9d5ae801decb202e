//! [`JsonBody`]: a JSON request body, size-capped, whose errors name the offending field.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::CONTENT_TYPE;
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
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let declared_len = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let limit = limit?;
            if let Some(content_type) = content_type {
                let essence = content_type
                    .to_str()
                    .unwrap_or_default()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                if essence != "application/json" {
                    return Err(ApiError::UnsupportedMediaType(
                        "this endpoint takes Content-Type: application/json".into(),
                    ));
                }
            }
            if declared_len.is_some_and(|len| len > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(JsonBody)
        })
    }
}

/// Deserializes JSON, naming the path of the first offending field in the error.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let what = inner.to_string();
        // serde_json appends " at line 1 column 12"; the path says more.
        let what = what.split(" at line ").next().unwrap_or(&what).to_owned();
        if matches!(path.as_str(), "" | "." | "?") {
            ApiError::BadRequest(format!("body: {what}"))
        } else {
            ApiError::BadRequest(format!("{path}: {what}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        r#type: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Batch {
        batch: Vec<Item>,
    }

    #[test]
    fn errors_name_the_field_and_the_index() {
        let err = parse::<Batch>(br#"{"batch":[{"type":"a"},{"type":5}]}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("batch[1].type: invalid type"),
            "{err}"
        );
        let err = parse::<Batch>(b"{").unwrap_err();
        assert!(err.to_string().starts_with("body: EOF"), "{err}");
    }
}
