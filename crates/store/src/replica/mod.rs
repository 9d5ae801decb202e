//! A replica: a running server that verifies keys from memory and takes part in the
//! revocation barrier (`docs/architecture.md`, "Verified keys in memory").
//!
//! [`Replica::start`] registers a row in `replicas` and starts the follower, which applies the
//! key change log and renews the replica's lease; the cache serves only while that lease runs.
//! A [`Replica`] is the key-lookup port with the cache in front of the store; revoking through
//! it commits, evicts locally and waits for every other replica.

mod cache;
mod clock;
mod db_clock;
mod follower;
mod lease;
mod rows;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentvista_keys::{
    AccountClosing, AccountId, Actor, Asked, KeyHash, KeyId, KeyLookup, KeyRecord, LeakReport,
    LookupFuture, Origin, ReportedKey, Revoked, RollFuture, RollTerms,
};
use chrono::{DateTime, Utc};
use sea_orm::{Database, DatabaseConnection};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::db::pool_options;
use crate::{Store, StoreError, StoreOptions};
use cache::VerifiedKeys;
use db_clock::DbClock;

/// Database reads that misses may run at once: a flood of unknown keys queues here instead of
/// taking every pooled connection.
const CONCURRENT_MISSES: usize = 32;

/// How a replica runs.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    /// Verified keys held at most (`auth.cache_capacity`); unknown hashes get a tenth of that.
    pub capacity: usize,
    /// How the replica is named in the log of a revocation it delays, e.g. `host:port`.
    pub label: String,
}

/// A registered replica: the key-lookup port with a verified-key cache.
///
/// ```no_run
/// # async fn run() -> Result<(), agentvista_store::StoreError> {
/// use agentvista_store::{Replica, ReplicaOptions, Store};
///
/// let store = Store::connect("sqlite://agentvista.db?mode=rwc").await?;
/// store.migrate().await?;
/// let options = ReplicaOptions { capacity: 100_000, label: "127.0.0.1:8080".into() };
/// let replica = Replica::start(store, options).await?;
/// // … serve, verifying keys through `replica` (it implements `KeyLookup`) …
/// replica.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Replica {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// 32 random hex digits: the row in `replicas`.
    id: String,
    label: String,
    keys: VerifiedKeys,
    misses: Semaphore,
    /// The database's clock, as the last renewal read it: expiry is judged on it.
    clock: DbClock,
    /// Where renewals are written: on a SQLite file a connection of their own, whose busy
    /// timeout is under a third of the lease, so that ingestion cannot starve them.
    renewer: DatabaseConnection,
    stop: watch::Sender<bool>,
    /// Whether the cache serves (for [`Replica::until_serving`]).
    serving: watch::Sender<bool>,
    follower: Mutex<Option<JoinHandle<()>>>,
}

impl Replica {
    /// Registers this process as a replica of `store`'s database and starts its follower.
    /// The cache starts serving after the follower's second round (a few milliseconds).
    ///
    /// # Errors
    /// [`StoreError`] when the replica cannot be registered.
    pub async fn start(store: Store, options: ReplicaOptions) -> Result<Replica, StoreError> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|_| StoreError::KeyGeneration(None))?;
        let id = hex::encode(random);
        let renewer = renewal_connection(&store).await?;
        let sent = clock::boot_nanos();
        let (applied, db_now) =
            rows::register(&renewer, &id, &options.label, store.options.lease).await?;
        let db_clock = DbClock::new();
        db_clock.read(db_now, sent);
        let keys = VerifiedKeys::new(options.capacity);
        keys.flush(Some(applied));
        let inner = Arc::new(Inner {
            store,
            id,
            label: options.label,
            keys,
            misses: Semaphore::new(CONCURRENT_MISSES),
            renewer,
            clock: db_clock,
            stop: watch::Sender::new(false),
            serving: watch::Sender::new(false),
            follower: Mutex::new(None),
        });
        let task = tokio::spawn(follower::follow(Arc::clone(&inner)));
        *inner
            .follower
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task);
        tracing::info!(replica = %inner.label, "verifying keys from memory under a lease");
        Ok(Replica { inner })
    }

    /// Returns once the cache serves (its lease is held), or at once if it does.
    pub async fn until_serving(&self) {
        let mut serving = self.inner.serving.subscribe();
        let _ = serving.wait_for(|on| *on).await;
    }

    /// Whether the cache serves now.
    #[must_use]
    pub fn is_serving(&self) -> bool {
        self.inner.keys.serving(clock::boot_nanos())
    }

    /// Verified keys held in memory now.
    #[must_use]
    pub fn cached_keys(&self) -> usize {
        self.inner.keys.len()
    }

    /// Stops serving from memory, stops the follower and removes the replica's row, so that no
    /// revocation waits for it. Call after the server stopped taking requests.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        // The follower first: a round under way could otherwise let the cache serve again.
        inner.stop.send_replace(true);
        let task = inner
            .follower
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        inner.keys.stop_serving();
        inner.keys.flush(None);
        if let Err(err) = rows::deregister(&inner.renewer, &inner.id).await {
            tracing::warn!(error = %err, "could not remove this replica's row; it expires by itself");
        }
    }
}

