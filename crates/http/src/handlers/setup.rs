//! `POST /api/v1/setup/`: the first account and user, on a fresh installation only.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::password::{Password, hash_password};
use agentvista_keys::{AccountName, Actor, Email};
use agentvista_store::{AuditAction, FirstUser};
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::handlers::audit;
use crate::handlers::session::start_session;
use crate::{ApiError, AppState, Body};

/// The first-run form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Setup {
    /// The account's name: 1 to 100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    account: String,
    /// The first user's e-mail address, `local@domain.tld` (kept trimmed and lower-cased).
    #[schema(format = Email)]
    email: String,
    /// The first user's password.
    #[schema(value_type = String, format = Password)]
    password: Password,
}

/// First run: creates the first account and user, and logs them in.
///
/// Once any user exists this endpoint is a 404, so it cannot be replayed to take over an
/// installation. Throttled like the login.
#[utoipa::path(
    post,
    path = "/api/v1/setup/",
    tag = "sessions",
    request_body(content = Setup, content_type = "application/json"),
    responses(
        (status = 200, description = "Set up and logged in, as after a login.",
            body = crate::handlers::session::SessionAnswer,
            headers(
                ("Set-Cookie" = String, description = "The `av_session` cookie, as the login sets it."),
                ("Cache-Control" = String, description = "`no-store`."),
            )),
        (status = 404, description = "`not_found`: the installation already has a user.",
            body = crate::ErrorBody),
        crate::schema::ThrottledErrors,
    ),
)]
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
    let form: Setup = body
        .at_most(crate::handlers::UNAUTHENTICATED_BODY)
        .json()
        .await?;
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
    audit::record(
        &state,
        &req,
        account.id,
        AuditAction::Setup,
        Actor::User(user.id).to_string(),
        Some(user.email.to_string()),
        Some(serde_json::json!({"account": account.name.to_string()})),
    )
    .await;
    start_session(&state, &req, &user, Some(account.id)).await
}
