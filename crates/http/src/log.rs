//! One log line per request: method, path, status, latency, key prefix — never a key, never a
//! query string (where a careless client might put one) — and the request's metrics. Every
//! line logged while a request is handled carries its request id.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest};
use agentvista_keys::KeyPrefix;
use tracing::Instrument;

use crate::rate_limit::RateLimitStatus;

/// The header a request id is taken from and returned in.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a client.
const MAX_REQUEST_ID: usize = 64;

/// A request's id: the client's (or its proxy's) `X-Request-Id` when it is 1 to 64 of
/// `A-Z a-z 0-9 . _ : -`, else 16 random hex digits. Anything else a client sends is not
/// taken, so that a log line cannot be forged or bloated through it.
///
/// ```
/// use agentvista_http::RequestId;
/// assert_eq!(RequestId::from_client("lb-7f3a:42").unwrap().as_str(), "lb-7f3a:42");
/// assert!(RequestId::from_client("two words").is_none());
/// assert_eq!(RequestId::generate().as_str().len(), 16);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The client's id, if it is one this server takes.
    #[must_use]
    pub fn from_client(value: &str) -> Option<Self> {
        let plausible = (1..=MAX_REQUEST_ID).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        plausible.then(|| RequestId(value.to_owned()))
    }

    /// A new id: 16 hex digits, unique in the process and not guessable from the ones before
    /// it — a counter mixed with a random base drawn once (no system call per request), by a
    /// bijection (SplitMix64's finaliser), so that no two requests of a process share an id and
    /// the ids do not tell a client how many requests the server has answered.
    #[must_use]
    pub fn generate() -> Self {
        static BASE: OnceLock<u64> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = *BASE.get_or_init(|| {
            let mut bytes = [0u8; 8];
            // Without randomness the ids are still unique, only predictable.
            let _ = getrandom::fill(&mut bytes);
            u64::from_le_bytes(bytes)
        });
        let mut z = base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        RequestId(format!("{z:016x}"))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn of(req: &ServiceRequest) -> Self {
        req.headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::from_client)
            .unwrap_or_else(Self::generate)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Middleware for `App::wrap(actix_web::middleware::from_fn(request_log))`: the request id
/// (in a `request` span around the handler, so that every line it logs has it, and in the
/// response's `X-Request-Id`), the request's log line, and its metrics:
/// `agentvista_http_requests_total{route, method, status}` and
/// `agentvista_http_request_duration_seconds{route, method}`, where `route` is the route's
/// template (`/api/v1/traces/{trace_id}`), never the path a client chose. It also adds the
/// `RateLimit-*` headers to every answer to a key that has a rate limit.
///
/// # Errors
/// Whatever the wrapped service returns.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let id = RequestId::of(&req);
    let method = req.method().clone();
    // A client may put a key anywhere, the path included (percent-encoded or not): what is
    // logged is the decoded path with anything shaped like a key cut to its prefix.
    let path = logged_path(req.path());
    let span = tracing::info_span!("request", request_id = %id);
    req.extensions_mut().insert(id.clone());
    let mut response = next.call(req).instrument(span.clone()).await?;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    if RECORDING.load(Ordering::Relaxed) {
        let route = route_template(response.request());
        let method_label = method_label(&method);
        metrics::counter!(
            "agentvista_http_requests_total",
            "route" => route.clone(),
            "method" => method_label,
            "status" => status.to_string(),
        )
        .increment(1);
        metrics::histogram!(
            "agentvista_http_request_duration_seconds",
            "route" => route,
            "method" => method_label,
        )
        .record(elapsed.as_secs_f64());
    }
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    let (prefix, rate) = {
        let extensions = response.request().extensions();
        (
            extensions.get::<KeyPrefix>().copied(),
            extensions.get::<RateLimitStatus>().copied(),
        )
    };
    if let Some(rate) = rate
        && !response.headers().contains_key("ratelimit-limit")
    {
        for (name, value) in rate.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(name), value);
            }
        }
    }
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| match prefix {
        Some(prefix) => {
            tracing::info!(%method, %path, status, latency_us, key_prefix = %prefix, "request");
        }
        None => tracing::info!(%method, %path, status, latency_us, "request"),
    });
    Ok(response)
}

/// `path` as logged: percent-decoded (so that an encoded key is seen), every key-shaped
/// string cut to its prefix.
fn logged_path(path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    agentvista_keys::redact_keys(&decoded).into_owned()
}

/// Whether the request metrics are recorded: set by [`crate::describe_metrics`], which a
/// program calls once it has installed a recorder. Until then a request builds no labels.
pub(crate) static RECORDING: AtomicBool = AtomicBool::new(false);

/// The template of the route that served `req`, without a trailing slash (every route is
/// mounted with and without one); `unmatched` when none did, so that the paths clients make
/// up never become label values.
fn route_template(req: &HttpRequest) -> String {
    match req.match_pattern() {
        Some(pattern) if pattern.len() > 1 => pattern.trim_end_matches('/').to_owned(),
        Some(pattern) => pattern,
        None => "unmatched".to_owned(),
    }
}

/// The method as a label: the standard ones by name, any other as `other` (a client may
/// send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    #[test]
    fn a_key_in_the_path_is_logged_as_its_prefix_encoded_or_not() {
        let key = agentvista_keys::ApiKey::generate().unwrap();
        let secret = key.expose_secret();
        let prefix = key.prefix().to_string();
        let plain = format!("/api/v1/traces/{secret}/");
        assert_eq!(
            logged_path(&plain),
            format!("/api/v1/traces/{prefix}_[REDACTED]/")
        );
        let encoded: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
        let logged = logged_path(&format!("/x/{encoded}"));
        assert_eq!(logged, format!("/x/{prefix}_[REDACTED]"));
        assert!(!logged.contains(&secret[12..]));
        assert_eq!(logged_path("/api/v1/traces/t%201/"), "/api/v1/traces/t 1/");
    }
}