/// A connection for renewals: on a SQLite file its own, with a busy timeout under a third of
/// the lease; elsewhere the store's writer.
async fn renewal_connection(store: &Store) -> Result<DatabaseConnection, StoreError> {
    if !store.is_sqlite_file() {
        return Ok(store.write.clone());
    }
    let options = StoreOptions {
        busy_timeout: (store.options.lease / 4).max(Duration::from_millis(10)),
        ..store.options
    };
    Database::connect(pool_options(&store.url.0, 1, options))
        .await
        .map_err(StoreError::Unavailable)
}

impl Inner {
    /// The key of `hash` and the log's head, in one snapshot of the primary.
    async fn read(&self, hash: &KeyHash) -> Result<(Option<KeyRecord>, i64), StoreError> {
        // Never closed, so a permit always comes.
        let _permit = self.misses.acquire().await.ok();
        rows::key_and_head(self.store.reader(), hash).await
    }
}

impl KeyLookup for Replica {
    fn find_by_hash<'a>(&'a self, hash: &'a KeyHash) -> LookupFuture<'a, Option<KeyRecord>> {
        Box::pin(async move {
            let inner = &self.inner;
            Ok(inner.keys.get_or_read(hash, || inner.read(hash)).await?)
        })
    }

    /// The database's time, estimated from the last renewal and never behind it.
    fn expiry_clock(&self) -> Option<DateTime<Utc>> {
        self.inner.clock.at(clock::boot_nanos())
    }

    fn answers_from_memory(&self, hash: &KeyHash) -> bool {
        self.inner.keys.get(hash, clock::boot_nanos()).is_some()
    }

    fn touch_last_used(&self, id: KeyId, at: DateTime<Utc>) -> LookupFuture<'_, ()> {
        KeyLookup::touch_last_used(&self.inner.store, id, at)
    }

    /// Commits the revocation, evicts the key here at once, then waits for the revocation
    /// barrier: every other live replica has applied it, or one lease has passed.
    fn revoke(
        &self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
    ) -> LookupFuture<'_, Option<Revoked>> {
        Box::pin(async move {
            let origin = Origin::default();
            self.revoke_from(account, id, by, at, &origin).await
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
        let keys = &self.inner.keys;
        Box::pin(
            self.inner
                .store
                .revoke_one(account, id, by, at, origin, |hashes| {
                    keys.evict(hashes, None);
                }),
        )
    }

    /// As the store rolls it, evicting the old key here once the roll has committed.
    fn roll<'a>(
        &'a self,
        account: AccountId,
        id: KeyId,
        terms: RollTerms,
        asked: Asked<'a>,
    ) -> RollFuture<'a> {
        let keys = &self.inner.keys;
        Box::pin(
            self.inner
                .store
                .roll_evicting(account, id, terms, asked, |hash| {
                    keys.evict([hash], None);
                }),
        )
    }

    /// As the store closes it (one transaction, one barrier), evicting its keys here at once.
    fn close_account<'a>(&'a self, closing: AccountClosing<'a>) -> LookupFuture<'a, Option<u64>> {
        let keys = &self.inner.keys;
        Box::pin(self.inner.store.close_account_evicting(closing, |hashes| {
            keys.evict(hashes, None);
        }))
    }

    /// As the store revokes them (one transaction, one barrier), evicting them here at once.
    fn revoke_leaked<'a>(&'a self, report: LeakReport<'a>) -> LookupFuture<'a, Vec<ReportedKey>> {
        let keys = &self.inner.keys;
        Box::pin(self.inner.store.revoke_reported(report, |hashes| {
            keys.evict(hashes, None);
        }))
    }
}
