//! `POST /api/v1/setup/`: the first account and user, on a fresh installation only.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::password::{Password, hash_password};
use agentvista_keys::{AccountName, Email};
use agentvista_store::FirstUser;
use chrono::Utc;
use serde::Deserialize;

use crate::handlers::session::start_session;
use crate::{ApiError, AppState, Body};

/// The first-run form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Setup {
    account: String,
    email: String,
    password: Password,
}

/// Creates the first account and user and logs them in. Once any user exists this endpoint is
/// a 404, so it cannot be replayed to take over an installation.
pub(crate) async fn setup(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    if state.store.users().count().await? > 0 {
        return Err(ApiError::NotFound);
    }
    state
        .throttles
        .address(state.config.trusted_proxies.client_of(&req))?;
    let form: Setup = body.json().await?;
    let account = AccountName::parse(&form.account)
        .map_err(|e| ApiError::BadRequest(format!("account: {e}")))?;
    let email =
        Email::parse(&form.email).map_err(|e| ApiError::BadRequest(format!("email: {e}")))?;
    let password = form.password;
    let permit = state.throttles.hashing()?;
    let hash = web::block(move || {
        let _permit = permit;
        hash_password(&password)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::BadRequest(format!("password: {e}")))?;
    let (account, user) = state
        .store
        .create_first_user(
            FirstUser {
                account_name: &account,
                plan: &state.config.default_plan,
                email: &email,
                password_hash: &hash,
            },
            Utc::now(),
        )
        .await?;
    tracing::info!(email = %user.email, account = %account.name, "first user created");
    start_session(&state, &user).await
}
