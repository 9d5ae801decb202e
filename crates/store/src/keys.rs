//! API keys: created here (so a prefix collision can be retried), stored as prefix and hash.

use agentvista_keys::{
    ApiKey, Expiry, KeyHash, KeyName, KeyPrefix, KeyRecord, LAST_USED_GRANULARITY, RateLimit,
    Scopes,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::db::{begin_immediate, is_unique_violation};
use crate::entities::{OfAccount, api_keys};
use crate::locks::lock_open_account;
use crate::sql::statement;
use crate::{AccountId, KeyId, Store, StoreError, UserId, db::db_time};

/// How often a prefix collision (32 random bits) is retried before giving up. Eight collisions
/// in a row would take ~10¹⁵ keys, so reaching the limit means something else is wrong.
const PREFIX_ATTEMPTS: usize = 8;

/// What a key needs to be created.
#[derive(Clone, Debug)]
pub struct NewKey<'a> {
    /// Human name.
    pub name: &'a KeyName,
    /// Granted scopes.
    pub scopes: Scopes,
    /// Expiry, already checked to be in the future.
    pub expiry: Expiry,
    /// The creating user, if any.
    pub created_by: Option<UserId>,
    /// The key's own request rate, if it has one.
    pub rate_limit: Option<RateLimit>,
}

/// The api_keys table.
#[derive(Clone, Copy, Debug)]
pub struct Keys<'a> {
    store: &'a Store,
}

impl Store {
    /// The API keys repository.
    #[must_use]
    pub fn keys(&self) -> Keys<'_> {
        Keys { store: self }
    }
}

impl Keys<'_> {
    /// Generates a key for `account` and stores its prefix and hash. The returned [`ApiKey`] is
    /// the only copy of the secret: hand it to its owner once.
    ///
    /// # Errors
    /// [`StoreError::KeyGeneration`] when no unique key could be made, or a database error.
    pub async fn create(
        &self,
        account: AccountId,
        new: NewKey<'_>,
        now: DateTime<Utc>,
    ) -> Result<(ApiKey, KeyRecord), StoreError> {
        self.create_with(account, new, now, ApiKey::generate).await
    }

    /// [`Keys::create`] with the key generator as a parameter, so a collision can be tested.
    async fn create_with(
        &self,
        account: AccountId,
        new: NewKey<'_>,
        now: DateTime<Utc>,
        generate: impl FnMut() -> Result<ApiKey, agentvista_keys::GenerateError>,
    ) -> Result<(ApiKey, KeyRecord), StoreError> {
        let grant = Grant {
            account,
            created_by: new.created_by,
            name: new.name.as_str(),
            scopes: new.scopes.to_string(),
            expires_at: new.expiry.expires_at().map(db_time),
            rate_limit: new.rate_limit,
        };
        let txn = begin_immediate(&self.store.write).await?;
        ensure_room_for_a_key(&txn, account, now, self.store.options.max_active_keys).await?;
        let (key, row) = insert_new_key(&txn, &grant, now, generate).await?;
        txn.commit().await?;
        Ok((key, record(row)?))
    }

    /// Up to `limit` keys of `account` older than the key `before` (by id), newest first, and
    /// the id to pass as `before` for the next page when more follow.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn page(
        &self,
        account: AccountId,
        before: Option<KeyId>,
        limit: u64,
    ) -> Result<(Vec<KeyRecord>, Option<KeyId>), StoreError> {
        let mut query = api_keys::Entity::of_account(account);
        if let Some(before) = before {
            query = query.filter(api_keys::Column::Id.lt(before.0));
        }
        let mut keys = query
            .order_by_desc(api_keys::Column::Id)
            .limit(limit.saturating_add(1))
            .all(self.store.reader())
            .await?
            .into_iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
        let more = keys.len() as u64 > limit;
        keys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            keys.last().map(|k| k.id)
        } else {
            None
        };
        Ok((keys, next))
    }

    /// The key whose SHA-256 is `hash`, whatever its status (the caller decides, and logs why).
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        // Unscoped on purpose: the presented key names its account by its hash alone.
        api_keys::Entity::find()
            .filter(api_keys::Column::KeyHash.eq(hash.to_hex()))
            .one(self.store.reader())
            .await?
            .map(record)
            .transpose()
    }

    /// The key with `prefix` in `account`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the account has no such key.
    pub async fn find_by_prefix(
        &self,
        account: AccountId,
        prefix: &KeyPrefix,
    ) -> Result<KeyRecord, StoreError> {
        api_keys::Entity::of_account(account)
            .filter(api_keys::Column::Prefix.eq(prefix.as_str()))
            .one(self.store.reader())
            .await?
            .map(record)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// The key `id` of `account`. Another account's key is [`StoreError::NotFound`], like a
    /// key that does not exist.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], or a database error.
    pub async fn get(&self, account: AccountId, id: KeyId) -> Result<KeyRecord, StoreError> {
        api_keys::Entity::of_account(account)
            .filter(api_keys::Column::Id.eq(id.0))
            .one(self.store.reader())
            .await?
            .map(record)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Every key of `account`, newest first, revoked and expired keys included.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn list(&self, account: AccountId) -> Result<Vec<KeyRecord>, StoreError> {
        api_keys::Entity::of_account(account)
            .order_by_desc(api_keys::Column::Id)
            .all(self.store.reader())
            .await?
            .into_iter()
            .map(record)
            .collect()
    }

    /// Records a successful authentication at `now`, unless one was recorded less than
    /// [`LAST_USED_GRANULARITY`] ago (so a busy key costs one write a minute, not one a request).
    /// Returns whether a write happened.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn touch_last_used(&self, id: KeyId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let now = db_time(now);
        let stale = now - LAST_USED_GRANULARITY;
        let update = Query::update()
            .table(api_keys::Entity)
            .value(api_keys::Column::LastUsedAt, now)
            .and_where(api_keys::Column::Id.eq(id.0))
            .and_where(
                api_keys::Column::LastUsedAt
                    .is_null()
                    .or(api_keys::Column::LastUsedAt.lte(stale)),
            )
            .to_owned();
        let done = self.store.write.execute(&update).await?;
        Ok(done.rows_affected() == 1)
    }
}

