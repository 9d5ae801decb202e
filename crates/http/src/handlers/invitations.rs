//! Invitations: an admin invites an e-mail with a role and hands on the link shown once; the
//! person it names accepts it — a new person by choosing a password, an existing one only
//! signed in as themself, so that no invitation ever changes an existing login.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::password::{Password, hash_password};
use agentvista_keys::{Email, InvitationToken, Role};
use agentvista_store::{Acceptance, Invitation, NewInvitation, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Auth, Declared, optional_session};
use crate::handlers::session::start_session;
use crate::handlers::{UNAUTHENTICATED_BODY, audit, no_store};
use crate::{ApiError, AppState, Body};

/// How long an invitation works.
pub(crate) const INVITATION_TTL: TimeDelta = TimeDelta::days(7);

/// An invitation as its account's admins see it.
#[derive(Serialize, ToSchema)]
pub(crate) struct InvitationObject {
    /// The invitation's id.
    id: i64,
    /// The e-mail invited.
    email: String,
    /// The role it grants.
    #[schema(value_type = crate::schema::RoleName)]
    role: Role,
    /// When it was made.
    created_at: DateTime<Utc>,
    /// When it stops working.
    expires_at: DateTime<Utc>,
}

impl From<Invitation> for InvitationObject {
    fn from(invitation: Invitation) -> Self {
        InvitationObject {
            id: invitation.id,
            email: invitation.email,
            role: invitation.role,
            created_at: invitation.created_at,
            expires_at: invitation.expires_at,
        }
    }
}

/// A new invitation with its link, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedInvitation {
    /// The invitation.
    #[serde(flatten)]
    invitation: InvitationObject,
    /// `<server.public_url>/invite/<token>`: hand it to the person; it works once, for 7 days.
    url: String,
}

/// The pending invitations.
#[derive(Serialize, ToSchema)]
pub(crate) struct InvitationList {
    /// Newest first.
    data: Vec<InvitationObject>,
}

/// The body of an invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Invite {
    /// Who to invite.
    #[schema(format = Email)]
    email: String,
    /// With which role (`owner` only by an owner).
    #[schema(value_type = crate::schema::RoleName)]
    role: Role,
}

/// Invites an e-mail to the account with a role. An admin's session (a key cannot); only an
/// owner invites an owner. The answer's `url` carries the one-time token, shown this once; a
/// pending invitation for the same e-mail is replaced; inviting a member is a 400; an account
/// has at most `limits.max_pending_invitations` pending (409 `too_many_invitations`).
#[utoipa::path(
    post,
    path = "/api/v1/me/invitations/",
    tag = "members",
    security(("session" = [], "csrf_token" = [])),
    request_body(content = Invite, content_type = "application/json"),
    responses(
        (status = 201, description = "The invitation and its link, shown this once.",
            body = CreatedInvitation,
            headers(("Cache-Control" = String, description = "`no-store`."))),
        (status = 409, response = crate::schema::TooManyInvitations),
        crate::schema::SessionErrors,
        crate::schema::BodyErrors,
    ),
)]
pub(crate) async fn create_invitation(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let body: Invite = body.json().await?;
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::BadRequest(format!("email: {e}")))?;
    let principal = &auth.principal;
    // Inviting is granting: an owner's role only by an owner.
    principal
        .role
        .may_change(Role::Viewer, Some(body.role))
        .map_err(ApiError::InsufficientRole)?;
    let token = InvitationToken::generate().map_err(ApiError::internal)?;
    let now = Utc::now();
    let origin = audit::origin(&state, &req);
    let actor = principal.actor().to_string();
    let invitation = state
        .store
        .invitations()
        .create(NewInvitation {
            account: principal.account_id,
            email: &email,
            role: body.role,
            token_hash: &token.hash(),
            invited_by: principal.user().map(|u| u.id),
            acting: principal.role,
            actor: &actor,
            origin: &origin,
            now,
            expires_at: now + INVITATION_TTL,
        })
        .await?;
    tracing::info!(invitation = invitation.id, role = %body.role, "invitation created");
    Ok(HttpResponse::Created()
        .insert_header(no_store())
        .json(CreatedInvitation {
            invitation: invitation.into(),
            url: invitation_url(&state.config.public_url, &token),
        }))
}

/// The link of an invitation.
pub(crate) fn invitation_url(public_url: &str, token: &InvitationToken) -> String {
    format!(
        "{}/invite/{}",
        public_url.trim_end_matches('/'),
        token.expose_secret()
    )
}

