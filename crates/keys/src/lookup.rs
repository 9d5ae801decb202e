//! The key-lookup port: where verification finds a presented key's record, and the one way to
//! change what verification will find. Declared here, in the domain crate, so that the HTTP
//! extractors, the CLI and the storage all speak it without knowing each other;
//! `agentvista-store` implements it on SQL, an embedding service with its own key storage
//! implements it on that.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

use crate::{AccountId, Actor, KeyHash, KeyId, KeyRecord, Revoked};

/// A boxed future, so the port stays object-safe (`Arc<dyn KeyLookup>`).
pub type LookupFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LookupError>> + Send + 'a>>;

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
}
