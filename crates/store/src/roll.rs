//! Rolling a key: a new secret for the same grant (name, scopes, account, expiry), and the old
//! key expiring after a grace period — as Stripe rolls keys, so that a deployment can switch
//! over without an outage. The old key's new expiry is a change that can stop it, so it goes
//! through the key change log, and, when the grace is shorter than a lease, through the
//! revocation barrier: no replica accepts the old key after its new expiry.

use std::time::Duration;

use agentvista_keys::{Actor, ApiKey, KeyRecord, KeyStatus, RateLimit};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, EntityTrait};
use tokio::time::Instant;

use crate::changes::{self, Change, ChangeKind, statement};
use crate::db::{begin_immediate, db_time};
use crate::entities::api_keys;
use crate::keys::{Grant, ensure_room_for_a_key, insert_new_key, record};
use crate::{AccountId, KeyId, Store, StoreError};

/// The longest grace a roll may give the old key: seven days.
pub const MAX_ROLL_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a roll asks for besides a new secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RollTerms {
    /// How long the old key keeps working, at most [`MAX_ROLL_GRACE`]; zero stops it at once.
    pub grace: Duration,
    /// The new key's rate limit.
    pub rate_limit: RateLimitChange,
}

/// The new key's rate limit on a roll.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RateLimitChange {
    /// The old key's, whatever it is (none included).
    #[default]
    Keep,
    /// This one; `None` removes it.
    Set(Option<RateLimit>),
}

/// What a roll did.
#[derive(Debug)]
pub struct Rolled {
    /// The new key: the only copy of its secret, to hand to its owner once.
    pub key: ApiKey,
    /// The new key's row.
    pub record: KeyRecord,
    /// The old key's row, with its new expiry.
    pub old: KeyRecord,
}

/// Why a key could not be rolled.
#[derive(Debug, thiserror::Error)]
pub enum RollError {
    /// The grace is longer than [`MAX_ROLL_GRACE`].
    #[error("grace_seconds: at most {} (7 days)", MAX_ROLL_GRACE.as_secs())]
    GraceTooLong,
    /// The key is revoked or expired already: there is nothing to hand over from.
    #[error("only an active key can be rolled; this one is {0}")]
    NotActive(&'static str),
    /// Not found for this account, or a database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for RollError {
    fn from(err: sea_orm::DbErr) -> Self {
        RollError::Store(err.into())
    }
}

impl Store {
    /// Rolls key `id` of `account` on behalf of `by`: one transaction creates the new key (the
    /// old one's name, scopes and expiry, and the rate limit `terms` ask for) and sets the old
    /// one to expire at `now + terms.grace` (or keeps its earlier expiry), appending the
    /// change to the key change log. With a grace shorter than the lease, it then waits for the
    /// revocation barrier, so that the old key stops on every replica by its expiry.
    ///
    /// # Errors
    /// [`RollError::GraceTooLong`], [`RollError::NotActive`], or [`StoreError::NotFound`] when
    /// `account` has no such key.
    pub async fn roll(
        &self,
        account: AccountId,
        id: KeyId,
        terms: RollTerms,
        by: Actor,
        now: DateTime<Utc>,
    ) -> Result<Rolled, RollError> {
        let grace = terms.grace;
        if grace > MAX_ROLL_GRACE {
            return Err(RollError::GraceTooLong);
        }
        let grace_delta = TimeDelta::from_std(grace).map_err(|_| RollError::GraceTooLong)?;
        let (rolled, seq, committed) = self
            .roll_in_transaction(account, id, grace_delta, terms.rate_limit, by, now)
            .await?;
        if grace < self.options.lease {
            self.await_barrier(seq, committed).await;
        }
        Ok(rolled)
    }

    async fn roll_in_transaction(
        &self,
        account: AccountId,
        id: KeyId,
        grace: TimeDelta,
        rate_limit: RateLimitChange,
        by: Actor,
        now: DateTime<Utc>,
    ) -> Result<(Rolled, i64, Instant), RollError> {
        let txn = begin_immediate(&self.write).await?;
        let old = api_keys::Entity::find_by_id(id.0)
            .one(&txn)
            .await?
            .filter(|row| row.account_id == account.0)
            .ok_or(StoreError::NotFound)?;
        let old_record = record(old.clone())?;
        match old_record.status(now) {
            KeyStatus::Active => {}
            KeyStatus::Revoked => return Err(RollError::NotActive("revoked")),
            KeyStatus::Expired => return Err(RollError::NotActive("expired")),
        }
        // Through its grace, the old key is active beside the new one; without one, the new key
        // takes its place.
        if grace > TimeDelta::zero() {
            ensure_room_for_a_key(&txn, account, now, self.options.max_active_keys).await?;
        }
        // The new key: the old one's grant, a new secret.
        let grant = Grant {
            account,
            created_by: match by {
                Actor::User(user) => Some(user),
                Actor::Key(_) | Actor::Cli | Actor::LeakReport => None,
            },
            name: &old.name,
            scopes: old.scopes.clone(),
            expires_at: old.expires_at,
            rate_limit: match rate_limit {
                RateLimitChange::Keep => old_record.rate_limit,
                RateLimitChange::Set(limit) => limit,
            },
        };
        let (key, new_row) = insert_new_key(&txn, &grant, now, ApiKey::generate).await?;
        let ends = db_time(now + grace);
        let expires_at = old.expires_at.map_or(ends, |at| at.min(ends));
        let backend = txn.get_database_backend();
        txn.execute_raw(statement(
            backend,
            "UPDATE api_keys SET expires_at = $1 WHERE id = $2",
            [expires_at.into(), id.0.into()],
        ))
        .await?;
        let change = Change {
            key: id,
            key_hash: &old.key_hash,
            account,
            kind: ChangeKind::Expiry,
            actor: by,
            at: now,
        };
        let seq = changes::append(&txn, change).await?;
        txn.commit().await?;
        let committed = Instant::now();
        let mut old_record = old_record;
        old_record.expiry = agentvista_keys::Expiry::at(Some(expires_at));
        let rolled = Rolled {
            key,
            record: record(new_row)?,
            old: old_record,
        };
        Ok((rolled, seq, committed))
    }
}
