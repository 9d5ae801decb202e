//! Memberships: who belongs to which account, with which [`Role`], and the rule that an
//! account always keeps an owner.

use agentvista_keys::{Origin, Role};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, QueryResult};

use crate::audit::{AuditAction, NewAuditEntry, append_in};
use crate::db::{begin_immediate, db_time, is_unique_violation};
use crate::locks::lock_open_account;
use crate::sql::statement;
use crate::{AccountId, Store, StoreError, UserId};

/// A person in an account, as the members list shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The person.
    pub user_id: UserId,
    /// Their e-mail address.
    pub email: String,
    /// Their role in the account.
    pub role: Role,
    /// When they joined it.
    pub joined_at: DateTime<Utc>,
}

/// An account a person belongs to, as their accounts list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The account.
    pub account_id: AccountId,
    /// Its name.
    pub account_name: String,
    /// The person's role in it.
    pub role: Role,
    /// When they joined it.
    pub joined_at: DateTime<Utc>,
}

/// Who asks for a [`MemberChange`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangedBy {
    /// A member of the account, whose role there is read in the change's transaction.
    Member(UserId),
    /// The operator on the command line, who may do what an owner may.
    Operator,
}

/// A change of one membership, for [`Memberships::change`].
#[derive(Clone, Copy, Debug)]
pub struct MemberChange<'a> {
    /// The account.
    pub account: AccountId,
    /// The member changed.
    pub target: UserId,
    /// Their new role, or `None` to remove them (or, when they are the one asking, to leave).
    pub next: Option<Role>,
    /// Who asks.
    pub by: ChangedBy,
    /// How the audit log names who asks: `user:<id>` or `cli`.
    pub actor: &'a str,
    /// From where.
    pub origin: &'a Origin,
    /// When.
    pub at: DateTime<Utc>,
}

/// The memberships table.
#[derive(Clone, Copy, Debug)]
pub struct Memberships<'a> {
    store: &'a Store,
}

impl Store {
    /// The memberships repository.
    #[must_use]
    pub fn memberships(&self) -> Memberships<'_> {
        Memberships { store: self }
    }
}

impl Memberships<'_> {
    /// Adds `user` to `account` with `role`.
    ///
    /// # Errors
    /// [`StoreError::AlreadyMember`], or the database's.
    pub async fn add(
        &self,
        account: AccountId,
        user: UserId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        add_in(&self.store.write, account, user, role, now).await
    }

    /// `user`'s role in `account`, if they belong to it.
    ///
    /// # Errors
    /// The database's.
    pub async fn role(&self, account: AccountId, user: UserId) -> Result<Option<Role>, StoreError> {
        let db = self.store.reader();
        let row = db
            .query_one_raw(statement(
                db.get_database_backend(),
                "SELECT role FROM memberships WHERE account_id = $1 AND user_id = $2",
                [account.0.into(), user.0.into()],
            ))
            .await?;
        row.map(|row| role_of(&row)).transpose()
    }

    /// The members of `account`, in the order they joined.
    ///
    /// # Errors
    /// The database's.
    pub async fn of_account(&self, account: AccountId) -> Result<Vec<Member>, StoreError> {
        let db = self.store.reader();
        let rows = db
            .query_all_raw(statement(
                db.get_database_backend(),
                "SELECT m.user_id, u.email, m.role, m.created_at FROM memberships m \
                 JOIN users u ON u.id = m.user_id WHERE m.account_id = $1 \
                 ORDER BY m.created_at, m.user_id",
                [account.0.into()],
            ))
            .await?;
        rows.iter().map(member).collect()
    }

    /// The accounts `user` belongs to, the oldest membership first.
    ///
    /// # Errors
    /// The database's.
    pub async fn of_user(&self, user: UserId) -> Result<Vec<Membership>, StoreError> {
        of_user_in(self.store.reader(), user).await
    }

    /// The account a new session of `user` acts in: the one they last switched to (or were
    /// created in) while they still belong to it, else their oldest membership, else none.
    ///
    /// # Errors
    /// The database's.
    pub async fn starting_account(&self, user: UserId) -> Result<Option<Membership>, StoreError> {
        let db = self.store.reader();
        let last = db
            .query_one_raw(statement(
                db.get_database_backend(),
                "SELECT account_id FROM users WHERE id = $1",
                [user.0.into()],
            ))
            .await?
            .map(|row| row.try_get::<i64>("", "account_id"))
            .transpose()?;
        let mut memberships = of_user_in(db, user).await?;
        let last = memberships
            .iter()
            .position(|m| Some(m.account_id.0) == last)
            .unwrap_or(0);
        Ok((!memberships.is_empty()).then(|| memberships.swap_remove(last)))
    }

    /// Changes one member's role, or removes them, in one transaction that first locks the
    /// account's owner memberships in user order (on SQLite the write transaction is
    /// exclusive already): of two owners demoting each other at once, the second finds
    /// itself the last owner. Removing a member ends their sessions in the account, and their
    /// pending invitations when they are removed or fall below admin. The audit
    /// entry (`member.role_changed`, `member.removed`, or `member.left` when the member asks to
    /// be removed) commits with the change. Returns the member as they now are (`None` once
    /// removed).
    ///
    /// # Errors
    /// - [`StoreError::NotFound`]: the target is not a member (or the one asking is not);
    /// - [`StoreError::InsufficientRole`]: the one asking may not make this change (see
    ///   [`Role::may_change`]); leaving needs no role;
    /// - [`StoreError::LastOwner`]: the change would leave the account without an owner;
    /// - the database's.
    pub async fn change(&self, change: MemberChange<'_>) -> Result<Option<Member>, StoreError> {
        let txn = begin_immediate(&self.store.write).await?;
        let done = change_in(&txn, &change).await?;
        txn.commit().await?;
        Ok(done)
    }
}

