//! First-run setup: the installation's first account and user, created at most once even when
//! several requests race for it.

use agentvista_keys::password::PasswordHash;
use agentvista_keys::{AccountName, Email, Role};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
};

use crate::accounts::account;
use crate::db::begin_immediate;
use crate::entities::{accounts, users};
use crate::users::create_in;
use crate::{Account, AccountId, Store, StoreError, User, db::db_time};

/// What the first run needs.
pub struct FirstUser<'a> {
    /// Name of the new account.
    pub account_name: &'a AccountName,
    /// Its plan.
    pub plan: &'a str,
    /// The user's e-mail address.
    pub email: &'a Email,
    /// The user's argon2id password hash.
    pub password_hash: &'a PasswordHash,
}

impl Store {
    /// Creates the first account and its first user — only while no user exists.
    ///
    /// The check and the inserts are one transaction that holds the write lock on SQLite and a
    /// lock on `users` on PostgreSQL, so of several simultaneous first runs exactly one wins.
    ///
    /// # Errors
    /// [`StoreError::AlreadySetUp`] when a user exists (or another first run won), or a
    /// database error.
    pub async fn create_first_user(
        &self,
        first: FirstUser<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Account, User), StoreError> {
        let txn = begin_immediate(&self.write).await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            // Blocks concurrent first runs (and user inserts) until this transaction ends.
            txn.execute_unprepared("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                .await?;
        }
        if users::Entity::find().count(&txn).await? > 0 {
            txn.rollback().await?;
            return Err(StoreError::AlreadySetUp);
        }
        let created = accounts::ActiveModel {
            name: Set(first.account_name.as_str().to_owned()),
            plan: Set(first.plan.to_owned()),
            spend_cap_cents: Set(None),
            created_at: Set(db_time(now)),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let person = create_in(
            &txn,
            AccountId(created.id),
            Role::Owner,
            first.email,
            first.password_hash,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok((account(created)?, person))
    }
}
