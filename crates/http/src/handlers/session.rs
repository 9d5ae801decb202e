//! Dashboard login, logout and the current session.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::password::{Password, verify_password};
use agentvista_keys::session::{CsrfToken, SessionToken};
use agentvista_keys::{AccountId, Actor, Email, Role};
use agentvista_store::UserId;
use agentvista_store::{AuditAction, CurrentAccount, NewSession, User};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{SessionOnly, session_cookie};
use crate::handlers::{UNAUTHENTICATED_BODY, audit, no_store};
use crate::{ApiError, AppState, Body};

/// A login request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    /// The user's e-mail address (compared trimmed and lower-cased).
    email: String,
    /// The user's password.
    #[schema(value_type = String, format = Password)]
    password: Password,
}

/// The answer of login, first-run setup, the session endpoint, an account switch and an
/// invitation's acceptance.
#[derive(Serialize, ToSchema)]
#[schema(as = Session)]
pub(crate) struct SessionAnswer<'a> {
    /// The logged-in user.
    user: UserAnswer<'a>,
    /// The account the session acts in; null for a person who belongs to no account.
    account: Option<AccountAnswer<'a>>,
    /// The person's role in that account, read on this request; null without an account.
    #[schema(value_type = Option<crate::schema::RoleName>)]
    role: Option<Role>,
    /// The token that cookie-authenticated writes must send as `X-CSRF-Token`.
    csrf_token: &'a str,
}

/// An account as the session object names it.
#[derive(Serialize, ToSchema)]
#[schema(as = SessionAccount)]
struct AccountAnswer<'a> {
    /// The account's id.
    #[schema(value_type = i64)]
    id: AccountId,
    /// Its name.
    name: &'a str,
}

/// A user as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = User)]
struct UserAnswer<'a> {
    /// The user's id.
    #[schema(value_type = i64)]
    id: UserId,
    /// The user's e-mail address.
    email: &'a str,
}

impl<'a> SessionAnswer<'a> {
    pub(crate) fn new(
        user: &'a User,
        account: Option<&'a CurrentAccount>,
        csrf_token: &'a CsrfToken,
    ) -> Self {
        SessionAnswer {
            user: UserAnswer {
                id: user.id,
                email: &user.email,
            },
            account: account.map(|account| AccountAnswer {
                id: account.id,
                name: &account.name,
            }),
            role: account.map(|account| account.role),
            csrf_token: csrf_token.expose_secret(),
        }
    }
}

/// Logs in to the dashboard: sets the `av_session` cookie and returns the CSRF token.
///
/// A wrong e-mail address and a wrong password get the same 401. Throttled per client address
/// and per account (429 `too_many_attempts` before any password is checked).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login/",
    tag = "sessions",
    request_body(content = Login, content_type = "application/json"),
    responses(
        (status = 200, description = "Logged in: the session cookie is set.", body = SessionAnswer,
            headers(
                ("Set-Cookie" = String, description = "`av_session=…; HttpOnly; SameSite=Strict; Path=/; Max-Age=…` (and `Secure` unless `server.insecure_cookies`)."),
                ("Cache-Control" = String, description = "`no-store`."),
            )),
        crate::schema::ThrottledErrors,
        (status = 401, response = crate::schema::InvalidCredentials),
    ),
)]
pub(crate) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    // The address's bucket first: a flood of garbage bodies costs the attacker attempts too.
    let address = state.config.trusted_proxies.client_of(&req);
    state.throttles.address(address)?;
    let login: Login = body.at_most(UNAUTHENTICATED_BODY).json().await?;
    // A string that is no e-mail address names no account: nothing to throttle it by, no one
    // to look up, and it fails below exactly as an unknown address does.
    let email = Email::parse(&login.email).ok();
    let found = match &email {
        Some(email) => {
            state.throttles.account(email, address)?;
            state.store.users().find_by_email(email).await?
        }
        None => None,
    };
    // Held while the hash runs; if the client leaves, the permit stays with the blocking task
    // until the hash ends, so the bound holds.
    let permit = state.throttles.hashing()?;
    // An unknown e-mail is checked against a dummy hash, so both failures take as long.
    let (hash, user) = match found {
        Some(credentials) => (credentials.password_hash, Some(credentials.user)),
        None => (state.dummy_password_hash.clone(), None),
    };
    let password = login.password;
    let matches = web::block(move || {
        let _permit = permit;
        verify_password(&password, &hash)
    })
    .await
    .map_err(ApiError::internal)?;
    let user = match (matches, user) {
        (true, Some(user)) => user,
        (_, user) => {
            tracing::info!(cause = "wrong e-mail or password", "login refused");
            // A wrong password for a known address is the business of the account its login
            // would start in; an unknown address has no account to tell.
            if let Some(user) = user
                && let Some(account) = state.store.memberships().starting_account(user.id).await?
            {
                audit::record(
                    &state,
                    &req,
                    account.account_id,
                    AuditAction::LoginFailed,
                    "anonymous".to_owned(),
                    Some(user.email.to_string()),
                    None,
                )
                .await;
            }
            return Err(ApiError::InvalidCredentials);
        }
    };
    // The account the person last switched to, else their oldest.
    let account = state.store.memberships().starting_account(user.id).await?;
    if let Some(account) = &account {
        audit::record(
            &state,
            &req,
            account.account_id,
            AuditAction::LoginSucceeded,
            Actor::User(user.id).to_string(),
            Some(user.email.to_string()),
            None,
        )
        .await;
    }
    start_session(&state, &req, &user, account.map(|a| a.account_id)).await
}