/// Inserts a membership on `db` (the writer or a transaction).
pub(crate) async fn add_in(
    db: &impl ConnectionTrait,
    account: AccountId,
    user: UserId,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    db.execute_raw(statement(
        db.get_database_backend(),
        "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        [
            account.0.into(),
            user.0.into(),
            role.as_str().into(),
            db_time(now).into(),
        ],
    ))
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            StoreError::AlreadyMember
        } else {
            err.into()
        }
    })?;
    Ok(())
}

async fn of_user_in(
    db: &impl ConnectionTrait,
    user: UserId,
) -> Result<Vec<Membership>, StoreError> {
    let rows = db
        .query_all_raw(statement(
            db.get_database_backend(),
            "SELECT m.account_id, a.name, m.role, m.created_at FROM memberships m \
             JOIN accounts a ON a.id = m.account_id WHERE m.user_id = $1 \
             ORDER BY m.created_at, m.account_id",
            [user.0.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Membership {
                account_id: AccountId(row.try_get("", "account_id")?),
                account_name: row.try_get("", "name")?,
                role: role_of(row)?,
                joined_at: row.try_get("", "created_at")?,
            })
        })
        .collect()
}

async fn change_in(
    txn: &DatabaseTransaction,
    change: &MemberChange<'_>,
) -> Result<Option<Member>, StoreError> {
    let backend = txn.get_database_backend();
    let account = change.account.0;
    // The account row before any membership, as the account's deletion takes them: the other
    // way round, this change's audit entry (whose foreign key needs the account row) and the
    // deletion (which needs the membership rows) would wait for each other.
    lock_open_account(txn, change.account).await?;
    // Every change that could take an owner away waits here for any other such change, in
    // one order, so two of them cannot each count the other owner as staying.
    let owners = txn
        .query_all_raw(statement(
            backend,
            &locked(
                backend,
                "SELECT user_id FROM memberships WHERE account_id = $1 AND role = 'owner' \
                 ORDER BY user_id",
            ),
            [account.into()],
        ))
        .await?
        .len();
    let target = member_in(txn, change.account, change.target)
        .await?
        .ok_or(StoreError::NotFound)?;
    let leaving = change.next.is_none() && change.by == ChangedBy::Member(change.target);
    if !leaving {
        let acting = match change.by {
            ChangedBy::Operator => Role::Owner,
            ChangedBy::Member(user) => {
                member_in(txn, change.account, user)
                    .await?
                    .ok_or(StoreError::NotFound)?
                    .role
            }
        };
        acting
            .may_change(target.role, change.next)
            .map_err(StoreError::InsufficientRole)?;
    }
    if target.role == Role::Owner && change.next != Some(Role::Owner) && owners <= 1 {
        return Err(StoreError::LastOwner);
    }
    let action = match change.next {
        Some(role) => {
            txn.execute_raw(statement(
                backend,
                "UPDATE memberships SET role = $1 WHERE account_id = $2 AND user_id = $3",
                [role.as_str().into(), account.into(), change.target.0.into()],
            ))
            .await?;
            AuditAction::MemberRoleChanged
        }
        None => {
            txn.execute_raw(statement(
                backend,
                "DELETE FROM memberships WHERE account_id = $1 AND user_id = $2",
                [account.into(), change.target.0.into()],
            ))
            .await?;
            txn.execute_raw(statement(
                backend,
                "DELETE FROM sessions WHERE account_id = $1 AND user_id = $2",
                [account.into(), change.target.0.into()],
            ))
            .await?;
            if leaving {
                AuditAction::MemberLeft
            } else {
                AuditAction::MemberRemoved
            }
        }
    };
    // Invitations stand for whoever made them: one who may no longer invite takes theirs back,
    // or a removed admin could come back through an address of their own.
    let mut withdrawn = 0;
    if change.next.is_none_or(|role| role < Role::Admin) {
        withdrawn = txn
            .execute_raw(statement(
                backend,
                "UPDATE invitations SET revoked_at = $1 WHERE account_id = $2 AND invited_by = $3 \
             AND accepted_at IS NULL AND revoked_at IS NULL",
                [
                    crate::db::db_time(change.at).into(),
                    account.into(),
                    change.target.0.into(),
                ],
            ))
            .await?
            .rows_affected();
    }
    append_in(
        txn,
        NewAuditEntry {
            account: change.account,
            action,
            actor: change.actor.to_owned(),
            target: Some(target.email.clone()),
            origin: change.origin,
            detail: Some(serde_json::json!({
                "from": target.role,
                "to": change.next,
                "invitations_withdrawn": withdrawn,
            })),
            at: change.at,
        },
    )
    .await?;
    Ok(change.next.map(|role| Member { role, ..target }))
}

