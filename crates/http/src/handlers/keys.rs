//! `/api/v1/me/api-keys/`: ping, list, create, roll, revoke.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::{Asked, KeyId, KeyRecord};
use agentvista_keys::{Expiry, KeyName, KeyPrefix, RateLimit, Role, Scope, Scopes};
use agentvista_store::{AuditAction, NewKey, RateLimitChange, RollError, RollTerms, User, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Auth, Credential, Declared, Principal};
use crate::handlers::{OK, StatusOk, audit, no_store};
use crate::schema::ScopeName;
use crate::{ApiError, AppState, Body};

/// A key as the API shows it — never the key, never its hash. Times serialise as chrono
/// does, RFC 3339 in UTC with `Z` and as many fractional digits as they need (0, 3, 6 or 9),
/// which is the contract's format.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Key)]
pub struct KeyObject {
    /// Row id.
    #[schema(value_type = i64)]
    pub id: KeyId,
    /// Human name.
    pub name: String,
    /// `av_` + 8 hex.
    #[schema(value_type = String, pattern = "^av_[0-9a-f]{8}$")]
    pub prefix: KeyPrefix,
    /// Granted scopes, in the order read, write, admin.
    #[schema(schema_with = crate::schema::scope_set)]
    pub scopes: Scopes,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry, if any.
    #[schema(required)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use, to within a minute.
    #[schema(required)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time.
    #[schema(required)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key's own rate limit; `null`: none beyond the plan's monthly events.
    #[schema(required, value_type = Option<crate::schema::RateLimitSchema>)]
    pub rate_limit: Option<RateLimit>,
    /// The member who created it (a rolled key's successor keeps its creator); `null` for a
    /// key made on the command line or with an `admin` key.
    #[schema(required)]
    pub created_by: Option<Creator>,
}

/// Who created a key.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Creator {
    /// The person's id.
    #[schema(value_type = i64)]
    pub user_id: UserId,
    /// Their e-mail address.
    pub email: String,
}

impl KeyObject {
    /// The key as the API shows it, its creator found among `people` (the users its account's
    /// keys name).
    #[must_use]
    pub fn new(record: KeyRecord, people: &[User]) -> Self {
        let created_by = record.created_by.and_then(|id| {
            people
                .iter()
                .find(|user| user.id == id)
                .map(|user| Creator {
                    user_id: user.id,
                    email: user.email.clone(),
                })
        });
        KeyObject {
            created_by,
            id: record.id,
            name: record.name,
            prefix: record.prefix,
            scopes: record.scopes,
            created_at: record.created_at,
            expires_at: record.expiry.expires_at(),
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
            rate_limit: record.rate_limit,
        }
    }
}

/// The create response: the key object plus the full key, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The stored key.
    #[serde(flatten)]
    pub object: KeyObject,
    /// The full key. Never logged, never stored, never returned again.
    #[schema(pattern = "^av_[0-9a-f]{8}_[0-9A-Za-z]{38}$")]
    pub key: String,
}

/// The list answer: a page of the account's keys, newest first.
#[derive(Serialize, ToSchema)]
struct KeyList {
    /// Newest first, revoked and expired keys included.
    data: Vec<KeyObject>,
    /// The next page's `cursor`; `null` on the last page.
    #[schema(required)]
    next_cursor: Option<String>,
}

/// Keys per page, when the client does not say and at most.
const KEYS_PER_PAGE: u64 = 100;

/// A key list cursor: the last key's id, opaque (hex of `key:<id>`).
fn encode_cursor(id: KeyId) -> String {
    hex::encode(format!("key:{}", id.0))
}

fn decode_cursor(text: &str) -> Result<KeyId, ()> {
    let bytes = hex::decode(text).map_err(|_| ())?;
    let text = String::from_utf8(bytes).map_err(|_| ())?;
    let id = text
        .strip_prefix("key:")
        .ok_or(())?
        .parse()
        .map_err(|_| ())?;
    Ok(KeyId(id))
}

