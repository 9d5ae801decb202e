//! Dashboard sessions, stored by the SHA-256 of their cookie value.

use agentvista_keys::session::{CsrfToken, SessionTokenHash};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::entities::{sessions, users};
use crate::users::user;
use crate::{Store, StoreError, User, db::db_time};

/// A live session, found by its token. Its `Debug` shows no secret (the CSRF token's own
/// `Debug` is redacted).
#[derive(Clone, Debug)]
pub struct Session {
    /// The user the session acts for (with every scope of their account).
    pub user: User,
    /// The token a cookie-authenticated unsafe request must echo in `X-CSRF-Token`.
    pub csrf_token: CsrfToken,
    /// When the session stops working.
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
    /// Stores a session whose cookie value hashes (SHA-256) to `token_hash`.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn create(
        &self,
        user: &User,
        token_hash: &SessionTokenHash,
        csrf_token: &CsrfToken,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Session, StoreError> {
        sessions::ActiveModel {
            token_hash: Set(hex::encode(token_hash.as_bytes())),
            user_id: Set(user.id.0),
            csrf_token: Set(csrf_token.expose_secret().to_owned()),
            created_at: Set(db_time(now)),
            expires_at: Set(db_time(expires_at)),
            ..Default::default()
        }
        .insert(&self.store.write)
        .await?;
        Ok(Session {
            user: user.clone(),
            csrf_token: csrf_token.clone(),
            expires_at: db_time(expires_at),
        })
    }

    /// The session for `token_hash`, if it exists and has not expired at `now`.
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
        Ok(match found {
            Some((session, Some(owner))) => Some(Session {
                user: user(owner),
                csrf_token: CsrfToken::from_stored(session.csrf_token),
                expires_at: session.expires_at,
            }),
            _ => None,
        })
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
