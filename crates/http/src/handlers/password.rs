//! `PUT /api/v1/me/password/`: a person changes their own password.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::password::{Password, hash_password, verify_password};
use agentvista_keys::{Actor, Email};
use agentvista_store::{AuditAction, NewAuditEntry, PasswordChange, StoreError};
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::SessionOnly;
use crate::handlers::{UNAUTHENTICATED_BODY, audit, no_store};
use crate::{ApiError, AppState, Body};

/// A change of password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePassword {
    /// The password the person signs in with now.
    #[schema(value_type = String, format = Password)]
    current_password: Password,
    /// The new password: 8 to 1024 characters, not the current one.
    #[schema(value_type = String, format = Password)]
    new_password: Password,
}

/// The message of a wrong current password: a 400 naming the field, not a 401, which would
/// read as "signed out" to the dashboard.
const WRONG_CURRENT: &str = "current_password: the password is wrong";

/// Changes the signed-in person's password. Every other session of theirs ends; this one
/// stays. Session only, with the CSRF token; throttled like logins.
#[utoipa::path(
    put,
    path = "/api/v1/me/password/",
    tag = "sessions",
    security(("session" = [], "csrf_token" = [])),
    request_body(content = ChangePassword, content_type = "application/json"),
    responses(
        (status = 204, description = "Changed; every other session of the person has ended.",
            headers(("Cache-Control" = String, description = "`no-store`."))),
        crate::schema::SessionErrors,
        crate::schema::BodyErrors,
        (status = 429, response = crate::schema::TooManyAttempts),
    ),
)]
pub(crate) async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: SessionOnly,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    // A stolen session must not be a way to guess the password faster than a login is.
    let address = state.config.trusted_proxies.client_of(&req);
    state.throttles.address(address)?;
    let user = session.user;
    let email = Email::parse(&user.email).map_err(ApiError::internal)?;
    state.throttles.account(&email, address)?;
    let form: ChangePassword = body.at_most(UNAUTHENTICATED_BODY).json().await?;
    if form.new_password.expose_secret() == form.current_password.expose_secret() {
        return Err(ApiError::BadRequest(
            "new_password: the same as the current password".to_owned(),
        ));
    }
    let stored = state.store.users().credentials(user.id).await?;
    let old = stored.password_hash;
    let permit = state.throttles.hashing()?;
    let checked = old.clone();
    let new = web::block(move || {
        let _permit = permit;
        if !verify_password(&form.current_password, &checked) {
            return Err(ApiError::BadRequest(WRONG_CURRENT.to_owned()));
        }
        hash_password(&form.new_password)
            .map_err(|e| ApiError::BadRequest(format!("new_password: {e}")))
    })
    .await
    .map_err(ApiError::internal)??;
    let origin = audit::origin(&state, &req);
    let change = PasswordChange {
        old: &old,
        new: &new,
        keep: &session.token_hash,
    };
    // Written to the log of the account the session acts in.
    let entry = session.account.as_ref().map(|account| NewAuditEntry {
        account: account.id,
        action: AuditAction::UserPasswordChanged,
        actor: Actor::User(user.id).to_string(),
        target: Some(user.email.clone()),
        origin: &origin,
        detail: None,
        at: Utc::now(),
    });
    let ended = match state
        .store
        .users()
        .change_password(user.id, change, entry)
        .await
    {
        Ok(ended) => ended,
        // Another change got there first: the password checked is no longer the current one.
        Err(StoreError::NotFound) => return Err(ApiError::BadRequest(WRONG_CURRENT.to_owned())),
        Err(err) => return Err(err.into()),
    };
    tracing::info!(
        user = user.id.0,
        other_sessions_ended = ended,
        "password changed"
    );
    Ok(HttpResponse::NoContent().insert_header(no_store()).finish())
}
