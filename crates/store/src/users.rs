//! Users: people who log in to the dashboard. Which accounts a person belongs to, and with
//! which role, is in their memberships.

use agentvista_keys::password::PasswordHash;
use agentvista_keys::session::SessionTokenHash;
use agentvista_keys::{Email, KeyRecord, Role};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use crate::audit::{NewAuditEntry, append_in};
use crate::db::is_unique_violation;
use crate::entities::{sessions, users};
use crate::memberships::add_in;
use crate::{AccountId, Store, StoreError, UserId, db::db_time};

/// A dashboard user (never with the password hash; see [`UserCredentials`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// E-mail address as stored: normalised by [`Email`] (trimmed and lower-cased).
    pub email: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A user with the stored password hash, for checking a login. Its `Debug` shows no hash
/// ([`PasswordHash`]'s own `Debug` is redacted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// The PHC-format password hash (argon2id).
    pub password_hash: PasswordHash,
}

/// The users table.
#[derive(Clone, Copy, Debug)]
pub struct Users<'a> {
    store: &'a Store,
}

impl Store {
    /// The users repository.
    #[must_use]
    pub fn users(&self) -> Users<'_> {
        Users { store: self }
    }
}

impl Users<'_> {
    /// Creates a user with an already-hashed password, a member of `account` with `role`,
    /// in one transaction.
    ///
    /// # Errors
    /// [`StoreError::EmailTaken`], or a database error.
    pub async fn create(
        &self,
        account: AccountId,
        role: Role,
        email: &Email,
        password_hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let txn = self.store.write.begin().await?;
        let user = create_in(&txn, account, role, email, password_hash, now).await?;
        txn.commit().await?;
        Ok(user)
    }

    /// The user with this e-mail address (any case: [`Email`] is normalised), with the
    /// password hash.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn find_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let row = users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(self.store.reader())
            .await?;
        Ok(row.map(|row| UserCredentials {
            password_hash: PasswordHash::from_phc(row.password_hash.clone()),
            user: user(row),
        }))
    }

    /// The user `id`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    pub async fn get(&self, id: UserId) -> Result<User, StoreError> {
        users::Entity::find_by_id(id.0)
            .one(self.store.reader())
            .await?
            .map(user)
            .ok_or(StoreError::NotFound)
    }

    /// The members of `account` among `ids` (the people an audit page names), oldest first;
    /// ids of others or of no one are left out.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn of_account(
        &self,
        account: AccountId,
        ids: &[UserId],
    ) -> Result<Vec<User>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(users::Entity::find()
            .filter(users::Column::Id.is_in(ids.iter().map(|id| id.0)))
            .filter(
                users::Column::Id.in_subquery(
                    Query::select()
                        .column(Alias::new("user_id"))
                        .from(Alias::new("memberships"))
                        .and_where(Expr::col(Alias::new("account_id")).eq(account.0))
                        .to_owned(),
                ),
            )
            .order_by_asc(users::Column::Id)
            .all(self.store.reader())
            .await?
            .into_iter()
            .map(user)
            .collect())
    }

    /// The users among `ids` (repeats are fine), oldest first; ids of no one are left out.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(users::Entity::find()
            .filter(users::Column::Id.is_in(ids.iter().map(|id| id.0)))
            .order_by_asc(users::Column::Id)
            .all(self.store.reader())
            .await?
            .into_iter()
            .map(user)
            .collect())
    }

    /// The people who created `keys` (a key made on the command line or with a key names
    /// none), to name them beside the keys.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn creators_of(&self, keys: &[KeyRecord]) -> Result<Vec<User>, StoreError> {
        let ids: Vec<UserId> = keys.iter().filter_map(|key| key.created_by).collect();
        self.by_ids(&ids).await
    }

    /// Every user, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn list(&self) -> Result<Vec<User>, StoreError> {
        Ok(users::Entity::find()
            .order_by_asc(users::Column::Id)
            .all(self.store.reader())
            .await?
            .into_iter()
            .map(user)
            .collect())
    }

    /// User `id` with the stored password hash, for checking the password they type.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    pub async fn credentials(&self, id: UserId) -> Result<UserCredentials, StoreError> {
        let row = users::Entity::find_by_id(id.0)
            .one(self.store.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(UserCredentials {
            password_hash: PasswordHash::from_phc(row.password_hash.clone()),
            user: user(row),
        })
    }

    /// Sets user `id`'s password hash and ends every session of theirs, in one transaction
    /// (a forgotten password reset by the operator: whoever held a session with the old one
    /// holds none now). Returns how many sessions ended.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user, or a database error.
    pub async fn set_password(
        &self,
        id: UserId,
        password_hash: &PasswordHash,
    ) -> Result<u64, StoreError> {
        let txn = self.store.write.begin().await?;
        let ended = replace_password(&txn, id, None, password_hash, None).await?;
        txn.commit().await?;
        Ok(ended)
    }

    /// A person's own change of password: replaces `change.old` (the hash their current
    /// password was checked against) with `change.new`, ends every session of theirs but
    /// `change.keep` (the one that asked), and appends `audit`, in one transaction. Returns how
    /// many sessions ended.
    ///
    /// The hash is compared as part of the update, so of two changes racing from the same
    /// password only the first one applies: the second one's current password is no longer
    /// current.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user is gone or their hash is no longer `change.old`,
    /// or a database error.
    pub async fn change_password(
        &self,
        id: UserId,
        change: PasswordChange<'_>,
        audit: Option<NewAuditEntry<'_>>,
    ) -> Result<u64, StoreError> {
        let txn = self.store.write.begin().await?;
        let ended =
            replace_password(&txn, id, Some(change.old), change.new, Some(change.keep)).await?;
        if let Some(audit) = audit {
            append_in(&txn, audit).await?;
        }
        txn.commit().await?;
        Ok(ended)
    }

    /// Number of users (zero on a fresh installation).
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn count(&self) -> Result<u64, StoreError> {
        Ok(users::Entity::find().count(self.store.reader()).await?)
    }
}

