//! `/api/v1/me/api-keys/`: ping, list, create, revoke.

use actix_web::{HttpResponse, web};
use agentvista_keys::{Expiry, KeyName, KeyPrefix, Scope, Scopes};
use agentvista_keys::{KeyId, KeyRecord};
use agentvista_store::NewKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{Admin, Auth, Authenticated, Credential, Read};
use crate::handlers::{OK, no_store};
use crate::{ApiError, AppState, Body};

/// A key as the API shows it — never the key, never its hash. Times serialise as chrono
/// does, RFC 3339 in UTC with `Z` and as many fractional digits as they need (0, 3, 6 or 9),
/// which is the contract's format.
#[derive(Clone, Debug, Serialize)]
pub struct KeyObject {
    /// Row id.
    pub id: KeyId,
    /// Human name.
    pub name: String,
    /// `av_` + 8 hex.
    pub prefix: KeyPrefix,
    /// Granted scopes.
    pub scopes: Scopes,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use, to within a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<KeyRecord> for KeyObject {
    fn from(record: KeyRecord) -> Self {
        KeyObject {
            id: record.id,
            name: record.name,
            prefix: record.prefix,
            scopes: record.scopes,
            created_at: record.created_at,
            expires_at: record.expiry.expires_at(),
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
        }
    }
}

/// The create response: the key object plus the full key, shown this once.
#[derive(Serialize)]
pub struct CreatedKey {
    /// The stored key.
    #[serde(flatten)]
    pub object: KeyObject,
    /// The full key. Never logged, never stored, never returned again.
    pub key: String,
}

/// The list answer: every key of the account, newest first.
#[derive(Serialize)]
struct KeyList {
    data: Vec<KeyObject>,
}

/// The body of `POST /api/v1/me/api-keys/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    name: String,
    scopes: Scopes,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

pub(crate) async fn ping(_: Auth<Read>) -> HttpResponse {
    HttpResponse::Ok().json(OK)
}

pub(crate) async fn list(
    state: web::Data<AppState>,
    auth: Auth<Admin>,
) -> Result<HttpResponse, ApiError> {
    let keys = state.store.keys().list(auth.principal.account_id).await?;
    let data = keys.into_iter().map(KeyObject::from).collect();
    Ok(HttpResponse::Ok().json(KeyList { data }))
}

pub(crate) async fn create(
    state: web::Data<AppState>,
    auth: Auth<Admin>,
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
            },
            now,
        )
        .await?;
    tracing::info!(prefix = %record.prefix, scopes = %record.scopes, "API key created");
    Ok(HttpResponse::Created()
        .insert_header(no_store())
        .json(CreatedKey {
            object: record.into(),
            key: key.expose_secret().to_owned(),
        }))
}

pub(crate) async fn revoke(
    state: web::Data<AppState>,
    auth: Auth<Authenticated>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path
        .parse::<i64>()
        .map(KeyId)
        .map_err(|_| ApiError::NotFound)?;
    let principal = &auth.principal;
    let allowed = match &principal.credential {
        Credential::Session { .. } => true,
        Credential::Key { id: own, .. } => *own == id || principal.scopes.contains(Scope::Admin),
    };
    // Another account's key is a 404 whatever the caller's rights, so check it exists first.
    let keys = state.store.keys();
    let record = keys.get(principal.account_id, id).await?;
    if !allowed {
        return Err(ApiError::InsufficientScope(Scope::Admin));
    }
    // Through the lookup port, the one door to revoking: whatever verifies keys hears of it.
    let by = principal.actor();
    let revoked = state
        .keys
        .revoke(principal.account_id, id, by, Utc::now())
        .await?;
    if revoked.is_none() {
        // Gone between the read above and now (another account's key never gets here).
        return Err(ApiError::NotFound);
    }
    tracing::info!(prefix = %record.prefix, "API key revoked");
    Ok(HttpResponse::NoContent().finish())
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
        let object = KeyObject::from(KeyRecord {
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
        });
        let json = serde_json::to_value(&object).unwrap();
        assert_eq!(json["created_at"], "2026-01-02T03:04:05Z");
        assert_eq!(json["expires_at"], "2026-01-02T03:04:05.123Z");
        assert_eq!(json["last_used_at"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(json["revoked_at"], serde_json::Value::Null);
    }
}
