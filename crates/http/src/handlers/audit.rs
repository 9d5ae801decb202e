//! The audit log: what the handlers record (through [`record`]) and `GET /api/v1/me/audit-log/`.

use actix_web::http::header::USER_AGENT;
use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::AccountId;
use agentvista_store::{AuditAction, AuditEntry, MAX_AUDIT_PAGE, NewAuditEntry, Origin};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Auth, Declared};
use crate::handlers::paging::page_query;
use crate::{ApiError, AppState, error_chain};

/// The default page size.
const DEFAULT_PAGE: u64 = 50;

/// Where `req` came from: its client (behind trusted proxies, the forwarded one) and its
/// `User-Agent`.
pub(crate) fn origin(state: &AppState, req: &HttpRequest) -> Origin {
    let user_agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok());
    Origin::new(state.config.trusted_proxies.client_of(req), user_agent)
}

/// Appends an entry for `account`. The action has happened already: an entry that cannot be
/// written is an error in the server's log, not a failure of the request (a key shown once
/// would otherwise be lost to its owner).
pub(crate) async fn record(
    state: &AppState,
    req: &HttpRequest,
    account: AccountId,
    action: AuditAction,
    actor: String,
    target: Option<String>,
    detail: Option<serde_json::Value>,
) {
    let origin = origin(state, req);
    let entry = NewAuditEntry {
        account,
        action,
        actor,
        target,
        origin: &origin,
        detail,
        at: Utc::now(),
    };
    if let Err(err) = state.store.audit().append(entry).await {
        tracing::error!(
            action = action.as_str(),
            error = %error_chain(&err),
            "audit log: the entry could not be written"
        );
    }
}

/// One entry of the audit log.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditEntry)]
struct EntryObject {
    /// Increasing: a later entry has a larger id.
    id: i64,
    /// When.
    at: DateTime<Utc>,
    /// `key.created`, `key.rolled`, `key.revoked`, `key.reported_leaked`, `login.succeeded`,
    /// `login.failed`, `setup`, `billing.spend_cap_changed`, `billing.plan_changed`,
    /// `user.password_changed`.
    action: String,
    /// Who: `user:<id>`, `key:<prefix>`, `cli`, `leak_report` (a leaked-key report), or
    /// `anonymous` (a failed login).
    actor: String,
    /// What was acted on: a key's prefix, a user's e-mail address.
    #[schema(required)]
    target: Option<String>,
    /// The client's address (behind trusted proxies, the forwarded one).
    #[schema(required)]
    client_address: Option<String>,
    /// The client's `User-Agent`, at most 256 characters.
    #[schema(required)]
    user_agent: Option<String>,
    /// The action's particulars, e.g. `{"grace_seconds": 3600, "new_prefix": "av_…"}`.
    #[schema(required, value_type = Option<Object>)]
    detail: Option<serde_json::Value>,
}

impl From<AuditEntry> for EntryObject {
    fn from(e: AuditEntry) -> Self {
        EntryObject {
            id: e.id,
            at: e.at,
            action: e.action,
            actor: e.actor,
            target: e.target,
            client_address: e.client_address,
            user_agent: e.user_agent,
            detail: e.detail,
        }
    }
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
struct AuditList {
    /// Newest first.
    data: Vec<EntryObject>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[schema(required)]
    next_cursor: Option<String>,
}

/// The account's audit log, newest first: keys created, rolled and revoked, logins that
/// succeeded or failed, the setup, spend-cap and plan changes. An admin's session, or `admin`.
#[utoipa::path(
    get,
    path = "/api/v1/me/audit-log/",
    tag = "keys",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100,
            description = "Entries per page: 1 to 100, 50 when absent."),
        ("cursor" = Option<String>, Query, min_length = 1,
            description = "The previous page's `next_cursor`: an opaque value; any other is a 400."),
    ),
    security(("bearer_key" = ["admin"]), ("session" = [])),
    responses(
        (status = 200, description = "A page of entries, newest first.", body = AuditList),
        crate::schema::KeyErrors,
    ),
)]
pub(crate) async fn audit_log(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (before, limit) = page_query(&req, DEFAULT_PAGE, MAX_AUDIT_PAGE, |cursor| {
        cursor.parse::<i64>().ok().filter(|id| *id > 0).ok_or(())
    })?;
    let page = state
        .store
        .audit()
        .page(auth.principal.account_id, before, limit)
        .await?;
    Ok(HttpResponse::Ok().json(AuditList {
        data: page.entries.into_iter().map(EntryObject::from).collect(),
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    }))
}
