//! The key-lookup port: where verification finds a presented key's record, and the one way to
//! change what verification will find. Declared here, in the domain crate, so that the HTTP
//! extractors, the CLI and the storage all speak it without knowing each other;
//! `agentvista-store` implements it on SQL, an embedding service with its own key storage
//! implements it on that.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

use crate::{
    AccountId, Actor, KeyHash, KeyId, KeyRecord, Origin, Revoked, RollError, RollTerms, Rolled,
};

/// A boxed future, so the port stays object-safe (`Arc<dyn KeyLookup>`).
pub type LookupFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LookupError>> + Send + 'a>>;

/// What [`KeyLookup::roll`] answers.
pub type RollFuture<'a> = Pin<Box<dyn Future<Output = Result<Rolled, RollError>> + Send + 'a>>;

/// Who asks for a change to a key, when, and from where.
#[derive(Clone, Copy, Debug)]
pub struct Asked<'a> {
    /// Who.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
    /// From where.
    pub origin: &'a Origin,
}

/// Why a lookup failed. `Unavailable` becomes 503 — never 401, so an outage does not look like
/// a revoked key to clients.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The key storage cannot be reached.
    #[error("the key storage is unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// Any other failure.
    #[error("the key lookup failed")]
    Failed(#[source] Box<dyn StdError + Send + Sync>),
}

/// A leak report, as the lookup revokes it: the keys found, where, and who reported them.
#[derive(Clone, Copy, Debug)]
pub struct LeakReport<'a> {
    /// The SHA-256 of each reported string that has the shape of a key.
    pub hashes: &'a [KeyHash],
    /// Where the keys were found, as the reporter says (keys in it cut to their prefix).
    pub source: Option<&'a str>,
    /// Who reported them.
    pub origin: &'a Origin,
    /// When.
    pub at: DateTime<Utc>,
}

/// A reported string that is a key: its record after the report, and whether it had been
/// revoked before.
#[derive(Clone, Debug)]
pub struct ReportedKey {
    /// The key, revoked.
    pub record: KeyRecord,
    /// It was revoked before the report (by its owner, or by an earlier report).
    pub already_revoked: bool,
}

/// An account's deletion, for [`KeyLookup::close_account`].
#[derive(Clone, Copy, Debug)]
pub struct AccountClosing<'a> {
    /// The account.
    pub account: AccountId,
    /// Who deletes it.
    pub by: Actor,
    /// Their e-mail address, kept on the account's tombstone (`None`: the operator).
    pub email: Option<&'a str>,
    /// When.
    pub at: DateTime<Utc>,
    /// From where.
    pub origin: &'a Origin,
}

