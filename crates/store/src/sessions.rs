//! Dashboard sessions, stored by the SHA-256 of their cookie value. A session acts in one
//! account at a time; the person's role there is read from their membership every time the
//! session is found, never kept in the session.

use agentvista_keys::session::{CsrfToken, SessionTokenHash};
use agentvista_keys::{Origin, Role};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};

use crate::audit::{NewAuditEntry, append_in};
use crate::db::begin_immediate;
use crate::entities::{sessions, users};
use crate::memberships::role_in;
use crate::sql::statement;
use crate::users::user;
use crate::{AccountId, Store, StoreError, User, UserId, db::db_time};

/// How stale a session's `last_seen_at` may be before a request writes it again: one write a
/// minute per session at most.
pub const LAST_SEEN_GRANULARITY: TimeDelta = TimeDelta::minutes(1);

/// The account a session acts in, and the person's role there as of this request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentAccount {
    /// The account.
    pub id: AccountId,
    /// Its name.
    pub name: String,
    /// The person's role in it.
    pub role: Role,
}

/// A live session, found by its token. Its `Debug` shows no secret (the CSRF token's own
/// `Debug` is redacted).
#[derive(Clone, Debug)]
pub struct Session {
    /// The session's row id (what the sessions list shows, and ends by).
    pub id: i64,
    /// The person.
    pub user: User,
    /// The account it acts in: `None` for a person who belongs to no account any more.
    pub account: Option<CurrentAccount>,
    /// The token a cookie-authenticated unsafe request must echo in `X-CSRF-Token`.
    pub csrf_token: CsrfToken,
    /// When the session stops working.
    pub expires_at: DateTime<Utc>,
}

/// One of a person's sessions, as their sessions list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Row id.
    pub id: i64,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last made a request (up to [`LAST_SEEN_GRANULARITY`] behind).
    pub last_seen_at: DateTime<Utc>,
    /// The address it started from.
    pub client_address: Option<String>,
    /// The browser it started in.
    pub user_agent: Option<String>,
    /// Whether it is the session asking.
    pub current: bool,
}

/// A new session, for [`Sessions::create`].
#[derive(Clone, Copy, Debug)]
pub struct NewSession<'a> {
    /// SHA-256 of the cookie value.
    pub token_hash: &'a SessionTokenHash,
    /// The CSRF token.
    pub csrf_token: &'a CsrfToken,
    /// The account it starts in.
    pub account: Option<AccountId>,
    /// Where it starts from.
    pub origin: &'a Origin,
    /// Now.
    pub now: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// The sessions table.
#[derive(Clone, Copy, Debug)]
pub struct Sessions<'a> {
    store: &'a Store,
}

impl Store {
    /// The sessions repository.
    #[must_use]
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { store: self }
    }
}