/// The body of `POST /api/v1/me/api-keys/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "production", "scopes": ["write"], "expires_at": "2099-01-01T00:00:00Z", "rate_limit": {"per_second": 50, "burst": 100}}))]
pub(crate) struct CreateKey {
    /// 1 to 100 characters once trimmed; the trimmed name is kept.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    name: String,
    /// One or more scopes; repeats are ignored.
    #[schema(value_type = Vec<ScopeName>, min_items = 1)]
    scopes: Scopes,
    /// When the key stops working; must be in the future. Absent or `null`: never.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    /// The key's own rate limit. Absent or `null`: none.
    #[serde(default)]
    #[schema(value_type = Option<crate::schema::RateLimitSchema>)]
    rate_limit: Option<RateLimit>,
}

/// Checks a key: 200 for any key with the `read` scope (or a session).
#[utoipa::path(
    get,
    path = "/api/v1/me/api-keys/ping/",
    tag = "keys",
    security(("bearer_key" = ["read"]), ("session" = [])),
    responses(
        (status = 200, description = "The credentials are valid and have `read`.", body = StatusOk),
        crate::schema::KeyErrors,
    ),
)]
pub(crate) async fn ping(_: Auth<Declared>) -> HttpResponse {
    HttpResponse::Ok().json(OK)
}

/// The account's keys, newest first, revoked and expired ones included, a page at a time.
/// Any member's session, or `admin`.
#[utoipa::path(
    get,
    path = "/api/v1/me/api-keys/",
    tag = "keys",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100,
            description = "Keys per page: 1 to 100, 100 when absent."),
        ("cursor" = Option<String>, Query, min_length = 1,
            description = "The previous page's `next_cursor`: an opaque value; any other is a 400."),
    ),
    security(("bearer_key" = ["admin"]), ("session" = [])),
    responses(
        (status = 200, description = "A page of the account's keys; never a key or its hash.", body = KeyList),
        crate::schema::KeyErrors,
    ),
)]
pub(crate) async fn list_api_keys(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (before, limit) =
        super::paging::page_query(&req, KEYS_PER_PAGE, KEYS_PER_PAGE, decode_cursor)?;
    let (keys, next) = state
        .store
        .keys()
        .page(auth.principal.account_id, before, limit)
        .await?;
    let people = state.store.users().creators_of(&keys).await?;
    let data = keys
        .into_iter()
        .map(|record| KeyObject::new(record, &people))
        .collect();
    Ok(HttpResponse::Ok().json(KeyList {
        data,
        next_cursor: next.map(encode_cursor),
    }))
}

/// Creates a key. A member's session (only `read`/`write` below admin), or `admin`. The
/// answer carries the full key, this once.
#[utoipa::path(
    post,
    path = "/api/v1/me/api-keys/",
    tag = "keys",
    security(("bearer_key" = ["admin"]), ("session" = [], "csrf_token" = [])),
    request_body(content = CreateKey, content_type = "application/json"),
    responses(
        (status = 201, description = "The key object plus `key`, the full key, shown this once.",
            body = CreatedKey,
            headers(("Cache-Control" = String, description = "`no-store`."))),
        crate::schema::KeyErrors,
        crate::schema::BodyErrors,
        (status = 409, response = crate::schema::TooManyKeys),
    ),
)]
pub(crate) async fn create_api_key(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let body: CreateKey = body.json().await?;
    // Checked after the whole body deserialised, so a body wrong in several fields names the
    // same one as ever.
    let name =
        KeyName::parse(&body.name).map_err(|e| ApiError::BadRequest(format!("name: {e}")))?;
    let now = Utc::now();
    let expiry = Expiry::for_new_key(body.expires_at, now)
        .map_err(|_| ApiError::BadRequest("expires_at: must be in the future".into()))?;
    if !auth.principal.role.may_mint(body.scopes) {
        return Err(ApiError::InsufficientRole(Role::Admin));
    }
    let created_by = auth.principal.user().map(|u| u.id);
    let (key, record) = state
        .store
        .keys()
        .create(
            auth.principal.account_id,
            NewKey {
                name: &name,
                scopes: body.scopes,
                expiry,
                created_by,
                rate_limit: body.rate_limit,
            },
            now,
        )
        .await?;
    tracing::info!(prefix = %record.prefix, scopes = %record.scopes, "API key created");
    audit::record(
        &state,
        &req,
        record.account_id,
        AuditAction::KeyCreated,
        auth.principal.actor().to_string(),
        Some(record.prefix.to_string()),
        Some(serde_json::json!({"name": record.name, "scopes": record.scopes.to_string()})),
    )
    .await;
    Ok(HttpResponse::Created()
        .insert_header(no_store())
        .json(CreatedKey {
            object: KeyObject::new(
                record,
                auth.principal
                    .user()
                    .map(std::slice::from_ref)
                    .unwrap_or_default(),
            ),
            key: key.expose_secret().to_owned(),
        }))
}