/// Where API keys are looked up, and through which every change that affects verification
/// goes — revocation now — so that an implementation that answers from memory hears of every
/// such change.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// use agentvista_keys::{
///     AccountId, Actor, KeyHash, KeyId, KeyLookup, KeyRecord, LookupFuture, Revoked,
/// };
/// use chrono::{DateTime, Utc};
///
/// /// Keys in a map, as a test or a small service might keep them.
/// struct InMemory(Mutex<HashMap<KeyHash, KeyRecord>>);
///
/// impl KeyLookup for InMemory {
///     fn find_by_hash<'a>(&'a self, hash: &'a KeyHash) -> LookupFuture<'a, Option<KeyRecord>> {
///         let found = self.0.lock().unwrap().get(hash).cloned();
///         Box::pin(async move { Ok(found) })
///     }
///
///     fn touch_last_used(&self, _id: KeyId, _at: DateTime<Utc>) -> LookupFuture<'_, ()> {
///         Box::pin(async { Ok(()) })
///     }
///
///     fn revoke(
///         &self,
///         account: AccountId,
///         id: KeyId,
///         _by: Actor,
///         at: DateTime<Utc>,
///     ) -> LookupFuture<'_, Option<Revoked>> {
///         let mut keys = self.0.lock().unwrap();
///         let answer = keys
///             .values_mut()
///             .find(|k| k.account_id == account && k.id == id)
///             .map(|k| match k.revoked_at {
///                 Some(_) => Revoked::Already,
///                 None => {
///                     k.revoked_at = Some(at);
///                     Revoked::Now
///                 }
///             });
///         Box::pin(async move { Ok(answer) })
///     }
/// }
/// ```
pub trait KeyLookup: Send + Sync + 'static {
    /// The key whose SHA-256 is `hash`, in any status; `None` when there is none.
    fn find_by_hash<'a>(&'a self, hash: &'a KeyHash) -> LookupFuture<'a, Option<KeyRecord>>;

    /// Whether [`find_by_hash`](Self::find_by_hash) would answer for `hash` from memory,
    /// without reading storage: a key verified, or known to be unknown, recently. Callers
    /// throttle the lookups that read storage (unknown keys from one client address) and let
    /// these through. The default: never (every lookup reads).
    fn answers_from_memory(&self, hash: &KeyHash) -> bool {
        let _ = hash;
        false
    }

    /// The time expiry is judged against, when the lookup keeps a clock of its own: a key is
    /// refused once its `expires_at` is at or before it. The store's replica answers the
    /// database's clock as its last lease renewal read it, so that every replica judges by one
    /// clock, whatever their own say. The default, `None`: the caller's wall clock.
    fn expiry_clock(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// Notes a successful use of key `id` at `at`. Called off the request path, at most about
    /// once a minute per key and replica; an implementation may throttle further.
    fn touch_last_used(&self, id: KeyId, at: DateTime<Utc>) -> LookupFuture<'_, ()>;

    /// Revokes key `id` of `account` as of `at`, on behalf of `by`. From its return on, no
    /// verification that goes through this lookup accepts the key — on any replica, for an
    /// implementation that answers from memory (the store's waits for every replica's
    /// acknowledgement or lease: the revocation barrier). Revoking twice is no error
    /// ([`Revoked::Already`], the first time kept, and the same wait); `None` when `account`
    /// has no such key (another account's key included).
    fn revoke(
        &self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
    ) -> LookupFuture<'_, Option<Revoked>>;

    /// [`revoke`](Self::revoke), with where the request came from, for implementations that
    /// keep an audit log: the store writes the entry in the revocation's own transaction. The
    /// default forgets the origin.
    fn revoke_from<'a>(
        &'a self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
        origin: &'a Origin,
    ) -> LookupFuture<'a, Option<Revoked>> {
        let _ = origin;
        self.revoke(account, id, by, at)
    }

    /// Rolls key `id` of `account`: a new key with the old one's grant, and the old one
    /// ending after `terms.grace` (revoked at once with no grace). From its return on, no
    /// verification through this lookup accepts the old key past its new end, on any replica.
    /// A key rolls once ([`RollError::AlreadyRolled`]); a revoked key never
    /// ([`RollError::NotFound`]).
    ///
    /// The default answers [`RollError::Unsupported`].
    fn roll<'a>(
        &'a self,
        account: AccountId,
        id: KeyId,
        terms: RollTerms,
        asked: Asked<'a>,
    ) -> RollFuture<'a> {
        let _ = (account, id, terms, asked);
        Box::pin(async { Err(RollError::Unsupported) })
    }

    /// Deletes an account: revokes every key of it, ends its sessions and memberships and
    /// hides it, in one transaction, and returns — with the number of keys revoked — once no
    /// verification through this lookup accepts any of its keys, on any replica (one barrier
    /// for all of them). Its data goes later. `None` when there is no such account (or it is
    /// deleted already).
    ///
    /// The default refuses: only a lookup that owns the accounts can close one.
    fn close_account<'a>(&'a self, closing: AccountClosing<'a>) -> LookupFuture<'a, Option<u64>> {
        let _ = closing;
        Box::pin(async {
            Err(LookupError::Failed(
                "this key lookup does not keep accounts, so it cannot delete one".into(),
            ))
        })
    }

    /// Revokes every key among `report.hashes`, whatever its status, on behalf of a leak
    /// report, and answers the keys found. From its return on, no verification through this
    /// lookup accepts any of them — a key revoked before the report included, whose last
    /// change is waited for as a repeated [`revoke`](Self::revoke) waits for it.
    ///
    /// The default revokes the keys one after the other through
    /// [`revoke`](Self::revoke); the store revokes them in one transaction and waits for one
    /// barrier.
    fn revoke_leaked<'a>(&'a self, report: LeakReport<'a>) -> LookupFuture<'a, Vec<ReportedKey>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for hash in report.hashes {
                let Some(mut record) = self.find_by_hash(hash).await? else {
                    continue;
                };
                let revoked = self
                    .revoke_from(
                        record.account_id,
                        record.id,
                        Actor::LeakReport,
                        report.at,
                        report.origin,
                    )
                    .await?;
                let already_revoked = match revoked {
                    None => continue,
                    Some(Revoked::Now) => {
                        record.revoked_at = Some(report.at);
                        false
                    }
                    Some(Revoked::Already) => true,
                };
                found.push(ReportedKey {
                    record,
                    already_revoked,
                });
            }
            Ok(found)
        })
    }
}