/// The account's pending invitations (never their tokens). An admin's session.
#[utoipa::path(
    get,
    path = "/api/v1/me/invitations/",
    tag = "members",
    security(("session" = [])),
    responses(
        (status = 200, description = "Pending invitations, newest first.", body = InvitationList),
        crate::schema::SessionErrors,
    ),
)]
pub(crate) async fn list_invitations(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
) -> Result<HttpResponse, ApiError> {
    let data = state
        .store
        .invitations()
        .pending(auth.principal.account_id, Utc::now())
        .await?
        .into_iter()
        .map(InvitationObject::from)
        .collect();
    Ok(HttpResponse::Ok().json(InvitationList { data }))
}

/// Revokes a pending invitation: its link stops working. An admin's session.
#[utoipa::path(
    delete,
    path = "/api/v1/me/invitations/{invitation_id}/",
    tag = "members",
    params(("invitation_id" = i64, Path, description = "The invitation's `id`.")),
    security(("session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Revoked."),
        crate::schema::SessionErrors,
        (status = 404, response = crate::schema::NotFound),
    ),
)]
pub(crate) async fn revoke_invitation(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.parse::<i64>().map_err(|_| ApiError::NotFound)?;
    let origin = audit::origin(&state, &req);
    state
        .store
        .invitations()
        .revoke(
            auth.principal.account_id,
            id,
            auth.principal.role,
            &auth.principal.actor().to_string(),
            &origin,
            Utc::now(),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The body of an acceptance. No `Debug`: it holds the token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Accept {
    /// The token of the link (`avinv_…`).
    #[schema(value_type = String)]
    token: String,
    /// A new person's password (8 to 1024 characters). A person who has a user sends their
    /// session cookie instead; a password here never changes an existing user.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<Password>,
}

/// Accepts an invitation: the person it names joins the account with its role, and gets a
/// session there. A new person sends a password; a person who has a user must send their own
/// session (403 `session_required`, "sign in as …", otherwise). An unknown, used, expired or
/// revoked token is 404. Throttled like the login.
#[utoipa::path(
    post,
    path = "/api/v1/invitations/accept/",
    tag = "members",
    request_body(content = Accept, content_type = "application/json"),
    responses(
        (status = 200, description = "Joined: the session object in the invited account.",
            body = crate::handlers::session::SessionAnswer,
            headers(
                ("Set-Cookie" = String, description = "The `av_session` cookie, as the login sets it."),
                ("Cache-Control" = String, description = "`no-store`."),
            )),
        (status = 403, response = crate::schema::Forbidden),
        (status = 404, response = crate::schema::NotFound),
        crate::schema::ThrottledErrors,
    ),
)]
pub(crate) async fn accept_invitation(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let address = state.config.trusted_proxies.client_of(&req);
    state.throttles.address(address)?;
    let form: Accept = body.at_most(UNAUTHENTICATED_BODY).json().await?;
    let token = InvitationToken::presented(&form.token);
    let now = Utc::now();
    let invitations = state.store.invitations();
    let Some(pending) = invitations.find_pending(&token.hash(), now).await? else {
        return Err(ApiError::NotFound);
    };
    let invited = Email::parse(&pending.invitation.email).map_err(ApiError::internal)?;
    state.throttles.account(&invited, address)?;
    let origin = audit::origin(&state, &req);
    let existing = state.store.users().find_by_email(&invited).await?;
    let (user, account) = match existing {
        Some(credentials) => {
            let session = optional_session(&req).await?;
            if session.as_ref().map(|s| s.user.id) != Some(credentials.user.id) {
                return Err(ApiError::SignInAs(invited.to_string()));
            }
            let who = Acceptance::Existing(&credentials.user);
            invitations.accept(&token.hash(), who, &origin, now).await?
        }
        None => {
            let password = form.password.ok_or_else(|| {
                ApiError::BadRequest("password: a new person chooses a password".into())
            })?;
            let permit = state.throttles.hashing()?;
            let hash = web::block(move || {
                let _permit = permit;
                hash_password(&password)
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::BadRequest(format!("password: {e}")))?;
            invitations
                .accept(&token.hash(), Acceptance::NewPerson(&hash), &origin, now)
                .await
                .map_err(|e| match e {
                    // Someone made the user meanwhile: they must sign in.
                    StoreError::EmailTaken => ApiError::SignInAs(invited.to_string()),
                    other => other.into(),
                })?
        }
    };
    tracing::info!(user = user.id.0, account = account.0, "invitation accepted");
    start_session(&state, &req, &user, Some(account)).await
}
