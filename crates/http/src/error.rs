//! [`ApiError`]: every error the API answers with, mapped to HTTP in exactly one place.

use std::error::Error as StdError;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use agentvista_ingest::IngestError;
use agentvista_keys::LookupError;
use agentvista_keys::{Role, Scope};
use agentvista_quota::QuotaExceeded;
use agentvista_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a client should wait before retrying when the database is unreachable.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// An error answer of the API. Each variant's doc names its status and `error` code; the
/// messages never contain a key, a password or a database message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_request`: malformed JSON or parameters; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// 400 `bad_request`: the body did not arrive within the body deadline; the connection is
    /// closed, since the rest of the body may still be on its way.
    #[error("body: not received within {} s", deadline.as_secs())]
    BodyTimeout {
        /// The deadline.
        deadline: std::time::Duration,
    },
    /// 401 `missing_api_key`: no credentials at all.
    #[error("No credentials: send an API key as \"Authorization: Bearer av_...\" or log in")]
    MissingApiKey,
    /// 401 `invalid_api_key`: one message for malformed, unknown, revoked and expired keys.
    #[error("The API key is not valid: it may be mistyped, revoked or expired")]
    InvalidApiKey,
    /// 401 `invalid_session`: a session cookie that is unknown or expired.
    #[error("The session is not valid or has expired: log in again")]
    InvalidSession,
    /// 401 `invalid_credentials`: one message for an unknown e-mail and a wrong password.
    #[error("The e-mail address or the password is wrong")]
    InvalidCredentials,
    /// 403 `session_required`: a session-only endpoint called with an API key.
    #[error("This endpoint needs a dashboard session, not an API key")]
    SessionRequired,
    /// 403 `session_required`: an invitation for a person who has a user, accepted without
    /// that person's session (it names the e-mail to sign in as).
    #[error("Sign in as {0} to accept this invitation")]
    SignInAs(String),
    /// 403 `insufficient_scope`: a valid key without the scope the endpoint needs.
    #[error("The API key lacks the \"{0}\" scope this endpoint needs")]
    InsufficientScope(Scope),
    /// 403 `insufficient_role`, with `required_role`: a session (or an `admin` key, which acts
    /// as an admin) whose role in the account does not allow the operation.
    #[error("Your role in this account does not allow this: it needs {0} or above")]
    InsufficientRole(Role),
    /// 403 `csrf_failed`: a cookie-authenticated unsafe request without the session's token.
    #[error("The X-CSRF-Token header is missing or does not match the session")]
    CsrfFailed,
    /// 404 `not_found`: unknown route, unknown id, or another account's id.
    #[error("Not found")]
    NotFound,
    /// 409 `too_many_keys`, with `limit`: creating or rolling a key would pass the account's
    /// `limits.max_active_keys`.
    #[error(
        "The account holds {limit} active keys, the most it may: revoke one it no longer needs"
    )]
    TooManyKeys {
        /// The limit.
        limit: u32,
    },
    /// 409 `too_many_invitations`, with `limit`: inviting one more e-mail would pass the
    /// account's `limits.max_pending_invitations`.
    #[error(
        "The account has {limit} pending invitations, the most it may: withdraw one, or wait \
         for one to be accepted or to expire"
    )]
    TooManyInvitations {
        /// The limit.
        limit: u32,
    },
    /// 409 `already_rolled`: the key has a successor already; it rolls once.
    #[error("This key was rolled already: roll its successor, or create a key")]
    AlreadyRolled,
    /// 409 `last_owner`: the change would leave the account without an owner.
    #[error("An account keeps at least one owner: make someone else an owner first")]
    LastOwner,
    /// 413 `payload_too_large`: a body over the configured limit (after decompression too).
    #[error("The request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415 `unsupported_media_type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 `too_many_attempts`, with `Retry-After`: logins or first-run setups beyond the
    /// throttle of the client address or the account, more password checks at once than the
    /// server runs, or leaked-key reports beyond the client address's throttle.
    #[error("Too many attempts; retry in {retry_after_secs} s")]
    TooManyAttempts {
        /// Whole seconds until an attempt is allowed again.
        retry_after_secs: u64,
    },
    /// 429 `rate_limited`, with `Retry-After` and the `RateLimit-*` headers: the key's own
    /// rate limit is used up on this replica.
    #[error(
        "This API key's rate limit ({} requests a second, {} at once) is used up; retry in \
         {retry_after_secs} s",
        limit.per_second(),
        limit.burst()
    )]
    RateLimited {
        /// The key's limit.
        limit: agentvista_keys::RateLimit,
        /// Whole seconds until one more request is allowed.
        retry_after_secs: u64,
        /// Whole seconds until the key's bucket is full again.
        reset_secs: u64,
    },
    /// 429 `monthly_event_limit_exceeded`, with `limit`, `used`, `resets_at`, `Retry-After`.
    #[error(
        "The plan's monthly event limit does not leave room for these events; move to a larger \
         plan or raise the spend cap (Settings → Billing)"
    )]
    QuotaExceeded {
        /// The refusal.
        exceeded: QuotaExceeded,
        /// Whole seconds until the period resets.
        retry_after_secs: u64,
    },
    /// 503 `overloaded`, with `Retry-After: 1`: the memory budget, or the account's share of
    /// it, is taken by requests in flight; nothing was stored. The connection is closed.
    #[error(
        "The server is busy with other requests (its memory budget for requests in flight is \
         taken); nothing was stored: retry in a second"
    )]
    Overloaded,
    /// 503 `unavailable`: the database cannot be reached (never reported as a 401).
    #[error("The service cannot reach its database; try again shortly")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// 500 `internal`: logged with its whole source chain, answered opaquely.
    #[error("An internal error occurred")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

