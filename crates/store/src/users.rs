//! Users: people who log in to the dashboard, each in one account.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
};

use crate::db::is_unique_violation;
use crate::entities::users;
use crate::{AccountId, Store, StoreError, UserId, db::db_time};

/// A dashboard user (never with the password hash; see [`UserCredentials`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// The account the user acts for.
    pub account_id: AccountId,
    /// E-mail address, trimmed and lower-cased.
    pub email: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A user with the stored password hash, for checking a login.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// The PHC-format password hash (argon2id).
    pub password_hash: String,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .field("password_hash", &"[REDACTED]")
            .finish()
    }
}

/// Normalizes an e-mail address for storage and lookup: trimmed, lower-cased, and shaped like
/// `local@domain`.
///
/// # Errors
/// [`StoreError::InvalidEmail`] when it is not.
pub fn normalize_email(email: &str) -> Result<String, StoreError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(StoreError::InvalidEmail)
    }
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
    /// [`StoreError::InvalidEmail`], [`StoreError::EmailTaken`], or a database error.
    pub async fn create(
        &self,
        account: AccountId,
        email: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let email = normalize_email(email)?;
        let row = users::ActiveModel {
            account_id: Set(account.0),
            email: Set(email),
            password_hash: Set(password_hash.to_owned()),
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

    /// The user with this e-mail address (any case), with the password hash.
    ///
    /// # Errors
    /// [`StoreError`] from the database; an address that cannot exist is simply not found.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<UserCredentials>, StoreError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let row = users::Entity::find()
            .filter(users::Column::Email.eq(email))
            .one(self.store.reader())
            .await?;
        Ok(row.map(|row| UserCredentials {
            password_hash: row.password_hash.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
    }

    #[test]
    fn things_that_are_not_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@localhost",
            "a da@example.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
