//! The pieces of the OpenAPI document that the handlers and errors name in their annotations:
//! the shared error responses (`(status = 401, response = crate::schema::Unauthorized)`), sets
//! of them that operations of one kind share (`crate::schema::KeyErrors`), and the
//! schemas of types that live in crates which know nothing of OpenAPI. [`crate::openapi`]
//! assembles the document; this module depends on nothing else of the crate, so that every
//! module may use it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use agentvista_keys::{Role, Scope};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{
    Array, ArrayBuilder, ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Schema, Type,
};
use utoipa::{IntoResponses, PartialSchema, ToResponse, ToSchema};

/// A scope's name, as the API writes it: the schema of [`Scope`], which lives in the pure
/// `agentvista-keys` crate and so knows nothing of OpenAPI. Built from [`Scope::ALL`], so a
/// new scope appears in the document by itself.
pub(crate) struct ScopeName;

impl PartialSchema for ScopeName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Scope::ALL.map(Scope::as_str)))
            .description(Some(
                "`read`: reads and the ping; `write`: ingestion; `admin`: keys and billing.",
            ))
            .into()
    }
}

impl ToSchema for ScopeName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Scope")
    }
}

/// A role's name, as the API writes it: the schema of [`Role`], built from [`Role::ALL`].
pub(crate) struct RoleName;

impl PartialSchema for RoleName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Role::ALL.map(Role::as_str)))
            .description(Some(
                "A member's role in an account, lowest first: `viewer` reads; `member` also \
                 sends events and makes `read`/`write` keys; `admin` also runs every key, the \
                 spend cap, the audit log and the members who are not owners; `owner` also the \
                 plan, the owners and the account's deletion.",
            ))
            .into()
    }
}

impl ToSchema for RoleName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Role")
    }
}

/// A key's own rate limit: the schema of [`agentvista_keys::RateLimit`], which lives in the
/// pure `agentvista-keys` crate.
pub(crate) struct RateLimitSchema;

impl PartialSchema for RateLimitSchema {
    fn schema() -> RefOr<Schema> {
        let figure = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(agentvista_keys::RateLimit::MAX))
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "per_second",
                figure("Requests a second, sustained, on each server replica."),
            )
            .required("per_second")
            .property(
                "burst",
                figure(
                    "Requests allowed back to back after a quiet spell. Absent in a request: \
                     `per_second`; always present in an answer.",
                ),
            )
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .description(Some(
                "The key's own rate limit (GCRA), enforced in memory on each replica: with N \
                 replicas a key gets up to N times it. Beyond it: 429 `rate_limited`.",
            ))
            .examples([serde_json::json!({"per_second": 10, "burst": 20})])
            .into()
    }
}

impl ToSchema for RateLimitSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RateLimit")
    }
}

/// The scopes of a key as answers show them: one to three, distinct, in the order read,
/// write, admin (what `Scopes` serialises).
pub(crate) fn scope_set() -> Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name(ScopeName::name()))
        .min_items(Some(1))
        .max_items(Some(Scope::ALL.len()))
        .unique_items(true)
        .build()
}

/// A protobuf message, as a request or response body (`application/x-protobuf`).
pub(crate) struct Protobuf;

impl PartialSchema for Protobuf {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .content_media_type("application/x-protobuf")
            .description(Some("A protobuf-encoded message."))
            .into()
    }
}

impl ToSchema for Protobuf {}

/// Any JSON object (OTLP/JSON requests and answers are described by the OpenTelemetry
/// specification, not here).
pub(crate) struct AnyObject;

impl PartialSchema for AnyObject {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Object).into()
    }
}

impl ToSchema for AnyObject {}

/// A `Retry-After` header: whole seconds.
fn retry_after() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("Whole seconds to wait before retrying."))
        .build()
}

/// `Retry-After`, and the `RateLimit-*` headers that come with `rate_limited`.
fn rate_limit_headers() -> [(&'static str, utoipa::openapi::Header); 4] {
    let count = |description: &str| {
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some(description))
            .build()
    };
    [
        ("Retry-After", retry_after()),
        (
            "RateLimit-Limit",
            count("With `rate_limited`: the key's burst."),
        ),
        (
            "RateLimit-Remaining",
            count("With `rate_limited`: 0, the requests allowed now."),
        ),
        (
            "RateLimit-Reset",
            count("With `rate_limited`: whole seconds until the key's bucket is full again."),
        ),
    ]
}

/// A JSON error answer with the shared `ErrorBody`, and `headers`.
fn json_error(
    description: &str,
    headers: impl IntoIterator<Item = (&'static str, utoipa::openapi::Header)>,
) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    headers
        .into_iter()
        .fold(
            ResponseBuilder::new()
                .description(description)
                .content("application/json", content),
            |response, (name, header)| response.header(name, header),
        )
        .build()
}

