//! Request bodies: [`Body`], taken by the handler but read only once it has authenticated the
//! caller, under the size limit, the body deadline and the endpoint's encodings.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use agentvista_ingest::{ContentEncoding, Inflate};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::ApiError;
use crate::budget::Grant;

/// How much a [`Body`] may be, and how long it may take to arrive. [`crate::configure`]
/// registers the server's (`limits.*` in configuration); a service that embeds [`Body`] on its
/// own routes may register its own as app data, else it gets [`BodyLimits::default`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimits {
    /// Most bytes, before and after decompression (413 beyond).
    pub max_bytes: usize,
    /// Longest time for the whole body to arrive (400 and the connection closed beyond).
    pub timeout: Duration,
}

impl Default for BodyLimits {
    /// The contract's defaults: 5 MiB, 30 seconds.
    fn default() -> Self {
        BodyLimits {
            max_bytes: 5 * 1024 * 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The largest buffer reserved before any byte arrives: a client that declares 5 MiB and
/// sends nothing holds no more than this.
const INITIAL_CAPACITY: usize = 16 * 1024;

/// A request body, taken from the connection but not read yet.
///
/// Actix-web runs a handler's extractors concurrently, so a body extractor that read at once
/// would buffer up to `limits.max_body_bytes` while authentication was still pending — for
/// any caller holding a well-formed random key. A handler therefore lists `Body` after its
/// [`crate::Auth`] extractor and reads it in its own code, which runs only once every
/// extractor succeeded:
///
/// ```
/// use actix_web::HttpResponse;
/// use agentvista_http::{ApiError, Auth, Body, auth::Write};
///
/// #[derive(serde::Deserialize)]
/// struct Note { text: String }
///
/// async fn handler(_auth: Auth<Write>, body: Body) -> Result<HttpResponse, ApiError> {
///     let note: Note = body.json().await?; // read only after authentication
///     Ok(HttpResponse::Ok().body(note.text))
/// }
/// ```
///
/// Reading enforces, with the contract's errors:
/// - `Content-Type: application/json` (parameters allowed) for [`Body::json`], else 415 —
///   an absent header too, so that a cross-site "simple" form post never reaches a JSON
///   endpoint;
/// - `Content-Encoding` absent, `identity`, `gzip` or `deflate`, else 415;
/// - at most `limits.max_body_bytes`, before and after decompression, else 413 (refused from
///   `Content-Length` before reading anything);
/// - the whole body within the body deadline, else 400 and the connection is closed;
/// - no NUL character in any JSON string (PostgreSQL cannot store one), else 400;
/// - for [`Body::json`], a JSON object, not an array, else 400.
pub struct Body {
    /// The request, for its headers (a reference-counted handle, not a copy of them).
    req: HttpRequest,
    payload: Payload,
    /// A limit below the configured one, for an endpoint whose bodies are small.
    cap: Option<usize>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(Ok(Body {
            req: req.clone(),
            payload: payload.take(),
            cap: None,
        }))
    }
}

impl Body {
    /// This body under at most `max_bytes` (or the configured limit, if lower): for an endpoint
    /// whose bodies are small and whose callers are not authenticated.
    #[must_use]
    pub fn at_most(mut self, max_bytes: usize) -> Self {
        self.cap = Some(max_bytes);
        self
    }

    /// Reads the body, a JSON object, into `T`; a malformed body is a 400 whose message names
    /// the field, e.g. `scopes[1]: unknown variant "owner", expected one of "read", "write",
    /// "admin"`. A JSON array is a 400 too, although serde would read a struct from one.
    ///
    /// # Errors
    /// 400, 413 or 415 as [`ApiError`]s (see [`Body`]).
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        let body = self.json_bytes().await?;
        if has_nul_escape(&body) {
            return Err(ApiError::BadRequest(
                "body: strings must not contain the NUL character (\\u0000)".into(),
            ));
        }
        Ok(agentvista_ingest::json::parse_object(&body)?)
    }

    /// Reads a JSON body as bytes, for decoders of their own (the batch endpoint): the
    /// `Content-Type` must say JSON, and the rest is as [`Body::bytes`].
    ///
    /// # Errors
    /// 400, 413 or 415 as [`ApiError`]s (see [`Body`]).
    pub async fn json_bytes(self) -> Result<Bytes, ApiError> {
        is_json(self.req.headers())?;
        self.bytes().await
    }

    /// [`Body::json_bytes`] paid for from the memory budget, as [`Body::bytes_within`].
    ///
    /// # Errors
    /// As [`Body::bytes_within`].
    pub async fn json_bytes_within(
        self,
        grant: &mut Grant,
        cost: impl Fn(&[u8]) -> Result<usize, ApiError>,
    ) -> Result<Bytes, ApiError> {
        is_json(self.req.headers())?;
        self.bytes_within(grant, cost).await
    }

    /// Reads the whole body and inflates it per `Content-Encoding`, both under the limit.
    /// An unencoded body is handed on as read, without a copy.
    ///
    /// # Errors
    /// 400, 413 or 415 as [`ApiError`]s (see [`Body`]).
    pub async fn bytes(self) -> Result<Bytes, ApiError> {
        self.read(None).await
    }

    /// [`Body::bytes`] paid for from the memory budget: `grant` grows before each allocation
    /// — the body as it arrives (a declared length at once), each step of inflating it, then
    /// what decoding it will cost, which `cost` says from the decoded bytes (a scan that
    /// allocates nothing, or a multiple of their length). So the many small requests of
    /// normal traffic each pay for what they are, not for the largest body there could be.
    ///
    /// # Errors
    /// As [`Body::bytes`], and whatever `cost` refuses; 503 `overloaded` when the budget
    /// cannot grant a step within its wait. A body refused before it was read whole is then
    /// read to its end and dropped (within the body deadline), and the connection closed, so
    /// that the client reads the answer instead of a reset.
    pub async fn bytes_within(
        self,
        grant: &mut Grant,
        cost: impl Fn(&[u8]) -> Result<usize, ApiError>,
    ) -> Result<Bytes, ApiError> {
        self.read(Some((grant, &cost))).await
    }

    async fn read(self, mut budget: Option<(&mut Grant, Cost<'_>)>) -> Result<Bytes, ApiError> {
        let limits = self
            .req
            .app_data::<web::Data<BodyLimits>>()
            .map_or_else(BodyLimits::default, |limits| *limits.get_ref());
        let limit = self
            .cap
            .map_or(limits.max_bytes, |cap| cap.min(limits.max_bytes));
        let deadline = tokio::time::Instant::now() + limits.timeout;
        let mut encodings = self.req.headers().get_all(CONTENT_ENCODING);
        let first = encodings.next();
        if encodings.next().is_some() {
            // Stacked encodings (`gzip` then `br`, …) are not decoded.
            return Err(ApiError::UnsupportedMediaType(
                "Send one Content-Encoding: gzip, deflate or none".into(),
            ));
        }
        let encoding = ContentEncoding::parse(first.map(|v| v.to_str().unwrap_or("(not text)")))?;
        let declared = declared_length(self.req.headers());
        if declared.is_some_and(|len| len > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let mut payload = self.payload;
        // A declared length is paid for and allocated at once rather than doubled towards.
        let prepaid = match (&mut budget, declared) {
            (Some((grant, _)), Some(len)) => {
                if grant.hold(len).await.is_err() {
                    return Err(drain(payload, deadline, limits.timeout).await);
                }
                true
            }
            _ => false,
        };
        let raw = {
            let capacity = match declared {
                Some(len) if prepaid => len,
                _ => declared.unwrap_or(0).min(INITIAL_CAPACITY),
            };
            let grant = budget.as_mut().filter(|_| !prepaid).map(|(g, _)| &mut **g);
            read_body(
                &mut payload,
                limit,
                capacity,
                deadline,
                limits.timeout,
                grant,
            )
            .await
        };
        let raw = match raw {
            Ok(raw) => raw,
            Err(ApiError::Overloaded) => return Err(drain(payload, deadline, limits.timeout).await),
            Err(err) => return Err(err),
        };
        let decoded = match Inflate::new(encoding, &raw, limit) {
            None => raw.freeze(),
            Some(mut inflate) => {
                // Each step is paid for before it is decoded: the raw body stays held
                // meanwhile, and the decoded bytes grow by at most the step.
                let mut step = INFLATE_STEP;
                loop {
                    if let Some((grant, _)) = budget.as_mut() {
                        grant
                            .hold(raw.capacity() + inflate.len() + step)
                            .await
                            .map_err(|_| ApiError::Overloaded)?;
                    }
                    if inflate.step(step)? {
                        break;
                    }
                    step = inflate.len().clamp(INFLATE_STEP, MAX_INFLATE_STEP);
                }
                Bytes::from(inflate.into_inner())
            }
        };
        if let Some((grant, cost)) = budget {
            // Decoding's cost counts the decoded body; a compressed body's raw bytes are gone
            // by then.
            let cost = cost(&decoded)?;
            grant.hold(cost).await.map_err(|_| ApiError::Overloaded)?;
        }
        Ok(decoded)
    }
}

/// What decoding a body will cost, in bytes, from its decoded bytes.
type Cost<'a> = &'a dyn Fn(&[u8]) -> Result<usize, ApiError>;

/// The first step of inflating a compressed body, and the largest: steps double with what is
/// decoded, up to this, so that a small body costs one step and a large one a few dozen.
const INFLATE_STEP: usize = 64 * 1024;
const MAX_INFLATE_STEP: usize = 1024 * 1024;

/// Reads the rest of a refused body and drops it (no more than the deadline allows), so that
/// the client, still sending, reads the 503 instead of a reset; the answer closes the
/// connection.
async fn drain(
    mut payload: Payload,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> ApiError {
    let rest = async { while let Some(Ok(_)) = payload.next().await {} };
    if tokio::time::timeout_at(deadline, rest).await.is_err() {
        return ApiError::BodyTimeout { deadline: timeout };
    }
    ApiError::Overloaded
}

/// Accepts `application/json`, with parameters; anything else, or no header, is a 415.
fn is_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if essence.as_deref() == Some("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "This endpoint takes Content-Type: application/json".into(),
        ))
    }
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

/// Reads the whole body, refusing it (413) as soon as it is known to exceed `limit` (the
/// caller has checked `Content-Length`). The buffer starts at `capacity` and grows with the
/// bytes that arrive, never with what the client declared, and `grant` (when the body was not
/// paid for up front) grows before it; the whole body must arrive by `deadline`.
async fn read_body(
    payload: &mut Payload,
    limit: usize,
    capacity: usize,
    deadline: tokio::time::Instant,
    timeout: Duration,
    mut grant: Option<&mut Grant>,
) -> Result<BytesMut, ApiError> {
    let read = async {
        let mut body = BytesMut::with_capacity(capacity);
        if let Some(grant) = grant.as_mut() {
            grant
                .hold(body.capacity())
                .await
                .map_err(|_| ApiError::Overloaded)?;
        }
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            if let Some(grant) = grant.as_mut() {
                // The buffer may double as it grows: pay for what it can reach.
                let need = (body.len() + chunk.len()).max(body.capacity());
                grant
                    .hold(need.saturating_mul(2))
                    .await
                    .map_err(|_| ApiError::Overloaded)?;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| ApiError::BodyTimeout { deadline: timeout })?
}

/// Whether a JSON text holds the escape `\u0000` inside a string. A raw NUL byte is invalid
/// JSON and refused by the parser; an escaped backslash (`\\`) is skipped as a unit, so
/// `"\\u0000"` (a backslash followed by the text `u0000`) is not taken for one.
fn has_nul_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::has_nul_escape;

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(has_nul_escape(br#"{"name":"a\u0000b"}"#));
        assert!(has_nul_escape(br#"{"a\u0000":1}"#));
        assert!(has_nul_escape(br#"["\\\u0000"]"#));
        assert!(!has_nul_escape(br#"{"name":"a\\u0000b"}"#));
        assert!(!has_nul_escape(br#"{"name":"a\u0001b \\"}"#));
        assert!(!has_nul_escape(br"\"));
    }
}