/// A person's own change of password, for [`Users::change_password`].
#[derive(Clone, Copy, Debug)]
pub struct PasswordChange<'a> {
    /// The hash the current password was checked against.
    pub old: &'a PasswordHash,
    /// The new password's hash.
    pub new: &'a PasswordHash,
    /// The session that asked, which stays.
    pub keep: &'a SessionTokenHash,
}

/// Sets user `id`'s hash to `new` (only where it is still `old`, when given) and deletes their
/// sessions but `keep`; [`StoreError::NotFound`] when no row matched (the caller rolls back).
async fn replace_password(
    txn: &DatabaseTransaction,
    id: UserId,
    old: Option<&PasswordHash>,
    new: &PasswordHash,
    keep: Option<&SessionTokenHash>,
) -> Result<u64, StoreError> {
    let mut update = users::Entity::update_many()
        .col_expr(
            users::Column::PasswordHash,
            Expr::value(new.as_str().to_owned()),
        )
        .filter(users::Column::Id.eq(id.0));
    if let Some(old) = old {
        update = update.filter(users::Column::PasswordHash.eq(old.as_str()));
    }
    if update.exec(txn).await?.rows_affected != 1 {
        return Err(StoreError::NotFound);
    }
    let mut sessions = sessions::Entity::delete_many().filter(sessions::Column::UserId.eq(id.0));
    if let Some(keep) = keep {
        sessions = sessions.filter(sessions::Column::TokenHash.ne(hex::encode(keep.as_bytes())));
    }
    Ok(sessions.exec(txn).await?.rows_affected)
}

/// Inserts a user and their membership of `account` on `txn`.
pub(crate) async fn create_in(
    txn: &DatabaseTransaction,
    account: AccountId,
    role: Role,
    email: &Email,
    password_hash: &PasswordHash,
    now: DateTime<Utc>,
) -> Result<User, StoreError> {
    let row = users::ActiveModel {
        // Where the person's first login starts.
        account_id: Set(account.0),
        email: Set(email.as_str().to_owned()),
        password_hash: Set(password_hash.as_str().to_owned()),
        created_at: Set(db_time(now)),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::EmailTaken
        } else {
            e.into()
        }
    })?;
    add_in(txn, account, UserId(row.id), role, now).await?;
    Ok(user(row))
}

pub(crate) fn user(row: users::Model) -> User {
    User {
        id: UserId(row.id),
        email: row.email,
        created_at: row.created_at,
    }
}