/// The contract's `error` codes: the `error` field of every JSON error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed JSON, protobuf or parameters.
    BadRequest,
    /// 401: no credentials at all.
    MissingApiKey,
    /// 401: an `Authorization` header that is not a valid key.
    InvalidApiKey,
    /// 401: an unknown or expired session cookie.
    InvalidSession,
    /// 401: a login with a wrong e-mail or password.
    InvalidCredentials,
    /// 403: a session-only endpoint called with an API key.
    SessionRequired,
    /// 403: a valid key without the scope the endpoint needs.
    InsufficientScope,
    /// 403: a session whose role in the account does not allow the operation.
    InsufficientRole,
    /// 403: a cookie-authenticated write without the session's CSRF token.
    CsrfFailed,
    /// 404: unknown route, unknown id, or another account's id.
    NotFound,
    /// 409: creating or rolling a key past the account's limit of active keys.
    TooManyKeys,
    /// 409: inviting past the account's limit of pending invitations.
    TooManyInvitations,
    /// 409: a roll of a key that has a successor already.
    AlreadyRolled,
    /// 409: removing, demoting or letting leave the account's last owner.
    LastOwner,
    /// 413: a body over the limit.
    PayloadTooLarge,
    /// 415: a `Content-Type` or `Content-Encoding` the endpoint does not take.
    UnsupportedMediaType,
    /// 429: logins, first-run setups or leaked-key reports beyond the throttle.
    TooManyAttempts,
    /// 429: the key's own rate limit is used up (on this replica).
    RateLimited,
    /// 429: events that do not fit what the month still allows.
    MonthlyEventLimitExceeded,
    /// 503: the requests in flight hold the server's memory budget, or the account's share.
    Overloaded,
    /// 503: the database cannot be reached.
    Unavailable,
    /// 500: a fault of the server or its operator.
    Internal,
}

impl ErrorCode {
    /// The code as sent, e.g. `bad_request`; the same string serde writes.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::MissingApiKey => "missing_api_key",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::InvalidSession => "invalid_session",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::SessionRequired => "session_required",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InsufficientRole => "insufficient_role",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooManyKeys => "too_many_keys",
            ErrorCode::TooManyInvitations => "too_many_invitations",
            ErrorCode::AlreadyRolled => "already_rolled",
            ErrorCode::LastOwner => "last_owner",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MonthlyEventLimitExceeded => "monthly_event_limit_exceeded",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// The body of every JSON error answer, as the contract fixes it: `error` and `message`
/// always, the other fields only with the errors that carry them. The OpenAPI document's
/// `ErrorBody` schema is derived from this type, so the document and the answers cannot drift
/// apart.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The stable code to branch on.
    pub error: ErrorCode,
    /// One sentence for a human; it may change between versions.
    pub message: String,
    /// With `insufficient_scope`: the scope the endpoint needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = crate::schema::ScopeName, nullable = false)]
    pub required_scope: Option<Scope>,
    /// With `insufficient_role`: the least role the operation needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = crate::schema::RoleName, nullable = false)]
    pub required_role: Option<Role>,
    /// With `monthly_event_limit_exceeded`: the events this month allows; with
    /// `too_many_keys`: the most active keys an account may hold; with
    /// `too_many_invitations`: the most pending invitations it may have.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub limit: Option<u64>,
    /// With `monthly_event_limit_exceeded`: the events counted this month before the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub used: Option<u64>,
    /// With `monthly_event_limit_exceeded`: when the month's count starts again (RFC 3339,
    /// whole seconds, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime, nullable = false)]
    pub resets_at: Option<String>,
}