/// An OTLP error answer: a `google.rpc.Status` in the request's content type, and `headers`.
fn otlp_error(
    description: &str,
    headers: impl IntoIterator<Item = (&'static str, utoipa::openapi::Header)>,
) -> Response {
    // By name: the schema is the answer's own type, `handlers::ingest::RpcStatusJson`, which
    // the document registers (this module sits below the handlers and cannot name it).
    let json = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("RpcStatus")))
        .build();
    let protobuf = ContentBuilder::new()
        .schema(Some(Protobuf::schema()))
        .build();
    headers
        .into_iter()
        .fold(
            ResponseBuilder::new()
                .description(description)
                .content("application/json", json)
                .content("application/x-protobuf", protobuf),
            |response, (name, header)| response.header(name, header),
        )
        .build()
}

/// Declares response components: a marker type per shared answer, referred to from the
/// handlers' annotations as `(status = 401, response = Unauthorized)`.
macro_rules! responses {
    ($($(#[$doc:meta])* $name:ident => $build:expr;)*) => {$(
        $(#[$doc])*
        pub(crate) struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), $build.into())
            }
        }
    )*};
}

responses! {
    /// 400 `bad_request`.
    BadRequest => json_error(
        "`bad_request`: a malformed body, parameter or header (the message names the field; \
         two `Authorization` headers are one), or a body not received within the deadline (the \
         connection is then closed).",
        [],
    );
    /// 401 from authentication.
    Unauthorized => json_error(
        "`missing_api_key` (no credentials; `WWW-Authenticate: Bearer realm=\"agentvista\"`), \
         `invalid_api_key` (an `Authorization` header that is no valid key: one answer for \
         every reason; `WWW-Authenticate: Bearer realm=\"agentvista\", error=\"invalid_token\"`) \
         or `invalid_session` (an unknown or expired session cookie).",
        [],
    );
    /// 401 from the login.
    InvalidCredentials => json_error(
        "`invalid_credentials`: a wrong e-mail address or password (one answer for both).",
        [],
    );
    /// 403.
    Forbidden => json_error(
        "`insufficient_scope` (a key without the scope the operation needs; the body's \
         `required_scope` and `WWW-Authenticate: Bearer error=\"insufficient_scope\", \
         scope=\"…\"` name it), `insufficient_role` (a session whose role in the account does \
         not allow the operation; the body's `required_role` names the least role that does), \
         `csrf_failed` (a session's write without its `X-CSRF-Token`), or `session_required` (a \
         session-only operation called with an API key).",
        [],
    );
    /// 404 `not_found`.
    NotFound => json_error(
        "`not_found`: an unknown id, or an id of another account.",
        [],
    );
    /// 413 `payload_too_large`.
    PayloadTooLarge => json_error(
        "`payload_too_large`: the body is over `limits.max_body_bytes`, before or after \
         decoding; the connection is closed.",
        [],
    );
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType => json_error(
        "`unsupported_media_type`: a `Content-Type` other than `application/json`, none, or a \
         `Content-Encoding` other than `gzip`, `deflate` or `identity`.",
        [],
    );
    /// 429 `too_many_attempts`.
    TooManyAttempts => json_error(
        "`too_many_attempts`: too many logins, first-run setups or password changes from this \
         address or for this account, too many password checks at once, too many leaked-key reports from \
         this address, or too many unknown API keys from this address.",
        [("Retry-After", retry_after())],
    );
    /// 429 `rate_limited`.
    RateLimited => json_error(
        "`rate_limited`: the key's own `rate_limit` is used up on this replica; `Retry-After` \
         says when one more request is allowed, `RateLimit-Reset` when the bucket is full. Or \
         `too_many_attempts`: this address sent too many unknown keys, and this key is not one \
         the replica holds in memory (`Retry-After`).",
        rate_limit_headers(),
    );
    /// 429 `monthly_event_limit_exceeded` or `rate_limited`.
    QuotaExceeded => json_error(
        "`monthly_event_limit_exceeded`: the events do not fit what the plan and the spend cap \
         still allow this month; nothing was stored. The body has `limit`, `used` and \
         `resets_at`; `Retry-After` counts the seconds until the month resets. Or \
         `rate_limited`: the key's own `rate_limit` is used up (then with the \
         `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers too). Or \
         `too_many_attempts`: this address sent too many unknown keys.",
        [("Retry-After", retry_after())],
    );
    /// 503 `unavailable` or `overloaded`.
    Unavailable => json_error(
        "`unavailable`: the database cannot be reached; or `overloaded`: the server's memory \
         budget for requests in flight, or the account's share of it, is taken (nothing was \
         stored; `Retry-After: 1`).",
        [("Retry-After", retry_after())],
    );
    /// 409 `too_many_keys`.
    TooManyKeys => json_error(
        "`too_many_keys`: the account holds `limits.max_active_keys` active keys already \
         (`limit` says how many).",
        [],
    );
    /// 409 `too_many_invitations`.
    TooManyInvitations => json_error(
        "`too_many_invitations`: the account has `limits.max_pending_invitations` pending \
         invitations already (`limit` says how many); withdraw one, or wait for one to be \
         accepted or to expire.",
        [],
    );
    /// 409 `already_rolled` or `too_many_keys`.
    RollConflict => json_error(
        "`already_rolled`: the key has a successor already (a key rolls once; two rolls at \
         once: one succeeds, the other gets this). Or `too_many_keys`: the account holds \
         `limits.max_active_keys` active keys already (`limit` says how many).",
        [],
    );
    /// 409 `last_owner`.
    LastOwner => json_error(
        "`last_owner`: the change would leave the account without an owner; make someone \
         else an owner first.",
        [],
    );
    /// 500 `internal`.
    Internal => json_error(
        "`internal`: a fault of the server or its operator (e.g. an account on a plan the \
         configuration no longer defines); the server log says which.",
        [],
    );
    /// 400 on OTLP.
    OtlpBadRequest => otlp_error(
        "A malformed OTLP body (or two `Authorization` headers): code 3.",
        [],
    );
    /// 401 on OTLP.
    OtlpUnauthorized => otlp_error(
        "No credentials, an invalid key or an invalid session: code 16. `WWW-Authenticate` as \
         on the JSON endpoints.",
        [],
    );
    /// 403 on OTLP.
    OtlpForbidden => otlp_error(
        "A key without `write`, or a session's request without `X-CSRF-Token`: code 7.",
        [],
    );
    /// 413 on OTLP.
    OtlpPayloadTooLarge => otlp_error(
        "The body is over the limit, before or after decoding: code 3; the connection is \
         closed.",
        [],
    );
    /// 415 on OTLP.
    OtlpUnsupportedMediaType => otlp_error(
        "A `Content-Type` other than `application/x-protobuf` or `application/json`, or an \
         unknown `Content-Encoding`: code 3 (in JSON when the content type is unknown).",
        [],
    );
    /// 429 on OTLP.
    OtlpQuotaExceeded => otlp_error(
        "The events do not fit what the month still allows, nothing was stored; or the key's \
         own `rate_limit` is used up (then with the `RateLimit-Limit`, `RateLimit-Remaining` \
         and `RateLimit-Reset` headers too; retryable, as the OTLP specification's 429 is); \
         or this address sent too many unknown keys: code 8.",
        [("Retry-After", retry_after())],
    );
    /// 503 on OTLP.
    OtlpUnavailable => otlp_error(
        "The database cannot be reached, or the memory budget is taken (`overloaded`): code 14.",
        [("Retry-After", retry_after())],
    );
    /// 500 on OTLP.
    OtlpInternal => otlp_error("A fault of the server or its operator: code 13.", []);
}

