//! Deleting the account: every key revoked through the barrier, every session and membership
//! ended, the account hidden — then its data removed in the background.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::AccountClosing;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Auth, Declared, session_cookie};
use crate::handlers::{audit, no_store};
use crate::{ApiError, AppState, Body};

/// The body of a deletion: the account's name, typed to confirm.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmDeletion {
    /// The account's name, exactly.
    confirm: String,
}

/// Deletes the account. An owner's session (a key cannot), with the account's name typed in
/// `confirm`. The 204 comes once every key of the account is revoked on every replica (one
/// revocation barrier for all of them), its sessions, memberships and pending invitations
/// have ended and it is hidden from every endpoint; its events, traces, usage, audit log and
/// key rows are then removed in the background by the retention sweep. The people in it keep
/// their logins.
#[utoipa::path(
    delete,
    path = "/api/v1/me/account/",
    tag = "members",
    security(("session" = [], "csrf_token" = [])),
    request_body(content = ConfirmDeletion, content_type = "application/json"),
    responses(
        (status = 204, description = "Deleted: no key of it works on any replica.",
            headers(
                ("Set-Cookie" = String, description = "`av_session=` with `Max-Age=0`: the session ended with the account."),
                ("Cache-Control" = String, description = "`no-store`."),
            )),
        crate::schema::SessionErrors,
        crate::schema::BodyErrors,
        (status = 404, response = crate::schema::NotFound),
    ),
)]
pub(crate) async fn delete_account(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let body: ConfirmDeletion = body.json().await?;
    let principal = &auth.principal;
    let account = state.store.accounts().get(principal.account_id).await?;
    if body.confirm != account.name {
        return Err(ApiError::BadRequest(format!(
            "confirm: type the account's name, {}, to delete it",
            account.name
        )));
    }
    let origin = audit::origin(&state, &req);
    let revoked = state
        .keys
        .close_account(AccountClosing {
            account: account.id,
            by: principal.actor(),
            email: principal.user().map(|u| u.email.as_str()),
            at: Utc::now(),
            origin: &origin,
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(
        account = account.id.0,
        keys_revoked = revoked,
        "account deleted"
    );
    let gone = session_cookie(String::new(), 0, !state.config.insecure_cookies);
    Ok(HttpResponse::NoContent()
        .insert_header(no_store())
        .cookie(gone)
        .finish())
}