/// The body of `POST /api/v1/me/api-keys/{key_id}/roll/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace_seconds": 3600}))]
pub(crate) struct RollKey {
    /// How long the old key keeps working: 0 (it stops at once, on every replica, before
    /// the answer) to 604800 (7 days).
    #[schema(minimum = 0, maximum = 604_800)]
    grace_seconds: u64,
    /// The new key's rate limit. Absent: the old key's; `null`: none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<crate::schema::RateLimitSchema>)]
    rate_limit: Option<Option<RateLimit>>,
}

/// A field that is present, `null` included: absent stays `None` by `#[serde(default)]`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The roll response: the new key (object and full key, shown this once) and the old key's
/// object with its new `expires_at`.
#[derive(Serialize, ToSchema)]
pub(crate) struct RolledKey {
    /// The new key.
    #[serde(flatten)]
    created: CreatedKey,
    /// The old key, expiring at the end of the grace (or earlier, if it was to expire
    /// earlier); with no grace, revoked.
    rolled: KeyObject,
}

/// Rolls a key: a new key with the old one's name, scopes and expiry, and the old one expiring
/// after `grace_seconds`. An admin's session (a member's for a key they created), or `admin`.
/// The answer carries the new key, this once.
///
/// With no grace the old key is revoked. Whatever the grace, the answer comes once no replica
/// accepts the old key past its new end (the revocation barrier). A key rolls once (409
/// `already_rolled`); a revoked key is not found (404); an expired one cannot roll (400).
#[utoipa::path(
    post,
    path = "/api/v1/me/api-keys/{key_id}/roll/",
    tag = "keys",
    params(("key_id" = i64, Path, description = "The old key's `id`.")),
    security(("bearer_key" = ["admin"]), ("session" = [], "csrf_token" = [])),
    request_body(content = RollKey, content_type = "application/json"),
    responses(
        (status = 201, description = "The new key object plus `key`, the full key, shown this once, and `rolled`, the old key with its new expiry.",
            body = RolledKey,
            headers(("Cache-Control" = String, description = "`no-store`."))),
        crate::schema::KeyErrors,
        crate::schema::BodyErrors,
        (status = 404, response = crate::schema::NotFound),
        (status = 409, response = crate::schema::RollConflict),
    ),
)]
pub(crate) async fn roll_api_key(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    path: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let id = path
        .parse::<i64>()
        .map(KeyId)
        .map_err(|_| ApiError::NotFound)?;
    let body: RollKey = body.json().await?;
    // Over 7 days is the store's refusal, `RollError::GraceTooLong`, answered below.
    let terms = RollTerms {
        grace: std::time::Duration::from_secs(body.grace_seconds),
        rate_limit: body
            .rate_limit
            .map_or(RateLimitChange::Keep, RateLimitChange::Set),
    };
    let principal = &auth.principal;
    if principal.role < Role::Admin {
        let record = state.store.keys().get(principal.account_id, id).await?;
        may_manage(principal, &record)?;
        if !principal.role.may_mint(record.scopes) {
            return Err(ApiError::InsufficientRole(Role::Admin));
        }
    }
    let origin = audit::origin(&state, &req);
    let asked = Asked {
        by: principal.actor(),
        at: Utc::now(),
        origin: &origin,
    };
    // Through the lookup port, as every change that can stop a key: the old key's end waits
    // for the revocation barrier, and the audit entry commits with the roll.
    let rolled = state
        .keys
        .roll(principal.account_id, id, terms, asked)
        .await
        .map_err(|e| match e {
            RollError::NotFound => ApiError::NotFound,
            RollError::AlreadyRolled => ApiError::AlreadyRolled,
            RollError::TooManyKeys { limit } => ApiError::TooManyKeys { limit },
            RollError::Expired => ApiError::BadRequest(
                "key_id: only an active key can be rolled; this one is expired".into(),
            ),
            too_long @ RollError::GraceTooLong => ApiError::BadRequest(too_long.to_string()),
            RollError::Lookup(e) => e.into(),
            unsupported @ RollError::Unsupported => ApiError::internal(unsupported),
        })?;
    tracing::info!(
        old = %rolled.old.prefix,
        new = %rolled.record.prefix,
        grace_seconds = body.grace_seconds,
        "API key rolled"
    );
    let people = state
        .store
        .users()
        .creators_of(std::slice::from_ref(&rolled.old))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(no_store())
        .json(RolledKey {
            created: CreatedKey {
                object: KeyObject::new(rolled.record, &people),
                key: rolled.key.expose_secret().to_owned(),
            },
            rolled: KeyObject::new(rolled.old, &people),
        }))
}

