//! Invitations to join an account with a role, found by the SHA-256 of their token. A token
//! works once: acceptance is one conditional update, so of any number of concurrent accepts
//! exactly one joins.

use agentvista_keys::password::PasswordHash;
use agentvista_keys::{Email, InvitationHash, Origin, Role};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};

use crate::audit::{AuditAction, NewAuditEntry, append_in};
use crate::db::{begin_immediate, db_time};
use crate::locks::lock_open_account;
use crate::memberships::{add_in, role_in};
use crate::sql::statement;
use crate::users::create_in;
use crate::{AccountId, Store, StoreError, User, UserId};

/// An invitation as its account's admins see it (never its token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// Row id.
    pub id: i64,
    /// The account it invites to.
    pub account_id: AccountId,
    /// The e-mail invited (normalised).
    pub email: String,
    /// The role it grants.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A pending invitation found by its token: what the accept page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingInvitation {
    /// The invitation.
    pub invitation: Invitation,
    /// The name of the account it invites to.
    pub account_name: String,
}

/// A new invitation, for [`Invitations::create`].
#[derive(Clone, Copy, Debug)]
pub struct NewInvitation<'a> {
    /// The account.
    pub account: AccountId,
    /// Who is invited.
    pub email: &'a Email,
    /// With which role.
    pub role: Role,
    /// SHA-256 of the token.
    pub token_hash: &'a InvitationHash,
    /// The member who invites (`None`: the operator).
    pub invited_by: Option<UserId>,
    /// Their role (the operator's: owner): a pending invitation this one replaces must be one
    /// they could have made.
    pub acting: Role,
    /// How the audit log names them.
    pub actor: &'a str,
    /// From where.
    pub origin: &'a Origin,
    /// Now.
    pub now: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Who accepts an invitation, for [`Invitations::accept`].
#[derive(Clone, Copy, Debug)]
pub enum Acceptance<'a> {
    /// A person with no user yet, who sets this password.
    NewPerson(&'a PasswordHash),
    /// The person with the invited e-mail, signed in.
    Existing(&'a User),
}

/// The invitations table.
#[derive(Clone, Copy, Debug)]
pub struct Invitations<'a> {
    store: &'a Store,
}

impl Store {
    /// The invitations repository.
    #[must_use]
    pub fn invitations(&self) -> Invitations<'_> {
        Invitations { store: self }
    }
}

const COLUMNS: &str = "i.id, i.account_id, i.email, i.role, i.created_at, i.expires_at";

