//! Users: people who log in to the dashboard, each in one account.

use agentvista_keys::Email;
use agentvista_keys::password::PasswordHash;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};

use crate::db::is_unique_violation;
use crate::entities::{sessions, users};
use crate::{AccountId, Store, StoreError, UserId, db::db_time};

/// A dashboard user (never with the password hash; see [`UserCredentials`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// The account the user acts for.
    pub account_id: AccountId,
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
    /// Creates a user in `account` with an already-hashed password.
    ///
    /// # Errors
    /// [`StoreError::EmailTaken`], or a database error.
    pub async fn create(
        &self,
        account: AccountId,
        email: &Email,
        password_hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let row = users::ActiveModel {
            account_id: Set(account.0),
            email: Set(email.as_str().to_owned()),
            password_hash: Set(password_hash.as_str().to_owned()),
            created_at: Set(db_time(now)),
            ..Default::default()
        }
        .insert(&self.store.write)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::EmailTaken
            } else {
                e.into()
            }
        })?;
        Ok(user(row))
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
        let updated = users::Entity::update_many()
            .col_expr(
                users::Column::PasswordHash,
                Expr::value(password_hash.as_str().to_owned()),
            )
            .filter(users::Column::Id.eq(id.0))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            txn.rollback().await?;
            return Err(StoreError::NotFound);
        }
        let ended = sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(id.0))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(ended.rows_affected)
    }

    /// Number of users (zero on a fresh installation).
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn count(&self) -> Result<u64, StoreError> {
        Ok(users::Entity::find().count(self.store.reader()).await?)
    }
}

pub(crate) fn user(row: users::Model) -> User {
    User {
        id: UserId(row.id),
        account_id: AccountId(row.account_id),
        email: row.email,
        created_at: row.created_at,
    }
}