/// Revokes a key: an admin's session (a member's for a key they created), an `admin` key of
/// the same account, or the key itself.
///
/// 204 also when the key was revoked already. The 204 comes only once no server replica will
/// accept the key any more, at most `auth.lease_ms` after the revocation committed.
#[utoipa::path(
    delete,
    path = "/api/v1/me/api-keys/{key_id}/",
    tag = "keys",
    params(("key_id" = i64, Path, description = "The key's `id`.")),
    security(("bearer_key" = []), ("session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "The key is revoked, on every replica."),
        crate::schema::KeyErrors,
        (status = 404, response = crate::schema::NotFound),
    ),
)]
pub(crate) async fn revoke_api_key(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path
        .parse::<i64>()
        .map(KeyId)
        .map_err(|_| ApiError::NotFound)?;
    let principal = &auth.principal;
    // Another account's key is a 404 whatever the caller's rights, so check it exists first.
    let keys = state.store.keys();
    let record = keys.get(principal.account_id, id).await?;
    match &principal.credential {
        Credential::Session { .. } => may_manage(principal, &record)?,
        Credential::Key { id: own, .. } => {
            if *own != id && !principal.scopes.contains(Scope::Admin) {
                return Err(ApiError::InsufficientScope(Scope::Admin));
            }
        }
    }
    // Through the lookup port, the one door to revoking: whatever verifies keys hears of it,
    // and the audit entry commits with the revocation.
    let origin = audit::origin(&state, &req);
    let revoked = state
        .keys
        .revoke(
            principal.account_id,
            id,
            principal.actor(),
            Utc::now(),
            &origin,
        )
        .await?;
    if revoked.is_none() {
        // Gone between the read above and now (another account's key never gets here).
        return Err(ApiError::NotFound);
    }
    tracing::info!(prefix = %record.prefix, "API key revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// Whether a session may revoke or roll `record`: an admin or owner any key of the account, a
/// member only the keys they created (a rolled key's successor counts as theirs too).
fn may_manage(principal: &Principal, record: &KeyRecord) -> Result<(), ApiError> {
    let creator = principal.user().map(|user| user.id);
    if principal.role >= Role::Admin || (creator.is_some() && record.created_by == creator) {
        Ok(())
    } else {
        Err(ApiError::InsufficientRole(Role::Admin))
    }
}

#[cfg(test)]
mod tests {
    use agentvista_keys::AccountId;
    use agentvista_keys::ApiKey;
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn key_times_are_rfc3339_utc_with_z_and_only_the_digits_they_need() {
        let at = |micros| {
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
                + chrono::TimeDelta::microseconds(micros)
        };
        let key = ApiKey::generate().unwrap();
        let object = KeyObject::new(
            KeyRecord {
                id: KeyId(1),
                account_id: AccountId(1),
                created_by: None,
                name: "production".to_owned(),
                prefix: key.prefix(),
                scopes: "read".parse().unwrap(),
                created_at: at(0),
                expiry: Expiry::for_new_key(Some(at(123_000)), at(0)).unwrap(),
                last_used_at: Some(at(123_456)),
                revoked_at: None,
                rate_limit: None,
            },
            &[],
        );
        let json = serde_json::to_value(&object).unwrap();
        assert_eq!(json["created_at"], "2026-01-02T03:04:05Z");
        assert_eq!(json["expires_at"], "2026-01-02T03:04:05.123Z");
        assert_eq!(json["last_used_at"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(json["revoked_at"], serde_json::Value::Null);
    }
}
