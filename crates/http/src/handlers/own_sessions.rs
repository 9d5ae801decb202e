//! The person's own dashboard sessions: where they are signed in, ending one, ending every
//! other. Each ending is written to the audit log of the account the asking session acts in.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::Actor;
use agentvista_store::{AuditAction, NewAuditEntry, SessionInfo};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::SessionOnly;
use crate::handlers::audit;
use crate::{ApiError, AppState};

/// One of the person's sessions.
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionObject {
    /// The session's id.
    id: i64,
    /// When it started.
    created_at: DateTime<Utc>,
    /// When it last made a request (up to a minute behind).
    last_seen_at: DateTime<Utc>,
    /// The address it started from.
    client_address: Option<String>,
    /// The browser it started in.
    user_agent: Option<String>,
    /// Whether it is the session asking.
    current: bool,
}

impl From<SessionInfo> for SessionObject {
    fn from(info: SessionInfo) -> Self {
        SessionObject {
            id: info.id,
            created_at: info.created_at,
            last_seen_at: info.last_seen_at,
            client_address: info.client_address,
            user_agent: info.user_agent,
            current: info.current,
        }
    }
}

/// The person's sessions.
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionList {
    /// Every live session, the most recently seen first.
    data: Vec<SessionObject>,
}

/// How many sessions ended.
#[derive(Serialize, ToSchema)]
pub(crate) struct Ended {
    /// The number of sessions ended.
    ended: u64,
}

/// The person's live sessions: when each started and was last seen, from where, in what.
/// Session only.
#[utoipa::path(
    get,
    path = "/api/v1/me/sessions/",
    tag = "members",
    security(("session" = [])),
    responses(
        (status = 200, description = "The person's sessions.", body = SessionList),
        crate::schema::SessionErrors,
    ),
)]
pub(crate) async fn list_sessions(
    state: web::Data<AppState>,
    session: SessionOnly,
) -> Result<HttpResponse, ApiError> {
    let data = state
        .store
        .sessions()
        .of_user(session.user.id, &session.token_hash, Utc::now())
        .await?
        .into_iter()
        .map(SessionObject::from)
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { data }))
}

/// Ends one of the person's sessions (its next request is 401). Session only, with CSRF;
/// another person's session is 404.
#[utoipa::path(
    delete,
    path = "/api/v1/me/sessions/{session_id}/",
    tag = "members",
    params(("session_id" = i64, Path, description = "The session's `id`.")),
    security(("session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "The session has ended."),
        crate::schema::SessionErrors,
        (status = 404, response = crate::schema::NotFound),
    ),
)]
pub(crate) async fn end_session(
    state: web::Data<AppState>,
    session: SessionOnly,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.parse::<i64>().map_err(|_| ApiError::NotFound)?;
    let origin = audit::origin(&state, &req);
    let entry = entry(&session, AuditAction::SessionEnded, &origin, Some(id));
    if !state
        .store
        .sessions()
        .end(session.user.id, id, entry)
        .await?
    {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Ends every session of the person's but the one asking. Session only, with CSRF.
#[utoipa::path(
    post,
    path = "/api/v1/me/sessions/end-others/",
    tag = "members",
    security(("session" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "How many sessions ended.", body = Ended),
        crate::schema::SessionErrors,
    ),
)]
pub(crate) async fn end_other_sessions(
    state: web::Data<AppState>,
    session: SessionOnly,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let origin = audit::origin(&state, &req);
    let entry = entry(&session, AuditAction::SessionsEndedOthers, &origin, None);
    let ended = state
        .store
        .sessions()
        .end_others(session.user.id, &session.token_hash, entry)
        .await?;
    Ok(HttpResponse::Ok().json(Ended { ended }))
}

/// The audit entry of an ending, for the account the asking session acts in (none without).
fn entry<'a>(
    session: &SessionOnly,
    action: AuditAction,
    origin: &'a agentvista_keys::Origin,
    ended: Option<i64>,
) -> Option<NewAuditEntry<'a>> {
    session.account.as_ref().map(|account| NewAuditEntry {
        account: account.id,
        action,
        actor: Actor::User(session.user.id).to_string(),
        target: Some(session.user.email.clone()),
        origin,
        detail: ended.map(|id| serde_json::json!({"session_id": id})),
        at: Utc::now(),
    })
}