/// Declares sets of the shared answers above, for an operation's `responses(…)` to name at
/// once: `responses((status = 200, …), KeyErrors, BodyErrors)`. A tuple written after a set
/// replaces the set's answer of the same status (a batch's 429 is the quota's).
macro_rules! answer_sets {
    ($($(#[$doc:meta])* $name:ident => [$($status:literal => $answer:ident),* $(,)?];)*) => {$(
        $(#[$doc])*
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([$((
                    $status.to_owned(),
                    RefOr::Ref(Ref::from_response_name(<$answer as ToResponse>::response().0)),
                )),*])
            }
        }
    )*};
}

answer_sets! {
    /// What an operation that reads the database may answer: 500, 503.
    DatabaseErrors => ["500" => Internal, "503" => Unavailable];
    /// An operation for a dashboard session only: 400, 401, 403, 500, 503.
    SessionErrors => [
        "400" => BadRequest, "401" => Unauthorized, "403" => Forbidden,
        "500" => Internal, "503" => Unavailable,
    ];
    /// An operation a key may call: a session's answers and the key's own rate limit (429).
    KeyErrors => [
        "400" => BadRequest, "401" => Unauthorized, "403" => Forbidden,
        "429" => RateLimited, "500" => Internal, "503" => Unavailable,
    ];
    /// An operation that reads a JSON body: 413, 415.
    BodyErrors => ["413" => PayloadTooLarge, "415" => UnsupportedMediaType];
    /// An operation without credentials that reads a body and is throttled per client: 400,
    /// 413, 415, 429 `too_many_attempts`, 500, 503.
    ThrottledErrors => [
        "400" => BadRequest, "413" => PayloadTooLarge, "415" => UnsupportedMediaType,
        "429" => TooManyAttempts, "500" => Internal, "503" => Unavailable,
    ];
    /// An OTLP endpoint: every error as a `google.rpc.Status` in the request's content type.
    OtlpErrors => [
        "400" => OtlpBadRequest, "401" => OtlpUnauthorized, "403" => OtlpForbidden,
        "413" => OtlpPayloadTooLarge, "415" => OtlpUnsupportedMediaType,
        "429" => OtlpQuotaExceeded, "500" => OtlpInternal, "503" => OtlpUnavailable,
    ];
}
