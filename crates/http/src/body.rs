//! Request bodies: [`Body`], taken by the handler but read only once it has authenticated the
//! caller, under the size limit, the body deadline and the endpoint's encodings.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use agentvista_ingest::ContentEncoding;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::ApiError;

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

    /// Reads the whole body and inflates it per `Content-Encoding`, both under the limit.
    /// An unencoded body is handed on as read, without a copy.
    ///
    /// # Errors
    /// 400, 413 or 415 as [`ApiError`]s (see [`Body`]).
    pub async fn bytes(self) -> Result<Bytes, ApiError> {
        let limits = self
            .req
            .app_data::<web::Data<BodyLimits>>()
            .map_or_else(BodyLimits::default, |limits| *limits.get_ref());
        let limit = self
            .cap
            .map_or(limits.max_bytes, |cap| cap.min(limits.max_bytes));
        let deadline = limits.timeout;
        let mut encodings = self.req.headers().get_all(CONTENT_ENCODING);
        let first = encodings.next();
        if encodings.next().is_some() {
            // Stacked encodings (`gzip` then `br`, …) are not decoded.
            return Err(ApiError::UnsupportedMediaType(
                "Send one Content-Encoding: gzip, deflate or none".into(),
            ));
        }
        let encoding = ContentEncoding::parse(first.map(|v| v.to_str().unwrap_or("(not text)")))?;
        let raw = read_body(
            self.payload,
            limit,
            declared_length(self.req.headers()),
            deadline,
        )
        .await?;
        match encoding.decode(&raw, limit)? {
            std::borrow::Cow::Borrowed(_) => Ok(raw.freeze()),
            std::borrow::Cow::Owned(inflated) => Ok(Bytes::from(inflated)),
        }
    }
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

/// Reads the whole body, refusing it (413) as soon as it is known to exceed `limit`: from
/// `Content-Length` before reading anything, else while streaming. The buffer grows with the
/// bytes that arrive, never with what the client declared; the whole body must arrive within
/// `deadline`.
async fn read_body(
    mut payload: Payload,
    limit: usize,
    declared: Option<usize>,
    deadline: Duration,
) -> Result<BytesMut, ApiError> {
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let read = async {
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(INITIAL_CAPACITY));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    actix_web::rt::time::timeout(deadline, read)
        .await
        .map_err(|_| ApiError::BodyTimeout { deadline })?
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