/// One member of `account`, locked on PostgreSQL until the transaction ends.
async fn member_in(
    txn: &DatabaseTransaction,
    account: AccountId,
    user: UserId,
) -> Result<Option<Member>, StoreError> {
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(statement(
            backend,
            &locked(
                backend,
                "SELECT m.user_id, u.email, m.role, m.created_at FROM memberships m \
                 JOIN users u ON u.id = m.user_id WHERE m.account_id = $1 AND m.user_id = $2",
            ),
            [account.0.into(), user.0.into()],
        ))
        .await?;
    row.as_ref().map(member).transpose()
}

/// `select` with PostgreSQL's row lock (`FOR UPDATE OF m` when it joins, so the users row is
/// not locked too); SQLite's write transaction excludes every other writer already.
fn locked(backend: DbBackend, select: &str) -> String {
    match backend {
        DbBackend::Postgres if select.contains(" m ") => format!("{select} FOR UPDATE OF m"),
        DbBackend::Postgres => format!("{select} FOR UPDATE"),
        _ => select.to_owned(),
    }
}

/// The `role` column of `row` (of the table `what` names, for the error of a value that is
/// no role).
pub(crate) fn role_in(row: &QueryResult, what: &'static str) -> Result<Role, StoreError> {
    let name: String = row.try_get("", "role")?;
    name.parse().map_err(|_| StoreError::Corrupt { what })
}

fn role_of(row: &QueryResult) -> Result<Role, StoreError> {
    role_in(row, "memberships.role")
}

/// A member from a row of `user_id`, `email`, `role` and `created_at`.
fn member(row: &QueryResult) -> Result<Member, StoreError> {
    Ok(Member {
        user_id: UserId(row.try_get("", "user_id")?),
        email: row.try_get("", "email")?,
        role: role_of(row)?,
        joined_at: row.try_get("", "created_at")?,
    })
}
