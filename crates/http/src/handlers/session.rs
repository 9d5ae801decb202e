//! Dashboard login, logout and the current session.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::Email;
use agentvista_keys::password::{Password, verify_password};
use agentvista_keys::session::{CsrfToken, SessionToken};
use agentvista_store::User;
use agentvista_store::UserId;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::auth::{SessionOnly, session_cookie};
use crate::handlers::no_store;
use crate::{ApiError, AppState, Body};

/// A login request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    email: String,
    password: Password,
}

/// The answer of login, first-run setup and the session endpoint.
#[derive(Serialize)]
struct SessionAnswer<'a> {
    user: UserAnswer<'a>,
    csrf_token: &'a str,
}

/// A user as the API shows it.
#[derive(Serialize)]
struct UserAnswer<'a> {
    id: UserId,
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

pub(crate) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    // The address's bucket first: a flood of garbage bodies costs the attacker attempts too.
    let address = state.config.trusted_proxies.client_of(&req);
    state.throttles.address(address)?;
    let login: Login = body.json().await?;
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
    let (true, Some(user)) = (matches, user) else {
        tracing::info!(cause = "wrong e-mail or password", "login refused");
        return Err(ApiError::InvalidCredentials);
    };

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

pub(crate) async fn current(session: SessionOnly) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(no_store())
        .json(SessionAnswer::new(&session.user, &session.csrf_token))
}
