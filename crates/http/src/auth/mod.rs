//! Authentication: an API key (`Authorization: Bearer`) or a session cookie, and what the caller
//! must hold. An embedding service names the scope in the handler's signature (`Auth<Write>`,
//! `Auth<Read>`, `Auth<Admin>`); the server's own handlers take `Auth<Declared>`, whose
//! [`Access`] — key scope, session, least role — is declared once per operation.

mod access;
mod keys;
mod rate_limits;
mod refusals;
mod session;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use agentvista_keys::session::{CsrfToken, SessionToken, SessionTokenHash};
use agentvista_keys::{AccountId, Actor, KeyId, KeyPrefix, Role, Scope, Scopes};
use agentvista_store::{CurrentAccount, Store, User};
use chrono::Utc;

pub use crate::rate_limit::RateLimitStatus;
pub(crate) use access::MountedAccess;
pub use access::{Access, Declared};
pub use agentvista_keys::{KeyLookup, LookupFuture};
pub use keys::KeyAuth;
pub(crate) use session::session_cookie;
pub use session::{CSRF_HEADER, SESSION_COOKIE};

use crate::ApiError;
use refusals::Refusal;

/// Who is making a request, and what they may do.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The account acted for.
    pub account_id: AccountId,
    /// What the credential grants: the key's scopes, or every scope for a session.
    pub scopes: Scopes,
    /// The role it acts with: a session's role in the account, read on this request; an
    /// `admin` key acts as an admin, any other key as a viewer (its scopes say the rest).
    pub role: Role,
    /// How the request authenticated.
    pub credential: Credential,
}

/// The credential behind a [`Principal`]. Its `Debug` shows no secret: the session's tokens
/// print as `[REDACTED]`.
#[derive(Clone, Debug)]
pub enum Credential {
    /// An API key.
    Key {
        /// The key's row id.
        id: KeyId,
        /// Its public prefix (safe to log).
        prefix: KeyPrefix,
    },
    /// A dashboard session.
    Session {
        /// The session's row id.
        id: i64,
        /// The logged-in user.
        user: User,
        /// The session's CSRF token.
        csrf_token: CsrfToken,
        /// SHA-256 of the cookie value, to end the session.
        token_hash: SessionTokenHash,
    },
}

impl Principal {
    /// The key's id when the request came with a key.
    #[must_use]
    pub fn key_id(&self) -> Option<KeyId> {
        match &self.credential {
            Credential::Key { id, .. } => Some(*id),
            Credential::Session { .. } => None,
        }
    }

    /// Who acts, as a key's change log records it: the user of a session, or the key.
    #[must_use]
    pub fn actor(&self) -> Actor {
        match &self.credential {
            Credential::Session { user, .. } => Actor::User(user.id),
            Credential::Key { prefix, .. } => Actor::Key(*prefix),
        }
    }

    /// The user when the request came with a session.
    #[must_use]
    pub fn user(&self) -> Option<&User> {
        match &self.credential {
            Credential::Session { user, .. } => Some(user),
            Credential::Key { .. } => None,
        }
    }
}

/// What an [`Auth`] extractor demands.
pub trait Requirement {
    /// The scope a key needs; `None`: any valid key.
    const SCOPE: Option<Scope>;

    /// The access the request must have: by default a key with [`Self::SCOPE`], or a session
    /// whose role grants what that scope does (`read` a viewer, `write` a member, `admin` an
    /// admin). `None`: the operation declared none, and is refused.
    fn access(_req: &HttpRequest) -> Option<Access> {
        let role = match Self::SCOPE {
            None | Some(Scope::Read) => Role::Viewer,
            Some(Scope::Write) => Role::Member,
            Some(Scope::Admin) => Role::Admin,
        };
        Some(Access::KeyOrSession {
            scope: Self::SCOPE,
            role,
        })
    }
}

/// Requires the `read` scope (sessions have it).
#[derive(Debug)]
pub struct Read;
/// Requires the `write` scope (sessions have it).
#[derive(Debug)]
pub struct Write;
/// Requires the `admin` scope (sessions have it).
#[derive(Debug)]
pub struct Admin;
/// Any valid key or session; the handler decides.
#[derive(Debug)]
pub struct Authenticated;

impl Requirement for Read {
    const SCOPE: Option<Scope> = Some(Scope::Read);
}
impl Requirement for Write {
    const SCOPE: Option<Scope> = Some(Scope::Write);
}
impl Requirement for Admin {
    const SCOPE: Option<Scope> = Some(Scope::Admin);
}
impl Requirement for Authenticated {
    const SCOPE: Option<Scope> = None;
}

