//! One log line per request: method, path, status, latency, key prefix — never a key, never a
//! query string (where a careless client might put one).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use agentvista_keys::KeyPrefix;

/// Middleware for `App::wrap(actix_web::middleware::from_fn(request_log))`.
///
/// # Errors
/// Whatever the wrapped service returns.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let response = next.call(req).await?;
    let prefix = response.request().extensions().get::<KeyPrefix>().copied();
    let status = response.status().as_u16();
    let latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    match prefix {
        Some(prefix) => {
            tracing::info!(%method, %path, status, latency_us, key_prefix = %prefix, "request");
        }
        None => tracing::info!(%method, %path, status, latency_us, "request"),
    }
    Ok(response)
}
