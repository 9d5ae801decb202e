//! Dashboard login, logout and the current session.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::password::{Password, verify_password};
use agentvista_keys::session::{CsrfToken, SessionToken};
use agentvista_keys::{Actor, Email};
use agentvista_store::UserId;
use agentvista_store::{AuditAction, User};
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

/// The answer of login, first-run setup and the session endpoint.
#[derive(Serialize, ToSchema)]
#[schema(as = Session)]
pub(crate) struct SessionAnswer<'a> {
    /// The logged-in user.
    user: UserAnswer<'a>,
    /// The token that cookie-authenticated writes must send as `X-CSRF-Token`.
    csrf_token: &'a str,
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
    fn new(user: &'a User, csrf_token: &'a CsrfToken) -> Self {
        SessionAnswer {
            user: UserAnswer {
                id: user.id,
                email: &user.email,
            },
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
            // A wrong password for a known address is its account's business; an unknown address
            // has no account to tell.
            if let Some(user) = user {
                audit::record(
                    &state,
                    &req,
                    user.account_id,
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
    audit::record(
        &state,
        &req,
        user.account_id,
        AuditAction::LoginSucceeded,
        Actor::User(user.id).to_string(),
        Some(user.email.to_string()),
        None,
    )
    .await;
    start_session(&state, &user).await
}

/// Opens a session for `user`: the cookie, and the CSRF token in the body.
pub(crate) async fn start_session(state: &AppState, user: &User) -> Result<HttpResponse, ApiError> {
    let token = SessionToken::generate().map_err(ApiError::internal)?;
    let csrf_token = CsrfToken::generate().map_err(ApiError::internal)?;
    let now = Utc::now();
    let ttl = state.config.session_ttl;
    let sessions = state.store.sessions();
    sessions.delete_expired(now).await?;
    sessions
        .create(user, &token.hash(), &csrf_token, now, now + ttl)
        .await?;
    let cookie = session_cookie(
        token.expose_secret().to_owned(),
        ttl.num_seconds(),
        !state.config.insecure_cookies,
    );
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .cookie(cookie)
        .json(SessionAnswer::new(user, &csrf_token)))
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
        .json(SessionAnswer::new(&session.user, &session.csrf_token))
}