/// Extracts the authenticated [`Principal`] and enforces `R`'s scope:
/// `async fn ping(_: Auth<Read>)`.
#[derive(Debug)]
pub struct Auth<R> {
    /// Who is calling.
    pub principal: Principal,
    requirement: PhantomData<R>,
}

/// Extracts a dashboard session and refuses API keys (403 `session_required`). When the
/// operation declares a least role, the session's account must grant it.
#[derive(Debug)]
pub struct SessionOnly {
    /// The session's row id.
    pub id: i64,
    /// The session's user.
    pub user: User,
    /// The account it acts in, with the person's role there as of this request; `None` for
    /// a person who belongs to no account.
    pub account: Option<CurrentAccount>,
    /// The session's CSRF token.
    pub csrf_token: CsrfToken,
    /// SHA-256 of the cookie value.
    pub token_hash: SessionTokenHash,
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl<R: Requirement + 'static> FromRequest for Auth<R> {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            Ok(Auth {
                principal: authorize::<R>(&req).await?,
                requirement: PhantomData,
            })
        })
    }
}

impl FromRequest for SessionOnly {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let session = match authenticate(&req).await? {
                Caller::Session(session) => session,
                Caller::Key(_) => return Err(ApiError::SessionRequired),
            };
            if let Some(least) = MountedAccess::of(&req).and_then(Access::session_role) {
                session_role(&session, least)?;
            }
            Ok(session)
        })
    }
}

/// Authenticates the request and checks it against `R`'s access: what [`Auth<R>`] does, for
/// handlers that must render its errors themselves (OTLP answers in `google.rpc.Status`).
///
/// # Errors
/// 401, 403, 500 (an operation mounted without a declared access) or 503 as [`ApiError`]s.
pub async fn authorize<R: Requirement>(req: &HttpRequest) -> Result<Principal, ApiError> {
    let access = R::access(req).ok_or_else(|| {
        ApiError::Internal("an operation was mounted without its declared access".into())
    })?;
    admit(authenticate(req).await?, access)
}

/// Who presented credentials: a key's principal, or a session.
enum Caller {
    Key(Principal),
    Session(SessionOnly),
}

/// Whether `caller` has `access`; the principal it acts as when it does.
fn admit(caller: Caller, access: Access) -> Result<Principal, ApiError> {
    let session = match (caller, access) {
        (Caller::Key(_), Access::Session { .. }) => return Err(ApiError::SessionRequired),
        (Caller::Key(principal), Access::KeyOrSession { scope, .. }) => {
            if let Some(scope) = scope
                && !principal.scopes.contains(scope)
            {
                refusals::count(Refusal::Scope);
                return Err(ApiError::InsufficientScope(scope));
            }
            return Ok(principal);
        }
        (Caller::Key(principal), Access::Public) => return Ok(principal),
        (Caller::Session(session), access) => (session, access),
    };
    // The principal acts in an account: a session without a role to check still needs one.
    let least = session.1.session_role().unwrap_or(Role::Viewer);
    let session = session.0;
    let account = session_role(&session, least)?;
    Ok(Principal {
        account_id: account.id,
        scopes: Scopes::all(),
        role: account.role,
        credential: Credential::Session {
            id: session.id,
            user: session.user,
            csrf_token: session.csrf_token,
            token_hash: session.token_hash,
        },
    })
}

/// The session's account when its role there is at least `least`; else 403
/// `insufficient_role` (a person with no account has no role).
fn session_role(session: &SessionOnly, least: Role) -> Result<&CurrentAccount, ApiError> {
    match &session.account {
        Some(account) if account.role >= least => Ok(account),
        _ => Err(ApiError::InsufficientRole(least)),
    }
}