/// What a new key's row holds besides its secret: the grant it carries.
pub(crate) struct Grant<'a> {
    pub(crate) account: AccountId,
    pub(crate) created_by: Option<UserId>,
    pub(crate) name: &'a str,
    /// As stored: `read,write`.
    pub(crate) scopes: String,
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) rate_limit: Option<RateLimit>,
}

/// Generates keys with `generate` until one's prefix is free, and inserts its row for
/// `grant`. Each attempt runs in a transaction of its own on `db` (a savepoint when `db` is a
/// transaction): on PostgreSQL a failed statement aborts the transaction around it, so a
/// prefix collision could not be retried otherwise.
pub(crate) async fn insert_new_key(
    db: &impl TransactionTrait<Transaction = DatabaseTransaction>,
    grant: &Grant<'_>,
    now: DateTime<Utc>,
    mut generate: impl FnMut() -> Result<ApiKey, agentvista_keys::GenerateError>,
) -> Result<(ApiKey, api_keys::Model), StoreError> {
    for _ in 0..PREFIX_ATTEMPTS {
        let key = generate().map_err(|e| StoreError::KeyGeneration(Some(e)))?;
        let row = api_keys::ActiveModel {
            account_id: Set(grant.account.0),
            created_by: Set(grant.created_by.map(|u| u.0)),
            name: Set(grant.name.to_owned()),
            prefix: Set(key.prefix().to_string()),
            key_hash: Set(key.hash().to_hex()),
            scopes: Set(grant.scopes.clone()),
            created_at: Set(db_time(now)),
            expires_at: Set(grant.expires_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
            rate_limit_per_second: Set(grant.rate_limit.map(|l| column(l.per_second()))),
            rate_limit_burst: Set(grant.rate_limit.map(|l| column(l.burst()))),
            ..Default::default()
        };
        let attempt = db.begin().await?;
        match row.insert(&attempt).await {
            Ok(row) => {
                attempt.commit().await?;
                return Ok((key, row));
            }
            Err(e) if is_unique_violation(&e) => {
                attempt.rollback().await?;
                tracing::info!(prefix = %key.prefix(), "key prefix collision, generating another key");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::KeyGeneration(None))
}

/// Refuses one more active key for `account` when it holds `max` already, or when the account
/// is deleted. On PostgreSQL the account's row is locked first, so that two transactions adding
/// keys to one account count one after the other, and a deletion waits for them; on SQLite the
/// write transaction itself is exclusive.
///
/// # Errors
/// [`StoreError::TooManyKeys`], [`StoreError::NotFound`] for a deleted account, or the
/// database's.
pub(crate) async fn ensure_room_for_a_key(
    txn: &DatabaseTransaction,
    account: AccountId,
    now: DateTime<Utc>,
    max: u32,
) -> Result<(), StoreError> {
    // A deleted account takes no new key: its deletion revoked every key it had, and takes
    // this row's lock to do so.
    lock_open_account(txn, account).await?;
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(statement(
            backend,
            "SELECT COUNT(*) AS n FROM api_keys WHERE account_id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
            [account.0.into(), db_time(now).into()],
        ))
        .await?
        .ok_or(StoreError::Corrupt {
            what: "COUNT(*) of api_keys",
        })?;
    let active: i64 = row.try_get("", "n")?;
    if active >= i64::from(max) {
        return Err(StoreError::TooManyKeys { limit: max });
    }
    Ok(())
}

/// A rate-limit figure as stored: at most [`RateLimit::MAX`], so it fits.
fn column(n: std::num::NonZeroU32) -> i32 {
    i32::try_from(n.get()).unwrap_or(i32::MAX)
}

/// The stored rate limit: both columns or neither.
fn stored_rate_limit(
    per_second: Option<i32>,
    burst: Option<i32>,
) -> Result<Option<RateLimit>, StoreError> {
    let corrupt = StoreError::Corrupt {
        what: "api_keys.rate_limit_*",
    };
    match (per_second, burst) {
        (None, None) => Ok(None),
        (Some(per_second), Some(burst)) => {
            let figure = |n: i32| u32::try_from(n).map_err(|_| ());
            match (figure(per_second), figure(burst)) {
                (Ok(per_second), Ok(burst)) => RateLimit::new(per_second, burst)
                    .map(Some)
                    .map_err(|_| corrupt),
                _ => Err(corrupt),
            }
        }
        _ => Err(corrupt),
    }
}

/// A key's stored hash (64 hex characters), read back.
pub(crate) fn stored_hash(hex: &str) -> Result<KeyHash, StoreError> {
    KeyHash::from_hex(hex).map_err(|_| StoreError::Corrupt {
        what: "api_keys.key_hash",
    })
}

pub(crate) fn record(row: api_keys::Model) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        id: KeyId(row.id),
        account_id: AccountId(row.account_id),
        created_by: row.created_by.map(UserId),
        name: row.name,
        prefix: KeyPrefix::parse(&row.prefix).map_err(|_| StoreError::Corrupt {
            what: "api_keys.prefix",
        })?,
        scopes: row.scopes.parse().map_err(|_| StoreError::Corrupt {
            what: "api_keys.scopes",
        })?,
        created_at: row.created_at,
        expiry: Expiry::at(row.expires_at),
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
        rate_limit: stored_rate_limit(row.rate_limit_per_second, row.rate_limit_burst)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentvista_keys::{AccountName, Scope};

    /// The same key every time, from a fixed byte stream.
    fn fixed_key() -> ApiKey {
        ApiKey::generate_with(|buf: &mut [u8]| {
            buf.fill(7);
            Ok::<(), ()>(())
        })
        .unwrap()
    }

    fn new_key(name: &KeyName) -> NewKey<'_> {
        NewKey {
            name,
            scopes: Scopes::only(Scope::Read),
            expiry: Expiry::NEVER,
            created_by: None,
            rate_limit: None,
        }
    }

    #[tokio::test]
    async fn a_prefix_collision_is_retried_with_a_new_key() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let now = Utc::now();
        let account = store
            .accounts()
            .create(&AccountName::parse("a").unwrap(), "free", now)
            .await
            .unwrap()
            .id;
        let name = KeyName::parse("k").unwrap();
        let keys = store.keys();
        let (first, _) = keys
            .create_with(account, new_key(&name), now, || Ok(fixed_key()))
            .await
            .unwrap();

        let mut calls = 0;
        let (second, record) = keys
            .create_with(account, new_key(&name), now, || {
                calls += 1;
                if calls == 1 {
                    Ok(fixed_key())
                } else {
                    ApiKey::generate()
                }
            })
            .await
            .unwrap();
        assert_eq!(calls, 2, "the colliding key was replaced");
        assert_ne!(second.prefix(), first.prefix());
        assert_eq!(record.prefix, second.prefix());

        let always = keys
            .create_with(account, new_key(&name), now, || Ok(fixed_key()))
            .await;
        assert!(
            matches!(always, Err(StoreError::KeyGeneration(None))),
            "gives up after {PREFIX_ATTEMPTS} tries"
        );
    }
}
