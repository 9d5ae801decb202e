//! Accounts: the tenant that owns users, keys, events and usage.

use agentvista_keys::password::PasswordHash;
use agentvista_keys::{AccountName, Email, Role};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait,
};

use crate::entities::accounts;
use crate::users::create_in;
use crate::{AccountId, Store, StoreError, User, db::db_time};

/// An account, with its plan name and spend cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Row id.
    pub id: AccountId,
    /// Display name.
    pub name: String,
    /// Name of the plan (plans themselves come from configuration).
    pub plan: String,
    /// Overage spend cap in cents; `None` for no cap.
    pub spend_cap_cents: Option<u64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it was deleted: its row stays as a tombstone, hidden from every endpoint, while
    /// its data is removed in the background.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The accounts table.
#[derive(Clone, Copy, Debug)]
pub struct Accounts<'a> {
    store: &'a Store,
}

impl Store {
    /// The accounts repository.
    #[must_use]
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { store: self }
    }
}

impl Accounts<'_> {
    /// Creates an account on `plan`. Account names are unique.
    ///
    /// # Errors
    /// [`StoreError`] from the database, `Database` with a unique violation for a taken name.
    pub async fn create(
        &self,
        name: &AccountName,
        plan: &str,
        now: DateTime<Utc>,
    ) -> Result<Account, StoreError> {
        let row = accounts::ActiveModel {
            name: Set(name.as_str().to_owned()),
            plan: Set(plan.to_owned()),
            spend_cap_cents: Set(None),
            created_at: Set(db_time(now)),
            ..Default::default()
        }
        .insert(&self.store.write)
        .await?;
        account(row)
    }

    /// Creates an account on `plan` and its first person, its owner, in one transaction: an
    /// account never exists without an owner.
    ///
    /// # Errors
    /// [`StoreError::EmailTaken`], `Database` with a unique violation for a taken name, or the
    /// database's.
    pub async fn create_with_owner(
        &self,
        name: &AccountName,
        plan: &str,
        owner: (&Email, &PasswordHash),
        now: DateTime<Utc>,
    ) -> Result<(Account, User), StoreError> {
        let txn = self.store.write.begin().await?;
        let row = accounts::ActiveModel {
            name: Set(name.as_str().to_owned()),
            plan: Set(plan.to_owned()),
            spend_cap_cents: Set(None),
            created_at: Set(db_time(now)),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let (email, hash) = owner;
        let user = create_in(&txn, AccountId(row.id), Role::Owner, email, hash, now).await?;
        txn.commit().await?;
        Ok((account(row)?, user))
    }

    /// The account `id`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    pub async fn get(&self, id: AccountId) -> Result<Account, StoreError> {
        let row = accounts::Entity::find_by_id(id.0)
            .one(self.store.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        account(row)
    }

    /// The account named `name`, if any (a deleted account has lost its name).
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn find_by_name(&self, name: &AccountName) -> Result<Option<Account>, StoreError> {
        accounts::Entity::find()
            .filter(accounts::Column::Name.eq(name.as_str()))
            .filter(accounts::Column::DeletedAt.is_null())
            .one(self.store.reader())
            .await?
            .map(account)
            .transpose()
    }

    /// Moves the account to another plan.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such account.
    pub async fn set_plan(&self, id: AccountId, plan: &str) -> Result<Account, StoreError> {
        self.update(id, |row| row.plan = Set(plan.to_owned())).await
    }

    /// Sets or clears the overage spend cap.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such account.
    pub async fn set_spend_cap(
        &self,
        id: AccountId,
        spend_cap_cents: Option<u64>,
    ) -> Result<Account, StoreError> {
        // Caps beyond i64 cents (92 quadrillion dollars) saturate rather than fail.
        let cap = spend_cap_cents.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
        self.update(id, |row| row.spend_cap_cents = Set(cap)).await
    }

    async fn update(
        &self,
        id: AccountId,
        change: impl FnOnce(&mut accounts::ActiveModel),
    ) -> Result<Account, StoreError> {
        let mut row = accounts::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id.0),
            ..Default::default()
        };
        change(&mut row);
        match row.update(&self.store.write).await {
            Ok(row) => account(row),
            Err(sea_orm::DbErr::RecordNotUpdated) => Err(StoreError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}

pub(crate) fn account(row: accounts::Model) -> Result<Account, StoreError> {
    Ok(Account {
        id: AccountId(row.id),
        name: row.name,
        plan: row.plan,
        spend_cap_cents: row
            .spend_cap_cents
            .map(u64::try_from)
            .transpose()
            .map_err(|_| StoreError::Corrupt {
                what: "accounts.spend_cap_cents",
            })?,
        created_at: row.created_at,
        deleted_at: row.deleted_at,
    })
}