/// Opens a session for `user` acting in `account`, which they must belong to: the cookie, and
/// the session object with the CSRF token in the body.
pub(crate) async fn start_session(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
    account: Option<AccountId>,
) -> Result<HttpResponse, ApiError> {
    let token = SessionToken::generate().map_err(ApiError::internal)?;
    let csrf_token = CsrfToken::generate().map_err(ApiError::internal)?;
    let now = Utc::now();
    let ttl = state.config.session_ttl;
    let sessions = state.store.sessions();
    sessions.delete_expired(now).await?;
    let origin = audit::origin(state, req);
    let session = sessions
        .create(
            user,
            NewSession {
                token_hash: &token.hash(),
                csrf_token: &csrf_token,
                account,
                origin: &origin,
                now,
                expires_at: now + ttl,
            },
        )
        .await?;

    let cookie = session_cookie(
        token.expose_secret().to_owned(),
        ttl.num_seconds(),
        !state.config.insecure_cookies,
    );
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .cookie(cookie)
        .json(SessionAnswer::new(
            user,
            session.account.as_ref(),
            &csrf_token,
        )))
}

/// Logs out: the session is deleted and its cookie cleared. Session only, with the CSRF token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout/",
    tag = "sessions",
    security(("session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "The session is gone.",
            headers(
                ("Set-Cookie" = String, description = "`av_session=` with `Max-Age=0`."),
                ("Cache-Control" = String, description = "`no-store`."),
            )),
        crate::schema::SessionErrors,
    ),
)]
pub(crate) async fn logout(
    state: web::Data<AppState>,
    session: SessionOnly,
) -> Result<HttpResponse, ApiError> {
    state.store.sessions().delete(&session.token_hash).await?;
    let gone = session_cookie(String::new(), 0, !state.config.insecure_cookies);
    Ok(HttpResponse::NoContent()
        .insert_header(no_store())
        .cookie(gone)
        .finish())
}

/// The current session's user and CSRF token. Session only: an API key gets 403
/// `session_required`.
#[utoipa::path(
    get,
    path = "/api/v1/auth/session/",
    tag = "sessions",
    security(("session" = [])),
    responses(
        (status = 200, description = "The session's user and CSRF token.", body = SessionAnswer,
            headers(("Cache-Control" = String, description = "`no-store`."))),
        crate::schema::SessionErrors,
    ),
)]
pub(crate) async fn current_session(session: SessionOnly) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(no_store())
        .json(SessionAnswer::new(
            &session.user,
            session.account.as_ref(),
            &session.csrf_token,
        ))
}

/// One account of the person's, as their accounts list shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct AccountEntry {
    /// The account's id.
    #[schema(value_type = i64)]
    id: AccountId,
    /// Its name.
    name: String,
    /// The person's role in it.
    #[schema(value_type = crate::schema::RoleName)]
    role: Role,
    /// Whether the session acts in it.
    current: bool,
}

/// The person's accounts.
#[derive(Serialize, ToSchema)]
pub(crate) struct AccountList {
    /// Every account the person belongs to, the oldest membership first.
    data: Vec<AccountEntry>,
}

/// The accounts the person belongs to, with their role in each and which one the session acts
/// in. Session only.
#[utoipa::path(
    get,
    path = "/api/v1/me/accounts/",
    tag = "members",
    security(("session" = [])),
    responses(
        (status = 200, description = "The person's accounts.", body = AccountList),
        crate::schema::SessionErrors,
    ),
)]
pub(crate) async fn list_accounts(
    state: web::Data<AppState>,
    session: SessionOnly,
) -> Result<HttpResponse, ApiError> {
    let current = session.account.as_ref().map(|account| account.id);
    let data = state
        .store
        .memberships()
        .of_user(session.user.id)
        .await?
        .into_iter()
        .map(|membership| AccountEntry {
            id: membership.account_id,
            current: Some(membership.account_id) == current,
            name: membership.account_name,
            role: membership.role,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AccountList { data }))
}

/// The body of an account switch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwitchAccount {
    /// The account to act in: one the person belongs to.
    #[schema(value_type = i64)]
    account_id: i64,
}

/// Moves the session to another account of the person's. Session only, with CSRF. The answer
/// is the session object in that account with a new CSRF token (the old one stops working);
/// the person's next login starts there too. An account they are not in is 404.
#[utoipa::path(
    post,
    path = "/api/v1/auth/switch-account/",
    tag = "sessions",
    security(("session" = [], "csrf_token" = [])),
    request_body(content = SwitchAccount, content_type = "application/json"),
    responses(
        (status = 200, description = "The session, now in that account.", body = SessionAnswer,
            headers(("Cache-Control" = String, description = "`no-store`."))),
        crate::schema::SessionErrors,
        crate::schema::BodyErrors,
        (status = 404, response = crate::schema::NotFound),
    ),
)]
pub(crate) async fn switch_account(
    state: web::Data<AppState>,
    session: SessionOnly,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let body: SwitchAccount = body.json().await?;
    // A new token: a page of the old account left open cannot write to the new one.
    let csrf_token = CsrfToken::generate().map_err(ApiError::internal)?;
    let account = state
        .store
        .sessions()
        .switch(
            &session.token_hash,
            &session.user,
            AccountId(body.account_id),
            &csrf_token,
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .json(SessionAnswer::new(
            &session.user,
            Some(&account),
            &csrf_token,
        )))
}
