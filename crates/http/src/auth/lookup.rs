//! The key-lookup port: how authentication finds a presented key's record.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;

use agentvista_keys::KeyHash;
use agentvista_store::{KeyId, KeyRecord, Store, StoreError};
use chrono::{DateTime, Utc};

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

/// Where API keys are looked up. [`Store`] is the default; a service embedding this crate can
/// bring its own (with a cache, another database, …) through [`crate::AppState::with_key_lookup`].
pub trait KeyLookup: Send + Sync + 'static {
    /// The key whose SHA-256 is `hash`, in any status; `None` when there is none.
    fn find_by_hash<'a>(&'a self, hash: &'a KeyHash) -> LookupFuture<'a, Option<KeyRecord>>;

    /// Notes a successful use of key `id` at `at`. Called off the request path, at most about
    /// once a minute per key and replica; an implementation may throttle further.
    fn touch_last_used(&self, id: KeyId, at: DateTime<Utc>) -> LookupFuture<'_, ()>;
}

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
}
