//! Rolling a key: a new secret for the same grant (name, scopes, account, expiry), and the old
//! key ending after a grace period — as Stripe rolls keys, so that a deployment can switch
//! over without an outage. The old key's new end is a change that can stop it, so it goes
//! through the key change log and the revocation barrier: no replica accepts the old key past
//! its new end. With no grace the old key is revoked, exactly as a revocation revokes it.

use agentvista_keys::{
    ApiKey, Asked, Expiry, MAX_ROLL_GRACE, RateLimitChange, RollError, RollTerms, Rolled,
};
use chrono::TimeDelta;
use sea_orm::sea_query::LockType;
use sea_orm::{ConnectionTrait, DatabaseTransaction, EntityTrait, QuerySelect};
use tokio::time::Instant;

use crate::audit::{AuditAction, NewAuditEntry, append_in};
use crate::changes::{self, Change, ChangeKind};
use crate::db::{begin_immediate, db_now, db_time};
use crate::entities::api_keys;
use crate::keys::{Grant, ensure_room_for_a_key, insert_new_key, record, stored_hash};
use crate::sql::statement;
use crate::{AccountId, KeyId, Store, StoreError, UserId};

impl From<StoreError> for RollError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => RollError::NotFound,
            StoreError::TooManyKeys { limit } => RollError::TooManyKeys { limit },
            other => RollError::Lookup(other.into()),
        }
    }
}

/// A database failure, as a roll answers it.
fn db(err: sea_orm::DbErr) -> RollError {
    StoreError::from(err).into()
}

impl Store {
    /// Rolls key `id` of `account`, as `asked`: one transaction locks the old key's row,
    /// creates the new key (the old one's name, scopes and expiry, and the rate limit `terms`
    /// ask for), records it as the old key's successor, and ends the old key — expiring at
    /// `asked.at + terms.grace` (or keeping an earlier expiry), or revoked with no grace —
    /// with its change in the key change log and a `key.rolled` audit entry. Then it waits
    /// for the revocation barrier, whatever the grace, and runs `evict` with the old key's
    /// hash in between (a replica drops it from its own memory there).
    ///
    /// # Errors
    /// [`RollError::GraceTooLong`]; [`RollError::AlreadyRolled`] when the key has a
    /// successor (first, whatever else is true of it); [`RollError::NotFound`] when `account`
    /// has no such key or it is revoked; [`RollError::Expired`]; [`RollError::TooManyKeys`].
    pub async fn roll(
        &self,
        account: AccountId,
        id: KeyId,
        terms: RollTerms,
        asked: Asked<'_>,
    ) -> Result<Rolled, RollError> {
        self.roll_evicting(account, id, terms, asked, |_| ()).await
    }

    /// [`Store::roll`], running `evict` once the roll has committed.
    pub(crate) async fn roll_evicting(
        &self,
        account: AccountId,
        id: KeyId,
        terms: RollTerms,
        asked: Asked<'_>,
        evict: impl FnOnce(&agentvista_keys::KeyHash),
    ) -> Result<Rolled, RollError> {
        if terms.grace > MAX_ROLL_GRACE {
            return Err(RollError::GraceTooLong);
        }
        let grace = TimeDelta::from_std(terms.grace).map_err(|_| RollError::GraceTooLong)?;
        let txn = begin_immediate(&self.write).await.map_err(db)?;
        let done = self.roll_in(&txn, account, id, grace, terms.rate_limit, asked);
        let (rolled, seq, hash) = match done.await {
            Ok(done) => done,
            Err(err) => {
                txn.rollback().await.map_err(db)?;
                return Err(err);
            }
        };
        txn.commit().await.map_err(db)?;
        let committed = Instant::now();
        evict(&hash);
        self.await_barrier(seq, committed).await;
        Ok(rolled)
    }

    async fn roll_in(
        &self,
        txn: &DatabaseTransaction,
        account: AccountId,
        id: KeyId,
        grace: TimeDelta,
        rate_limit: RateLimitChange,
        asked: Asked<'_>,
    ) -> Result<(Rolled, i64, agentvista_keys::KeyHash), RollError> {
        // The old key's row first, then the log's head, then the account's row: the lock
        // order of every transaction that takes more than one of them.
        let old = api_keys::Entity::find_by_id(id.0)
            .lock(LockType::Update)
            .one(txn)
            .await
            .map_err(db)?
            .filter(|row| row.account_id == account.0)
            .ok_or(RollError::NotFound)?;
        if old.successor_id.is_some() {
            return Err(RollError::AlreadyRolled);
        }
        if old.revoked_at.is_some() {
            return Err(RollError::NotFound);
        }
        // Expiry on the database's clock, which every replica's verification follows.
        let now = asked.at;
        let db_clock = db_now(txn, now).await.map_err(db)?;
        if old.expires_at.is_some_and(|at| at <= db_clock) {
            return Err(RollError::Expired);
        }
        let hash = stored_hash(&old.key_hash)?;
        let revoke = grace.is_zero();
        let change = Change {
            key: id,
            key_hash: &old.key_hash,
            account,
            kind: if revoke {
                ChangeKind::Revoked
            } else {
                ChangeKind::Expiry
            },
            actor: asked.by,
            at: now,
        };
        let seq = changes::append(txn, change).await.map_err(db)?;
        // Through its grace, the old key is active beside the new one; without one, the new key
        // takes its place.
        if !revoke {
            ensure_room_for_a_key(txn, account, now, self.options.max_active_keys).await?;
        }
        let old_record = record(old.clone())?;
        // The new key: the old one's grant, a new secret.
        let grant = Grant {
            account,
            // The successor is the same key to the account: whoever made it made this one.
            created_by: old.created_by.map(UserId),
            name: &old.name,
            scopes: old.scopes.clone(),
            expires_at: old.expires_at,
            rate_limit: match rate_limit {
                RateLimitChange::Keep => old_record.rate_limit,
                RateLimitChange::Set(limit) => limit,
            },
        };
        let (key, new_row) = insert_new_key(txn, &grant, now, ApiKey::generate).await?;
        // The old key ends: revoked now, or expiring at the grace's end (or earlier).
        let mut old_record = old_record;
        let (column, ends) = if revoke {
            let at = db_time(now);
            old_record.revoked_at = Some(at);
            ("revoked_at", at)
        } else {
            let ends = db_time(now + grace);
            let expires_at = old.expires_at.map_or(ends, |at| at.min(ends));
            old_record.expiry = Expiry::at(Some(expires_at));
            ("expires_at", expires_at)
        };
        txn.execute_raw(statement(
            txn.get_database_backend(),
            &format!("UPDATE api_keys SET {column} = $1, successor_id = $2 WHERE id = $3"),
            [ends.into(), new_row.id.into(), id.0.into()],
        ))
        .await
        .map_err(db)?;
        append_in(
            txn,
            NewAuditEntry {
                account,
                action: AuditAction::KeyRolled,
                actor: asked.by.to_string(),
                target: Some(old.prefix.clone()),
                origin: asked.origin,
                detail: Some(serde_json::json!({
                    "new_prefix": new_row.prefix,
                    "grace_seconds": grace.num_seconds(),
                })),
                at: now,
            },
        )
        .await?;
        let rolled = Rolled {
            key,
            record: record(new_row)?,
            old: old_record,
        };
        Ok((rolled, seq, hash))
    }
}