impl ApiError {
    /// The contract's `error` code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The contract's `error` code, as the closed set the OpenAPI document lists.
    #[must_use]
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BodyTimeout { .. } => ErrorCode::BadRequest,
            ApiError::MissingApiKey => ErrorCode::MissingApiKey,
            ApiError::InvalidApiKey => ErrorCode::InvalidApiKey,
            ApiError::InvalidSession => ErrorCode::InvalidSession,
            ApiError::InvalidCredentials => ErrorCode::InvalidCredentials,
            ApiError::SessionRequired | ApiError::SignInAs(_) => ErrorCode::SessionRequired,
            ApiError::InsufficientScope(_) => ErrorCode::InsufficientScope,
            ApiError::InsufficientRole(_) => ErrorCode::InsufficientRole,
            ApiError::CsrfFailed => ErrorCode::CsrfFailed,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::TooManyKeys { .. } => ErrorCode::TooManyKeys,
            ApiError::TooManyInvitations { .. } => ErrorCode::TooManyInvitations,
            ApiError::AlreadyRolled => ErrorCode::AlreadyRolled,
            ApiError::LastOwner => ErrorCode::LastOwner,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::TooManyAttempts { .. } => ErrorCode::TooManyAttempts,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::QuotaExceeded { .. } => ErrorCode::MonthlyEventLimitExceeded,
            ApiError::Overloaded => ErrorCode::Overloaded,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The sentence for a human, as sent in `message`.
    #[must_use]
    pub fn message(&self) -> String {
        let mut message = self.to_string();
        if !message.ends_with('.') {
            message.push('.');
        }
        message
    }

    /// The JSON body: `error`, `message`, and the fields the contract adds for this error.
    #[must_use]
    pub fn body(&self) -> ErrorBody {
        let mut body = ErrorBody {
            error: self.error_code(),
            message: self.message(),
            required_scope: None,
            required_role: None,
            limit: None,
            used: None,
            resets_at: None,
        };
        match self {
            ApiError::InsufficientScope(scope) => body.required_scope = Some(*scope),
            ApiError::InsufficientRole(role) => body.required_role = Some(*role),
            ApiError::TooManyKeys { limit } | ApiError::TooManyInvitations { limit } => {
                body.limit = Some(u64::from(*limit));
            }
            ApiError::QuotaExceeded { exceeded, .. } => {
                body.limit = Some(exceeded.limit);
                body.used = Some(exceeded.used);
                body.resets_at = Some(
                    exceeded
                        .resets_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                );
            }
            _ => {}
        }
        body
    }

    /// Headers the contract attaches to this error.
    #[must_use]
    pub fn headers(&self) -> Vec<(header::HeaderName, String)> {
        match self {
            ApiError::MissingApiKey => vec![(
                header::WWW_AUTHENTICATE,
                r#"Bearer realm="agentvista""#.to_owned(),
            )],
            ApiError::InvalidApiKey => vec![(
                header::WWW_AUTHENTICATE,
                r#"Bearer realm="agentvista", error="invalid_token""#.to_owned(),
            )],
            ApiError::InsufficientScope(scope) => vec![(
                header::WWW_AUTHENTICATE,
                format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
            )],
            ApiError::QuotaExceeded {
                retry_after_secs, ..
            }
            | ApiError::TooManyAttempts { retry_after_secs } => {
                vec![(header::RETRY_AFTER, retry_after_secs.to_string())]
            }
            ApiError::RateLimited {
                limit,
                retry_after_secs,
                reset_secs,
            } => {
                let status = crate::rate_limit::RateLimitStatus {
                    limit: limit.burst().get(),
                    remaining: 0,
                    reset_secs: *reset_secs,
                };
                let mut headers = vec![(header::RETRY_AFTER, retry_after_secs.to_string())];
                headers.extend(
                    status
                        .headers()
                        .map(|(name, value)| (header::HeaderName::from_static(name), value)),
                );
                headers
            }
            ApiError::Overloaded => vec![(header::RETRY_AFTER, "1".to_owned())],
            ApiError::Unavailable(_) => vec![(
                header::RETRY_AFTER,
                UNAVAILABLE_RETRY_AFTER_SECS.to_string(),
            )],
            _ => Vec::new(),
        }
    }

