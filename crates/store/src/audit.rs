//! The audit log: append-only, one entry per action on an account's credentials and terms,
//! with who did it, from which address and with which client; read newest first in pages.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult};
use serde::Serialize;

use crate::db::db_time;
use crate::sql::{int, statement};
pub use agentvista_keys::{MAX_USER_AGENT_CHARS, Origin};

use crate::{AccountId, Store, StoreError};

/// The most entries one page holds.
pub const MAX_AUDIT_PAGE: u64 = 100;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// A key was created.
    KeyCreated,
    /// A key was rolled: a new key, the old one expiring after a grace.
    KeyRolled,
    /// A key was revoked.
    KeyRevoked,
    /// A key was reported as leaked, and revoked for it.
    KeyReportedLeaked,
    /// A dashboard login succeeded.
    LoginSucceeded,
    /// A dashboard login with a known e-mail address and a wrong password.
    LoginFailed,
    /// The first-run setup created the account and its first user.
    Setup,
    /// The account's spend cap was set or removed.
    SpendCapChanged,
    /// The account moved to another plan.
    PlanChanged,
    /// A person changed their own password (their other sessions ended).
    UserPasswordChanged,
    /// A person joined the account.
    MemberAdded,
    /// A member's role changed.
    MemberRoleChanged,
    /// A member was removed.
    MemberRemoved,
    /// A member left.
    MemberLeft,
    /// An invitation was made.
    InvitationCreated,
    /// A pending invitation was revoked.
    InvitationRevoked,
    /// An invitation was accepted: its person joined.
    InvitationAccepted,
    /// A person ended one of their sessions.
    SessionEnded,
    /// A person ended every session of theirs but the one asking.
    SessionsEndedOthers,
}

impl AuditAction {
    /// The action's name in the log and the API: `key.created`, `login.failed`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::KeyCreated => "key.created",
            AuditAction::KeyRolled => "key.rolled",
            AuditAction::KeyRevoked => "key.revoked",
            AuditAction::KeyReportedLeaked => "key.reported_leaked",
            AuditAction::LoginSucceeded => "login.succeeded",
            AuditAction::LoginFailed => "login.failed",
            AuditAction::Setup => "setup",
            AuditAction::SpendCapChanged => "billing.spend_cap_changed",
            AuditAction::PlanChanged => "billing.plan_changed",
            AuditAction::UserPasswordChanged => "user.password_changed",
            AuditAction::MemberAdded => "member.added",
            AuditAction::MemberRoleChanged => "member.role_changed",
            AuditAction::MemberRemoved => "member.removed",
            AuditAction::MemberLeft => "member.left",
            AuditAction::InvitationCreated => "invitation.created",
            AuditAction::InvitationRevoked => "invitation.revoked",
            AuditAction::InvitationAccepted => "invitation.accepted",
            AuditAction::SessionEnded => "session.ended",
            AuditAction::SessionsEndedOthers => "sessions.ended_others",
        }
    }
}

/// One entry to append.
#[derive(Clone, Debug)]
pub struct NewAuditEntry<'a> {
    /// Whose log.
    pub account: AccountId,
    /// What happened.
    pub action: AuditAction,
    /// Who did it: `user:<id>`, `key:<prefix>`, `cli`, or `anonymous` (a failed login).
    pub actor: String,
    /// What was acted on: a key's prefix, a user's e-mail address.
    pub target: Option<String>,
    /// From where, with what.
    pub origin: &'a Origin,
    /// The action's particulars.
    pub detail: Option<serde_json::Value>,
    /// When.
    pub at: DateTime<Utc>,
}

/// One entry as read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Increasing: a later entry has a larger id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// `key.created`, `key.rolled`, `key.revoked`, `login.succeeded`, `login.failed`, `setup`,
    /// `billing.spend_cap_changed`, `billing.plan_changed`, `user.password_changed`,
    /// `member.added`, `member.role_changed`, `member.removed`, `member.left`,
    /// `invitation.created`, `invitation.revoked`, `invitation.accepted`, `session.ended`,
    /// `sessions.ended_others`.
    pub action: String,
    /// Who did it.
    pub actor: String,
    /// What was acted on.
    pub target: Option<String>,
    /// The client's address.
    pub client_address: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The action's particulars.
    pub detail: Option<serde_json::Value>,
}

/// A page of the log, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Where the next page starts (entries older than this id), when there is one.
    pub next_cursor: Option<i64>,
}

/// The audit_log table.
#[derive(Clone, Copy, Debug)]
pub struct AuditLog<'a> {
    store: &'a Store,
}

impl Store {
    /// The audit log.
    #[must_use]
    pub fn audit(&self) -> AuditLog<'_> {
        AuditLog { store: self }
    }
}

impl AuditLog<'_> {
    /// Appends `entry`.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn append(&self, entry: NewAuditEntry<'_>) -> Result<(), StoreError> {
        append_in(&self.store.write, entry).await
    }

    /// Up to `limit` (at most [`MAX_AUDIT_PAGE`]) entries of `account` older than `before`
    /// (an id from a previous page's `next_cursor`), newest first.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn page(
        &self,
        account: AccountId,
        before: Option<i64>,
        limit: u64,
    ) -> Result<AuditPage, StoreError> {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let db = self.store.reader();
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(statement(
                backend,
                "SELECT id, at, action, actor, target, client_address, user_agent, detail \
                 FROM audit_log WHERE account_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3",
                [
                    account.0.into(),
                    before.unwrap_or(i64::MAX).into(),
                    i64::try_from(limit + 1).unwrap_or(i64::MAX).into(),
                ],
            ))
            .await?;
        let mut entries = rows.iter().map(entry).collect::<Result<Vec<_>, DbErr>>()?;
        let more = entries.len() as u64 > limit;
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = if more {
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_cursor,
        })
    }
}

/// Appends `entry` on `db`: the store's writer, or the transaction of the change the entry
/// records, so that the two commit together.
pub(crate) async fn append_in(
    db: &impl ConnectionTrait,
    entry: NewAuditEntry<'_>,
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    let detail = entry.detail.map(|d| d.to_string());
    db.execute_raw(statement(
        backend,
        "INSERT INTO audit_log \
         (account_id, at, action, actor, target, client_address, user_agent, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            entry.account.0.into(),
            db_time(entry.at).into(),
            entry.action.as_str().into(),
            entry.actor.into(),
            entry.target.into(),
            entry.origin.client_address.map(|a| a.to_string()).into(),
            entry.origin.user_agent.clone().into(),
            detail.into(),
        ],
    ))
    .await?;
    Ok(())
}

fn entry(row: &QueryResult) -> Result<AuditEntry, DbErr> {
    let detail: Option<String> = row.try_get("", "detail")?;
    Ok(AuditEntry {
        id: int(row, "id")?,
        at: row.try_get("", "at")?,
        action: row.try_get("", "action")?,
        actor: row.try_get("", "actor")?,
        target: row.try_get("", "target")?,
        client_address: row.try_get("", "client_address")?,
        user_agent: row.try_get("", "user_agent")?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
    })
}