/// A key when an `Authorization` header is present (cookies are then ignored), else a session
/// cookie, else 401 `missing_api_key`. Two `Authorization` headers are a 400: which one a
/// proxy or a server honours differs, so none is taken.
async fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let mut headers = req.headers().get_all(AUTHORIZATION);
    let first = headers.next();
    if headers.next().is_some() {
        return Err(ApiError::BadRequest(
            "Authorization: send exactly one header".into(),
        ));
    }
    if let Some(header) = first {
        let keys = key_auth(req)?;
        let (principal, rate) = keys.verify(header.as_bytes(), keys.client_of(req)).await?;
        if let Credential::Key { prefix, .. } = &principal.credential {
            let mut extensions = req.extensions_mut();
            // For the request log: the prefix, never the key.
            extensions.insert(*prefix);
            // For the answer's `RateLimit-*` headers, which `request_log` adds.
            if let Some(rate) = rate {
                extensions.insert(rate);
            }
        }
        return Ok(Caller::Key(principal));
    }
    // Sessions are the AgentVista server's (`configure` registers its store): a service that
    // registered only a [`KeyAuth`] takes keys alone, and a cookie is then no credential.
    if let Some(cookie) = req.cookie(SESSION_COOKIE)
        && let Some(store) = req.app_data::<web::Data<Store>>()
    {
        return Ok(Caller::Session(
            authenticate_session(store, req, cookie.value()).await?,
        ));
    }
    refusals::count(Refusal::Missing);
    Err(ApiError::MissingApiKey)
}

/// The request's session when it carries a session cookie and no `Authorization` header (and,
/// on an unsafe method, the CSRF token); `None` without a cookie. For a public operation that
/// does more for a signed-in person (accepting an invitation).
///
/// # Errors
/// 401 `invalid_session`, 403 `csrf_failed`, 503, as [`ApiError`]s.
pub(crate) async fn optional_session(req: &HttpRequest) -> Result<Option<SessionOnly>, ApiError> {
    if req.headers().contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    match (
        req.cookie(SESSION_COOKIE),
        req.app_data::<web::Data<Store>>(),
    ) {
        (Some(cookie), Some(store)) => authenticate_session(store, req, cookie.value())
            .await
            .map(Some),
        _ => Ok(None),
    }
}

/// The key authentication registered with the app: by [`crate::configure`], or by an
/// embedding service itself.
fn key_auth(req: &HttpRequest) -> Result<&KeyAuth, ApiError> {
    req.app_data::<web::Data<KeyAuth>>()
        .map(|keys| keys.get_ref())
        .ok_or_else(|| {
            ApiError::Internal(
                "neither agentvista_http::configure nor the app registered a KeyAuth".into(),
            )
        })
}

async fn authenticate_session(
    store: &Store,
    req: &HttpRequest,
    token: &str,
) -> Result<SessionOnly, ApiError> {
    let hash = SessionToken::presented(token).hash();
    // Judged on the clock keys' expiry is (the database's, on the store's replicas), so that
    // a server whose own clock is behind does not keep a session past its end.
    let now = key_auth(req).map_or_else(|_| Utc::now(), KeyAuth::expiry_now);
    let Some(found) = store.sessions().find(&hash, now).await? else {
        return Err(ApiError::InvalidSession);
    };
    let csrf_token = found.csrf_token;
    if !req.method().is_safe() {
        let presented = req.headers().get(CSRF_HEADER).map(|v| v.as_bytes());
        if !presented.is_some_and(|p| csrf_token.matches(p)) {
            return Err(ApiError::CsrfFailed);
        }
    }
    Ok(SessionOnly {
        id: found.id,
        user: found.user,
        account: found.account,
        csrf_token,
        token_hash: hash,
    })
}

#[cfg(test)]
mod tests {
    use agentvista_store::UserId;

    use super::*;

    #[test]
    fn a_session_principal_and_session_only_print_no_token() {
        let token = SessionToken::generate().unwrap();
        let csrf = CsrfToken::generate().unwrap();
        let user = User {
            id: UserId(7),
            email: "ada@example.com".to_owned(),
            created_at: Utc::now(),
        };
        let principal = Principal {
            account_id: AccountId(3),
            scopes: Scopes::all(),
            role: Role::Owner,
            credential: Credential::Session {
                id: 1,
                user: user.clone(),
                csrf_token: csrf.clone(),
                token_hash: token.hash(),
            },
        };
        let session = SessionOnly {
            id: 1,
            user,
            account: None,
            csrf_token: csrf.clone(),
            token_hash: token.hash(),
        };
        let hash_hex = hex::encode(token.hash().as_bytes());
        for shown in [format!("{principal:?}"), format!("{session:?}")] {
            assert!(shown.contains("ada@example.com"), "{shown}");
            for secret in [token.expose_secret(), csrf.expose_secret(), &hash_hex] {
                assert!(!shown.contains(&secret[..16]), "{shown}");
            }
        }
    }
}