    /// The gRPC status code the OTLP specification pairs with this error's HTTP status.
    #[must_use]
    pub fn grpc_code(&self) -> i32 {
        match self.status_code().as_u16() {
            400 | 413 | 415 => 3, // INVALID_ARGUMENT
            401 => 16,            // UNAUTHENTICATED
            403 => 7,             // PERMISSION_DENIED
            404 => 5,             // NOT_FOUND
            429 => 8,             // RESOURCE_EXHAUSTED
            503 => 14,            // UNAVAILABLE
            _ => 13,              // INTERNAL
        }
    }

    /// Whether the connection must close after this answer: the rest of the body may still
    /// be on its way, and reading it is what the limit or the deadline refused to do.
    #[must_use]
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ApiError::PayloadTooLarge { .. } | ApiError::BodyTimeout { .. } | ApiError::Overloaded
        )
    }

    /// Wraps any error as a 500.
    pub fn internal(err: impl StdError + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(err))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BodyTimeout { .. } => StatusCode::BAD_REQUEST,
            ApiError::MissingApiKey
            | ApiError::InvalidApiKey
            | ApiError::InvalidSession
            | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::SessionRequired
            | ApiError::SignInAs(_)
            | ApiError::InsufficientScope(_)
            | ApiError::InsufficientRole(_)
            | ApiError::CsrfFailed => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::TooManyKeys { .. }
            | ApiError::TooManyInvitations { .. }
            | ApiError::AlreadyRolled
            | ApiError::LastOwner => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::QuotaExceeded { .. }
            | ApiError::TooManyAttempts { .. }
            | ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.response_builder().json(self.body())
    }
}

impl ApiError {
    /// The answer to this error without its body: logged if it is the server's fault, with
    /// its status and headers, the connection closed where the error says so. Every answer
    /// to an error starts here; [`ResponseError::error_response`] adds the contract's JSON
    /// body, OTLP its `google.rpc.Status`.
    pub(crate) fn response_builder(&self) -> HttpResponseBuilder {
        if let ApiError::Internal(source) | ApiError::Unavailable(source) = self {
            tracing::error!(error = %error_chain(source.as_ref()), code = self.code(), "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        for (name, value) in self.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.insert_header((name, value));
            }
        }
        if self.closes_connection() {
            // The rest of the body may still be on the wire; do not read it. (actix-web drops
            // a hand-set `Connection` header; `force_close` is how it is said.)
            response.force_close();
        }
        response
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::Invalid(message) => ApiError::BadRequest(message),
            IngestError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
            IngestError::UnsupportedMediaType(message) => ApiError::UnsupportedMediaType(message),
        }
    }
}

impl From<LookupError> for ApiError {
    fn from(err: LookupError) -> Self {
        match err {
            LookupError::Unavailable(source) => ApiError::Unavailable(source),
            LookupError::Failed(source) => ApiError::Internal(source),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound | StoreError::AlreadySetUp => ApiError::NotFound,
            StoreError::TooManyKeys { limit } => ApiError::TooManyKeys { limit },
            StoreError::TooManyInvitations { limit } => ApiError::TooManyInvitations { limit },
            StoreError::LastOwner => ApiError::LastOwner,
            StoreError::InsufficientRole(role) => ApiError::InsufficientRole(role),
            StoreError::InvitedSomeoneElse(email) => ApiError::SignInAs(email),
            StoreError::CursorForOtherFilters => ApiError::BadRequest(err.to_string()),
            StoreError::AlreadyMember => {
                ApiError::BadRequest("email: this person is a member of the account already".into())
            }
            // The edge refuses NUL characters first; this is the database's own refusal.
            StoreError::InvalidInput(_) => ApiError::BadRequest(
                "body: a string holds a character the database cannot store (NUL)".into(),
            ),
            StoreError::Unavailable(_) => ApiError::Unavailable(Box::new(err)),
            StoreError::Database(_)
            | StoreError::EmailTaken
            | StoreError::Corrupt { .. }
            | StoreError::KeyGeneration(_)
            | StoreError::InvalidOptions(_) => ApiError::internal(err),
        }
    }
}