impl Invitations<'_> {
    /// Stores an invitation, replacing (deleting) any pending one for the same e-mail and
    /// account, and writes `invitation.created`, in one transaction. The account may have
    /// at most [`StoreOptions::max_pending_invitations`](crate::StoreOptions) pending, counted
    /// under its row's lock, so that concurrent invitations cannot pass the limit together.
    ///
    /// # Errors
    /// [`StoreError::AlreadyMember`] when the e-mail's person belongs to the account already;
    /// [`StoreError::TooManyInvitations`] at the limit; [`StoreError::NotFound`] for a deleted
    /// account; or the database's.
    pub async fn create(&self, new: NewInvitation<'_>) -> Result<Invitation, StoreError> {
        let txn = begin_immediate(&self.store.write).await?;
        let backend = txn.get_database_backend();
        lock_open_account(&txn, new.account).await?;
        let member = txn
            .query_one_raw(statement(
                backend,
                "SELECT 1 AS one FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.account_id = $1 AND u.email = $2",
                [new.account.0.into(), new.email.as_str().into()],
            ))
            .await?;
        if member.is_some() {
            return Err(StoreError::AlreadyMember);
        }
        let pending = txn
            .query_all_raw(statement(
                backend,
                "SELECT role FROM invitations WHERE account_id = $1 AND email = $2 \
                 AND accepted_at IS NULL AND revoked_at IS NULL",
                [new.account.0.into(), new.email.as_str().into()],
            ))
            .await?;
        for row in &pending {
            may_withdraw(new.acting, row)?;
        }
        // Deleted, not marked: re-inviting in a loop must not pile up rows. The audit log
        // says which invitation replaced it.
        let replaced = txn
            .query_all_raw(statement(
                backend,
                "DELETE FROM invitations WHERE account_id = $1 AND email = $2 \
                 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id",
                [new.account.0.into(), new.email.as_str().into()],
            ))
            .await?
            .iter()
            .map(|row| row.try_get::<i64>("", "id"))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = self.store.options.max_pending_invitations;
        let row = txn
            .query_one_raw(statement(
                backend,
                "SELECT COUNT(*) AS n FROM invitations WHERE account_id = $1 \
                 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
                [new.account.0.into(), db_time(new.now).into()],
            ))
            .await?
            .ok_or(StoreError::Corrupt {
                what: "COUNT(*) of invitations",
            })?;
        let pending: i64 = row.try_get("", "n")?;
        if pending >= i64::from(limit) {
            return Err(StoreError::TooManyInvitations { limit });
        }
        let row = txn
            .query_one_raw(statement(
                backend,
                "INSERT INTO invitations \
                 (account_id, email, role, token_hash, invited_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                [
                    new.account.0.into(),
                    new.email.as_str().into(),
                    new.role.as_str().into(),
                    hex::encode(new.token_hash.as_bytes()).into(),
                    new.invited_by.map(|u| u.0).into(),
                    db_time(new.now).into(),
                    db_time(new.expires_at).into(),
                ],
            ))
            .await?
            .ok_or(StoreError::Corrupt {
                what: "invitations.id",
            })?;
        let id: i64 = row.try_get("", "id")?;
        for old in replaced {
            append_in(
                &txn,
                NewAuditEntry {
                    account: new.account,
                    action: AuditAction::InvitationRevoked,
                    actor: new.actor.to_owned(),
                    target: Some(new.email.as_str().to_owned()),
                    origin: new.origin,
                    detail: Some(serde_json::json!({"invitation_id": old, "replaced_by": id})),
                    at: new.now,
                },
            )
            .await?;
        }
        append_in(
            &txn,
            NewAuditEntry {
                account: new.account,
                action: AuditAction::InvitationCreated,
                actor: new.actor.to_owned(),
                target: Some(new.email.as_str().to_owned()),
                origin: new.origin,
                detail: Some(serde_json::json!({"role": new.role, "invitation_id": id})),
                at: new.now,
            },
        )
        .await?;
        txn.commit().await?;
        Ok(Invitation {
            id,
            account_id: new.account,
            email: new.email.as_str().to_owned(),
            role: new.role,
            created_at: db_time(new.now),
            expires_at: db_time(new.expires_at),
        })
    }

    /// `account`'s pending invitations at `now`, newest first.
    ///
    /// # Errors
    /// The database's.
    pub async fn pending(
        &self,
        account: AccountId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Invitation>, StoreError> {
        let db = self.store.reader();
        let rows = db
            .query_all_raw(statement(
                db.get_database_backend(),
                &format!(
                    "SELECT {COLUMNS} FROM invitations i WHERE i.account_id = $1 \
                     AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2 \
                     ORDER BY i.id DESC"
                ),
                [account.0.into(), db_time(now).into()],
            ))
            .await?;
        rows.iter().map(invitation).collect()
    }

    /// Revokes `account`'s pending invitation `id` on behalf of someone of role `acting`,
    /// writing `invitation.revoked` with it. The row is deleted (its token then finds nothing,
    /// as a revoked one would); the audit log keeps the invitation's story.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no such invitation is pending;
    /// [`StoreError::InsufficientRole`] for an owner's invitation withdrawn by an admin; or
    /// the database's.
    pub async fn revoke(
        &self,
        account: AccountId,
        id: i64,
        acting: Role,
        actor: &str,
        origin: &Origin,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let txn = begin_immediate(&self.store.write).await?;
        let backend = txn.get_database_backend();
        let pending = txn
            .query_one_raw(statement(
                backend,
                "SELECT role FROM invitations WHERE id = $1 AND account_id = $2 \
                 AND accepted_at IS NULL AND revoked_at IS NULL",
                [id.into(), account.0.into()],
            ))
            .await?
            .ok_or(StoreError::NotFound)?;
        may_withdraw(acting, &pending)?;
        let row = txn
            .query_one_raw(statement(
                backend,
                "DELETE FROM invitations WHERE id = $2 AND account_id = $3 \
                 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
                 RETURNING email",
                [db_time(now).into(), id.into(), account.0.into()],
            ))
            .await?
            .ok_or(StoreError::NotFound)?;
        let email: String = row.try_get("", "email")?;
        append_in(
            &txn,
            NewAuditEntry {
                account,
                action: AuditAction::InvitationRevoked,
                actor: actor.to_owned(),
                target: Some(email),
                origin,
                detail: Some(serde_json::json!({"invitation_id": id})),
                at: now,
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The pending invitation whose token hashes to `token_hash`, with its account's name.
    ///
    /// # Errors
    /// The database's.
    pub async fn find_pending(
        &self,
        token_hash: &InvitationHash,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingInvitation>, StoreError> {
        let db = self.store.reader();
        let row = db
            .query_one_raw(statement(
                db.get_database_backend(),
                &format!(
                    "SELECT {COLUMNS}, a.name FROM invitations i \
                     JOIN accounts a ON a.id = i.account_id WHERE i.token_hash = $1 \
                     AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2"
                ),
                [
                    hex::encode(token_hash.as_bytes()).into(),
                    db_time(now).into(),
                ],
            ))
            .await?;
        row.map(|row| {
            Ok(PendingInvitation {
                invitation: invitation(&row)?,
                account_name: row.try_get("", "name")?,
            })
        })
        .transpose()
    }

    /// Accepts the invitation whose token hashes to `token_hash`: marks it used (only if it
    /// is still pending: a token works once), makes its person — `who` — a member with its
    /// role, starts their next login there, and writes `invitation.accepted`, in one
    /// transaction. Returns the person and the account.
    ///
    /// # Errors
    /// - [`StoreError::NotFound`]: no such pending invitation (unknown, used, expired or
    ///   revoked — one answer);
    /// - [`StoreError::EmailTaken`]: a new person's e-mail has a user now (they must sign in);
    /// - [`StoreError::InvitedSomeoneElse`]: the person signed in is not the one invited;
    /// - [`StoreError::AlreadyMember`], or the database's.
    pub async fn accept(
        &self,
        token_hash: &InvitationHash,
        who: Acceptance<'_>,
        origin: &Origin,
        now: DateTime<Utc>,
    ) -> Result<(User, AccountId), StoreError> {
        let txn = begin_immediate(&self.store.write).await?;
        let accepted = accept_in(&txn, token_hash, who, origin, now).await?;
        txn.commit().await?;
        Ok(accepted)
    }
}

async fn accept_in(
    txn: &DatabaseTransaction,
    token_hash: &InvitationHash,
    who: Acceptance<'_>,
    origin: &Origin,
    now: DateTime<Utc>,
) -> Result<(User, AccountId), StoreError> {
    let backend = txn.get_database_backend();
    let token_hash_hex = hex::encode(token_hash.as_bytes());
    // The account row before the invitation's, as the account's deletion takes them (and
    // a deleted account's invitation finds nothing): the other way round, the membership
    // this inserts (whose foreign key needs the account row) and the deletion (which needs
    // the invitation row) would wait for each other.
    let invited_to = txn
        .query_one_raw(statement(
            backend,
            "SELECT account_id FROM invitations WHERE token_hash = $1",
            [token_hash_hex.clone().into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    lock_open_account(txn, AccountId(invited_to.try_get("", "account_id")?)).await?;
    let row = txn
        .query_one_raw(statement(
            backend,
            "UPDATE invitations SET accepted_at = $1 WHERE token_hash = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
             RETURNING id, account_id, email, role, created_at, expires_at",
            [db_time(now).into(), token_hash_hex.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    let invited = invitation(&row)?;
    let account = invited.account_id;
    let user = match who {
        Acceptance::NewPerson(password_hash) => {
            let email = Email::parse(&invited.email).map_err(|_| StoreError::Corrupt {
                what: "invitations.email",
            })?;
            create_in(txn, account, invited.role, &email, password_hash, now).await?
        }
        Acceptance::Existing(user) => {
            if user.email != invited.email {
                return Err(StoreError::InvitedSomeoneElse(invited.email));
            }
            add_in(txn, account, user.id, invited.role, now).await?;
            txn.execute_raw(statement(
                backend,
                "UPDATE users SET account_id = $1 WHERE id = $2",
                [account.0.into(), user.id.0.into()],
            ))
            .await?;
            user.clone()
        }
    };
    append_in(
        txn,
        NewAuditEntry {
            account,
            action: AuditAction::InvitationAccepted,
            actor: agentvista_keys::Actor::User(user.id).to_string(),
            target: Some(user.email.clone()),
            origin,
            detail: Some(serde_json::json!({"role": invited.role, "invitation_id": invited.id})),
            at: now,
        },
    )
    .await?;
    Ok((user, account))
}

/// Whether someone of role `acting` may withdraw the invitation `row` (its `role`): only
/// what they could have granted.
fn may_withdraw(acting: Role, row: &QueryResult) -> Result<(), StoreError> {
    acting
        .may_change(Role::Viewer, Some(role_in(row, "invitations.role")?))
        .map_err(StoreError::InsufficientRole)
}

fn invitation(row: &QueryResult) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: row.try_get("", "id")?,
        account_id: AccountId(row.try_get("", "account_id")?),
        email: row.try_get("", "email")?,
        role: role_in(row, "invitations.role")?,
        created_at: row.try_get("", "created_at")?,
        expires_at: row.try_get("", "expires_at")?,
    })
}
