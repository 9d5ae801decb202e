//! The people of the caller's account: who they are, their roles, changing a role, removing
//! someone, leaving. Who may do which is [`Role::may_change`], judged by the store in the
//! change's own transaction; an account always keeps an owner (409 `last_owner`).

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::{Actor, Role};
use agentvista_store::{ChangedBy, Member, MemberChange, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Auth, Declared};
use crate::handlers::audit;
use crate::{ApiError, AppState, Body};

/// A member of the account.
#[derive(Serialize, ToSchema)]
pub(crate) struct MemberObject {
    /// The person's id.
    #[schema(value_type = i64)]
    user_id: UserId,
    /// Their e-mail address.
    email: String,
    /// Their role in the account.
    #[schema(value_type = crate::schema::RoleName)]
    role: Role,
    /// When they joined it.
    joined_at: DateTime<Utc>,
}

impl From<Member> for MemberObject {
    fn from(member: Member) -> Self {
        MemberObject {
            user_id: member.user_id,
            email: member.email,
            role: member.role,
            joined_at: member.joined_at,
        }
    }
}

/// The account's members.
#[derive(Serialize, ToSchema)]
pub(crate) struct MemberList {
    /// Every member, in the order they joined.
    data: Vec<MemberObject>,
}

/// The account's members and their roles. Any member's session, or an `admin` key.
#[utoipa::path(
    get,
    path = "/api/v1/me/members/",
    tag = "members",
    security(("bearer_key" = ["admin"]), ("session" = [])),
    responses(
        (status = 200, description = "The account's members.", body = MemberList),
        crate::schema::KeyErrors,
    ),
)]
pub(crate) async fn list_members(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
) -> Result<HttpResponse, ApiError> {
    let data = state
        .store
        .memberships()
        .of_account(auth.principal.account_id)
        .await?
        .into_iter()
        .map(MemberObject::from)
        .collect();
    Ok(HttpResponse::Ok().json(MemberList { data }))
}

/// The body of a role change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRole {
    /// The member's new role.
    #[schema(value_type = crate::schema::RoleName)]
    role: Role,
}

/// Changes a member's role. An admin's session (a key cannot): admins change anyone who is
/// not an owner, and only owners make or unmake owners (403 `insufficient_role` with
/// `required_role: owner`). The last owner cannot be demoted (409 `last_owner`). The new role
/// applies from the member's next request, on every replica.
#[utoipa::path(
    patch,
    path = "/api/v1/me/members/{user_id}/",
    tag = "members",
    params(("user_id" = i64, Path, description = "The member's `user_id`.")),
    security(("session" = [], "csrf_token" = [])),
    request_body(content = SetRole, content_type = "application/json"),
    responses(
        (status = 200, description = "The member, with the new role.", body = MemberObject),
        crate::schema::SessionErrors,
        crate::schema::BodyErrors,
        (status = 404, response = crate::schema::NotFound),
        (status = 409, response = crate::schema::LastOwner),
    ),
)]
pub(crate) async fn set_member_role(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    path: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let target = member_id(&path)?;
    let body: SetRole = body.json().await?;
    let member = change(&state, &req, &auth, target, Some(body.role))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(MemberObject::from(member)))
}

/// Removes a member, or (their own id) leaves the account. Removing needs an admin's session
/// (an owner's to remove an owner); leaving needs none. Their sessions in the account end at
/// once; the keys they created stay the account's. The last owner cannot leave or be removed
/// (409 `last_owner`).
#[utoipa::path(
    delete,
    path = "/api/v1/me/members/{user_id}/",
    tag = "members",
    params(("user_id" = i64, Path, description = "The member's `user_id`.")),
    security(("session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Removed (or left)."),
        crate::schema::SessionErrors,
        (status = 404, response = crate::schema::NotFound),
        (status = 409, response = crate::schema::LastOwner),
    ),
)]
pub(crate) async fn remove_member(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target = member_id(&path)?;
    change(&state, &req, &auth, target, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Applies one membership change as the session's person.
async fn change(
    state: &AppState,
    req: &HttpRequest,
    auth: &Auth<Declared>,
    target: UserId,
    next: Option<Role>,
) -> Result<Option<Member>, ApiError> {
    let principal = &auth.principal;
    let Some(user) = principal.user() else {
        return Err(ApiError::SessionRequired);
    };
    let origin = audit::origin(state, req);
    let actor = Actor::User(user.id).to_string();
    let done = state
        .store
        .memberships()
        .change(MemberChange {
            account: principal.account_id,
            target,
            next,
            by: ChangedBy::Member(user.id),
            actor: &actor,
            origin: &origin,
            at: Utc::now(),
        })
        .await?;
    tracing::info!(member = target.0, role = ?next, "membership changed");
    Ok(done)
}

fn member_id(path: &str) -> Result<UserId, ApiError> {
    path.parse::<i64>()
        .map(UserId)
        .map_err(|_| ApiError::NotFound)
}
