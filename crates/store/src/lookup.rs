//! The key-lookup port ([`agentvista_keys::KeyLookup`]) on the database.

use agentvista_keys::{
    AccountId, Actor, KeyHash, KeyId, KeyLookup, KeyRecord, LookupError, LookupFuture, Revoked,
};
use chrono::{DateTime, Utc};

use crate::{Store, StoreError};

impl From<StoreError> for LookupError {
    fn from(err: StoreError) -> Self {
        if err.is_unavailable() {
            LookupError::Unavailable(Box::new(err))
        } else {
            LookupError::Failed(Box::new(err))
        }
    }
}

impl KeyLookup for Store {
    fn find_by_hash<'a>(&'a self, hash: &'a KeyHash) -> LookupFuture<'a, Option<KeyRecord>> {
        Box::pin(async move { Ok(self.keys().find_by_hash(hash).await?) })
    }

    fn touch_last_used(&self, id: KeyId, at: DateTime<Utc>) -> LookupFuture<'_, ()> {
        Box::pin(async move {
            self.keys().touch_last_used(id, at).await?;
            Ok(())
        })
    }

    /// Commits the revocation, then waits for the revocation barrier: every running replica
    /// has dropped the key from its memory, or one `lease` has passed since the commit.
    fn revoke(
        &self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
    ) -> LookupFuture<'_, Option<Revoked>> {
        Box::pin(self.revoke_through_barrier(account, id, by, at, |_| ()))
    }
}

impl Store {
    /// Revokes key `id` of `account`, runs `evict` with its hash once the revocation has
    /// committed (a replica drops it from its own memory there), then waits for the revocation
    /// barrier. `None` when the account has no such key.
    pub(crate) async fn revoke_through_barrier(
        &self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
        evict: impl FnOnce(&KeyHash),
    ) -> Result<Option<Revoked>, LookupError> {
        match self.keys().revoke(account, id, by, at).await {
            Ok(done) => {
                evict(&done.hash);
                self.await_barrier(done.seq, done.committed).await;
                Ok(Some(done.revoked))
            }
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