impl Sessions<'_> {
    /// Stores a session of `user`.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn create(&self, user: &User, new: NewSession<'_>) -> Result<Session, StoreError> {
        let row = sessions::ActiveModel {
            token_hash: Set(hex::encode(new.token_hash.as_bytes())),
            user_id: Set(user.id.0),
            csrf_token: Set(new.csrf_token.expose_secret().to_owned()),
            created_at: Set(db_time(new.now)),
            expires_at: Set(db_time(new.expires_at)),
            account_id: Set(new.account.map(|a| a.0)),
            last_seen_at: Set(Some(db_time(new.now))),
            client_address: Set(new.origin.client_address.map(|a| a.to_string())),
            user_agent: Set(new.origin.user_agent.clone()),
            ..Default::default()
        }
        .insert(&self.store.write)
        .await?;
        let account = match new.account {
            Some(account) => current_account(self.store.reader(), account, user.id).await?,
            None => None,
        };
        Ok(Session {
            id: row.id,
            user: user.clone(),
            account,
            csrf_token: new.csrf_token.clone(),
            expires_at: row.expires_at,
        })
    }

    /// The session for `token_hash`, if it exists and has not expired at `now`, with the
    /// person's role in its account read afresh. Writes `last_seen_at` when it is older than
    /// [`LAST_SEEN_GRANULARITY`].
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn find(
        &self,
        token_hash: &SessionTokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let found = sessions::Entity::find()
            .filter(sessions::Column::TokenHash.eq(hex::encode(token_hash.as_bytes())))
            .filter(sessions::Column::ExpiresAt.gt(db_time(now)))
            .find_also_related(users::Entity)
            .one(self.store.reader())
            .await?;
        let Some((session, Some(owner))) = found else {
            return Ok(None);
        };
        let account = match session.account_id {
            Some(account) => {
                current_account(self.store.reader(), AccountId(account), UserId(owner.id)).await?
            }
            None => None,
        };
        if session
            .last_seen_at
            .is_none_or(|seen| now - seen >= LAST_SEEN_GRANULARITY)
        {
            sessions::Entity::update_many()
                .col_expr(sessions::Column::LastSeenAt, Expr::value(db_time(now)))
                .filter(sessions::Column::Id.eq(session.id))
                .exec(&self.store.write)
                .await?;
        }
        Ok(Some(Session {
            id: session.id,
            user: user(owner),
            account,
            csrf_token: CsrfToken::from_stored(session.csrf_token),
            expires_at: session.expires_at,
        }))
    }

    /// Moves the session to `account`, which `user` must belong to, with a new CSRF token; the
    /// account becomes where `user`'s next login starts. Returns the session as it now is.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `user` is not a member of `account` or the session is
    /// gone, or the database's.
    pub async fn switch(
        &self,
        token_hash: &SessionTokenHash,
        user: &User,
        account: AccountId,
        csrf_token: &CsrfToken,
    ) -> Result<CurrentAccount, StoreError> {
        let txn = begin_immediate(&self.store.write).await?;
        let current = current_account(&txn, account, user.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let moved = sessions::Entity::update_many()
            .col_expr(sessions::Column::AccountId, Expr::value(account.0))
            .col_expr(
                sessions::Column::CsrfToken,
                Expr::value(csrf_token.expose_secret().to_owned()),
            )
            .filter(sessions::Column::TokenHash.eq(hex::encode(token_hash.as_bytes())))
            .filter(sessions::Column::UserId.eq(user.id.0))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(StoreError::NotFound);
        }
        users::Entity::update_many()
            .col_expr(users::Column::AccountId, Expr::value(account.0))
            .filter(users::Column::Id.eq(user.id.0))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(current)
    }

    /// `user`'s live sessions at `now`, the most recently seen first; `asking` is marked
    /// current.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn of_user(
        &self,
        user: UserId,
        asking: &SessionTokenHash,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let asking = hex::encode(asking.as_bytes());
        let rows = sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user.0))
            .filter(sessions::Column::ExpiresAt.gt(db_time(now)))
            .order_by_desc(sessions::Column::LastSeenAt)
            .order_by_desc(sessions::Column::Id)
            .all(self.store.reader())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| SessionInfo {
                id: row.id,
                last_seen_at: row.last_seen_at.unwrap_or(row.created_at),
                created_at: row.created_at,
                client_address: row.client_address,
                user_agent: row.user_agent,
                current: row.token_hash == asking,
            })
            .collect())
    }

    /// Ends session `id` of `user`, with `audit` in the same transaction (when the session
    /// existed). Returns whether it existed.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn end(
        &self,
        user: UserId,
        id: i64,
        audit: Option<NewAuditEntry<'_>>,
    ) -> Result<bool, StoreError> {
        let txn = begin_immediate(&self.store.write).await?;
        let ended = sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user.0))
            .filter(sessions::Column::Id.eq(id))
            .exec(&txn)
            .await?
            .rows_affected;
        if ended == 1
            && let Some(audit) = audit
        {
            append_in(&txn, audit).await?;
        }
        txn.commit().await?;
        Ok(ended == 1)
    }

    /// Ends every session of `user` but `keep`, with `audit` in the same transaction. Returns
    /// how many ended.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn end_others(
        &self,
        user: UserId,
        keep: &SessionTokenHash,
        audit: Option<NewAuditEntry<'_>>,
    ) -> Result<u64, StoreError> {
        let txn = begin_immediate(&self.store.write).await?;
        let ended = sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user.0))
            .filter(sessions::Column::TokenHash.ne(hex::encode(keep.as_bytes())))
            .exec(&txn)
            .await?
            .rows_affected;
        if let Some(audit) = audit {
            append_in(&txn, audit).await?;
        }
        txn.commit().await?;
        Ok(ended)
    }

    /// Deletes the session (logout). Deleting a session that does not exist is not an error.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn delete(&self, token_hash: &SessionTokenHash) -> Result<(), StoreError> {
        sessions::Entity::delete_many()
            .filter(sessions::Column::TokenHash.eq(hex::encode(token_hash.as_bytes())))
            .exec(&self.store.write)
            .await?;
        Ok(())
    }

    /// Deletes every session expired at `now`; returns how many.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn delete_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sessions::Entity::delete_many()
            .filter(sessions::Column::ExpiresAt.lte(db_time(now)))
            .exec(&self.store.write)
            .await?;
        Ok(done.rows_affected)
    }
}

/// `user`'s role in `account` with the account's name, if they belong to it.
async fn current_account(
    db: &impl ConnectionTrait,
    account: AccountId,
    user: UserId,
) -> Result<Option<CurrentAccount>, StoreError> {
    let row = db
        .query_one_raw(statement(
            db.get_database_backend(),
            "SELECT a.name, m.role FROM memberships m JOIN accounts a ON a.id = m.account_id \
             WHERE m.account_id = $1 AND m.user_id = $2",
            [account.0.into(), user.0.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(CurrentAccount {
        id: account,
        name: row.try_get("", "name")?,
        role: role_in(&row, "memberships.role")?,
    }))
}
