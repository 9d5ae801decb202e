//! The key-lookup port ([`agentvista_keys::KeyLookup`]) on the database.

use agentvista_keys::{
    AccountClosing, AccountId, Actor, Asked, KeyHash, KeyId, KeyLookup, KeyRecord, LeakReport,
    LookupError, LookupFuture, Origin, ReportedKey, Revoked, RollFuture, RollTerms,
};
use chrono::{DateTime, Utc};

use crate::revoke::{Note, Reason, Target};
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

    /// Commits the revocation with its audit entry, then waits for the revocation barrier:
    /// every running replica has dropped the key from its memory, or one lease has passed
    /// since the commit.
    fn revoke(
        &self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
    ) -> LookupFuture<'_, Option<Revoked>> {
        Box::pin(async move {
            let origin = Origin::default();
            self.revoke_one(account, id, by, at, &origin, |_| ()).await
        })
    }

    fn revoke_from<'a>(
        &'a self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
        origin: &'a Origin,
    ) -> LookupFuture<'a, Option<Revoked>> {
        Box::pin(self.revoke_one(account, id, by, at, origin, |_| ()))
    }

    /// See [`Store::roll`].
    fn roll<'a>(
        &'a self,
        account: AccountId,
        id: KeyId,
        terms: RollTerms,
        asked: Asked<'a>,
    ) -> RollFuture<'a> {
        Box::pin(Store::roll(self, account, id, terms, asked))
    }

    /// See [`KeyLookup::close_account`]: one transaction, one barrier.
    fn close_account<'a>(&'a self, closing: AccountClosing<'a>) -> LookupFuture<'a, Option<u64>> {
        Box::pin(self.close_account_evicting(closing, |_| ()))
    }

    /// One transaction revokes every reported key and writes its audit entry; one barrier
    /// follows, for the highest change among them.
    fn revoke_leaked<'a>(&'a self, report: LeakReport<'a>) -> LookupFuture<'a, Vec<ReportedKey>> {
        Box::pin(self.revoke_reported(report, |_| ()))
    }
}

impl Store {
    /// Revokes key `id` of `account` through [`Store::revoke_through_barrier`]; `None` when
    /// the account has no such key.
    pub(crate) async fn revoke_one(
        &self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
        origin: &Origin,
        evict: impl FnOnce(&[KeyHash]),
    ) -> Result<Option<Revoked>, LookupError> {
        let note = Note {
            by,
            at,
            origin,
            reason: Reason::Owner,
        };
        let keys = self
            .revoke_through_barrier(Target::Key(account, id), note, evict)
            .await?;
        Ok(keys.first().map(|(_, revoked)| *revoked))
    }

    /// Closes an account as [`Store::revoke_through_barrier`] revokes keys: its keys revoked, its
    /// sessions, memberships and invitations ended and its row made a tombstone in one
    /// transaction, one barrier for every key. `None` when there is no such open account.
    pub(crate) async fn close_account_evicting(
        &self,
        closing: AccountClosing<'_>,
        evict: impl FnOnce(&[KeyHash]),
    ) -> Result<Option<u64>, LookupError> {
        let note = Note {
            by: closing.by,
            at: closing.at,
            origin: closing.origin,
            reason: Reason::AccountClosed {
                email: closing.email,
            },
        };
        let done = match self
            .revoke_keys(Target::Account(closing.account), note)
            .await
        {
            Err(StoreError::NotFound) => return Ok(None),
            other => other?,
        };
        evict(&done.hashes);
        if let Some(seq) = done.seq {
            self.await_barrier(seq, done.committed).await;
        }
        let revoked = done
            .keys
            .iter()
            .filter(|(_, revoked)| *revoked == Revoked::Now)
            .count();
        Ok(Some(revoked as u64))
    }

    /// Revokes the keys of a leak report through [`Store::revoke_through_barrier`].
    pub(crate) async fn revoke_reported(
        &self,
        report: LeakReport<'_>,
        evict: impl FnOnce(&[KeyHash]),
    ) -> Result<Vec<ReportedKey>, LookupError> {
        if report.hashes.is_empty() {
            return Ok(Vec::new());
        }
        let note = Note {
            by: Actor::LeakReport,
            at: report.at,
            origin: report.origin,
            reason: Reason::Leak {
                source: report.source,
            },
        };
        let keys = self
            .revoke_through_barrier(Target::Hashes(report.hashes), note, evict)
            .await?;
        Ok(keys
            .into_iter()
            .map(|(record, revoked)| ReportedKey {
                record,
                already_revoked: revoked == Revoked::Already,
            })
            .collect())
    }

    /// Revokes `target`'s keys in one transaction, runs `evict` with their hashes once it has
    /// committed (a replica drops them from its own memory there), then waits for one
    /// revocation barrier, for the highest change among them — a key revoked before included,
    /// whose last change is waited for again.
    async fn revoke_through_barrier(
        &self,
        target: Target<'_>,
        note: Note<'_>,
        evict: impl FnOnce(&[KeyHash]),
    ) -> Result<Vec<(KeyRecord, Revoked)>, LookupError> {
        let done = self.revoke_keys(target, note).await?;
        evict(&done.hashes);
        if let Some(seq) = done.seq {
            self.await_barrier(seq, done.committed).await;
        }
        Ok(done.keys)
    }
}