/// An error and its sources on one line, for logs and command-line messages.
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn messages_are_sentences() {
        assert_eq!(ApiError::NotFound.message(), "Not found.");
        assert_eq!(
            ApiError::InsufficientScope(Scope::Write).message(),
            "The API key lacks the \"write\" scope this endpoint needs."
        );
    }

    #[test]
    fn quota_errors_carry_the_contract_fields() {
        let err = ApiError::QuotaExceeded {
            exceeded: QuotaExceeded {
                limit: 25,
                used: 24,
                resets_at: chrono::Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            },
            retry_after_secs: 42,
        };
        let body = serde_json::to_value(err.body()).unwrap();
        assert_eq!(body["error"], "monthly_event_limit_exceeded");
        assert_eq!(body["limit"], 25);
        assert_eq!(body["used"], 24);
        assert_eq!(body["resets_at"], "2026-12-01T00:00:00Z");
        assert_eq!(err.headers(), vec![(header::RETRY_AFTER, "42".to_owned())]);
        assert_eq!(err.status_code(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn a_rate_limited_answer_says_when_to_retry_and_the_keys_limit() {
        let err = ApiError::RateLimited {
            limit: agentvista_keys::RateLimit::new(5, 20).unwrap(),
            retry_after_secs: 1,
            reset_secs: 4,
        };
        assert_eq!(err.status_code(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.code(), "rate_limited");
        assert_eq!(
            err.headers()
                .into_iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect::<Vec<_>>(),
            [
                "retry-after: 1",
                "ratelimit-limit: 20",
                "ratelimit-remaining: 0",
                "ratelimit-reset: 4"
            ]
        );
        let message = err.message();
        assert!(
            message.contains("5 requests a second, 20 at once"),
            "{message}"
        );
        // Distinct from the month's limit, whose body has more fields.
        assert_eq!(
            serde_json::to_value(err.body())
                .unwrap()
                .as_object()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(err.grpc_code(), 8);
    }

    #[test]
    fn error_bodies_carry_only_the_fields_of_their_error() {
        let body = serde_json::to_value(ApiError::NotFound.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "not_found", "message": "Not found."})
        );
        let body = serde_json::to_value(ApiError::InsufficientScope(Scope::Admin).body()).unwrap();
        assert_eq!(body["required_scope"], "admin");
        assert_eq!(body.as_object().unwrap().len(), 3);
    }

    /// The string a client compares (`as_str`) and the one serde writes (and the document
    /// lists) are one and the same for every code.
    #[test]
    fn every_error_code_serialises_as_its_string() {
        let errors = [
            ApiError::BadRequest(String::new()),
            ApiError::BodyTimeout {
                deadline: std::time::Duration::from_secs(1),
            },
            ApiError::MissingApiKey,
            ApiError::InvalidApiKey,
            ApiError::InvalidSession,
            ApiError::InvalidCredentials,
            ApiError::SessionRequired,
            ApiError::InsufficientScope(Scope::Read),
            ApiError::CsrfFailed,
            ApiError::NotFound,
            ApiError::TooManyKeys { limit: 1 },
            ApiError::TooManyInvitations { limit: 1 },
            ApiError::AlreadyRolled,
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::TooManyAttempts {
                retry_after_secs: 1,
            },
            ApiError::RateLimited {
                limit: agentvista_keys::RateLimit::new(1, 1).unwrap(),
                retry_after_secs: 1,
                reset_secs: 1,
            },
            ApiError::QuotaExceeded {
                exceeded: QuotaExceeded {
                    limit: 1,
                    used: 1,
                    resets_at: chrono::Utc::now(),
                },
                retry_after_secs: 1,
            },
            ApiError::Overloaded,
            ApiError::Unavailable("down".into()),
            ApiError::Internal("broken".into()),
        ];
        let mut seen = std::collections::HashSet::new();
        for err in &errors {
            let code = err.error_code();
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert_eq!(err.body().error, code);
            seen.insert(code);
        }
        // Every code is some error's: the document lists no code the server never sends.
        assert_eq!(seen.len(), 20);
    }
}
