//! The replica against real databases: a SQLite file and, when
//! `AGENTVISTA_TEST_POSTGRES_URL` is set, a scratch PostgreSQL database.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use agentvista_keys::{
    AccountId, AccountName, Actor, ApiKey, Expiry, KeyLookup, KeyName, KeyRecord, Revoked, Scope,
    Scopes,
};
use chrono::Utc;
use sea_orm::{ConnectionTrait, Database, Statement};
use tokio::sync::Notify;

use super::cache::VerifiedKeys;
use super::{Replica, ReplicaOptions};
use crate::testing::{Engine, ScratchDb};
use crate::{NewKey, Store, StoreOptions};

/// Holds a miss between its database read and its insert, for the fill-race test.
pub(crate) struct Pause {
    reached: Arc<Notify>,
    release: Arc<Notify>,
}

/// Called by a miss between its read and its insert.
pub(crate) async fn pause(keys: &VerifiedKeys) {
    let pause = keys
        .pause_before_fill
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(pause) = pause {
        pause.reached.notify_one();
        pause.release.notified().await;
    }
}

const LEASE: Duration = Duration::from_millis(1_000);

fn options() -> StoreOptions {
    StoreOptions {
        lease: LEASE,
        ..StoreOptions::default()
    }
}

/// A database of the test's own; dropped (PostgreSQL) when the guard goes.
struct Db {
    url: String,
    _scratch: ScratchDb,
}

impl Db {
    async fn store(&self) -> Store {
        Store::connect_with(&self.url, options()).await.unwrap()
    }
}

/// The runner of [`crate::on_both!`] for these tests.
async fn run(test: impl AsyncFnOnce(&Db), engine: Engine) {
    let Some(scratch) = ScratchDb::new(engine, "replica tests").await else {
        return;
    };
    let db = Db {
        url: scratch.url().to_owned(),
        _scratch: scratch,
    };
    test(&db).await;
}

/// An account with one key; the key and its record.
async fn account_with_key(store: &Store) -> (AccountId, ApiKey, KeyRecord) {
    store.migrate().await.unwrap();
    let now = Utc::now();
    let account = store
        .accounts()
        .create(&AccountName::parse("replica").unwrap(), "free", now)
        .await
        .unwrap()
        .id;
    let (key, record) = new_key(store, account).await;
    (account, key, record)
}

async fn new_key(store: &Store, account: AccountId) -> (ApiKey, KeyRecord) {
    let name = KeyName::parse("k").unwrap();
    let new = NewKey {
        name: &name,
        scopes: Scopes::only(Scope::Read),
        expiry: Expiry::NEVER,
        created_by: None,
        rate_limit: None,
    };
    store.keys().create(account, new, Utc::now()).await.unwrap()
}

async fn replica(store: &Store, label: &str) -> Replica {
    let options = ReplicaOptions {
        capacity: 1_000,
        label: label.to_owned(),
    };
    let replica = Replica::start(store.clone(), options).await.unwrap();
    replica.until_serving().await;
    replica
}

async fn a_fill_concurrent_with_a_revocation_is_not_kept(db: &Db) {
    let store = db.store().await;
    let (account, key, record) = account_with_key(&store).await;
    let replica = replica(&store, "a").await;
    let pause = Pause {
        reached: Arc::new(Notify::new()),
        release: Arc::new(Notify::new()),
    };
    let (reached, release) = (Arc::clone(&pause.reached), Arc::clone(&pause.release));
    *replica.inner.keys.pause_before_fill.lock().unwrap() = Some(pause);

    let hash = key.hash();
    let lookup = tokio::spawn({
        let replica = replica.clone();
        async move { replica.find_by_hash(&hash).await.unwrap() }
    });
    // The miss has read the key, active, and not yet kept it.
    reached.notified().await;
    // Revoked through another process's store: answers once this replica has applied it.
    let elsewhere = db.store().await;
    let revoked = elsewhere
        .revoke(account, record.id, Actor::Cli, Utc::now())
        .await
        .unwrap();
    assert_eq!(revoked, Some(Revoked::Now));
    release.notify_one();

    let raced = lookup.await.unwrap().unwrap();
    assert!(
        raced.revoked_at.is_none(),
        "the miss read before the revocation"
    );
    let after = replica.find_by_hash(&hash).await.unwrap().unwrap();
    assert!(
        after.revoked_at.is_some(),
        "the read that raced the revocation was kept in the cache"
    );
    replica.shutdown().await;
}

async fn a_verified_key_is_answered_from_memory(db: &Db) {
    let store = db.store().await;
    let (_, key, record) = account_with_key(&store).await;
    let replica = replica(&store, "a").await;
    let hash = key.hash();
    assert!(replica.find_by_hash(&hash).await.unwrap().is_some());
    assert_eq!(replica.cached_keys(), 1);
    // Behind the change log's back (never done by the store): only memory still says active.
    let conn = Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2",
        [Utc::now().into(), record.id.0.into()],
    ))
    .await
    .unwrap();
    let cached = replica.find_by_hash(&hash).await.unwrap().unwrap();
    assert!(cached.revoked_at.is_none(), "answered from memory");
    let from_db = store.find_by_hash(&hash).await.unwrap().unwrap();
    assert!(from_db.revoked_at.is_some());
    // An unknown hash is remembered as unknown, apart from verified keys.
    let stranger = ApiKey::generate().unwrap().hash();
    assert!(replica.find_by_hash(&stranger).await.unwrap().is_none());
    assert_eq!(replica.cached_keys(), 1);
    replica.shutdown().await;
    conn.close().await.unwrap();
}

async fn a_revocation_on_one_replica_holds_on_the_other_at_once(db: &Db) {
    let (store_a, store_b) = (db.store().await, db.store().await);
    let (account, _, _) = account_with_key(&store_a).await;
    let (a, b) = (replica(&store_a, "a").await, replica(&store_b, "b").await);
    for trial in 0..20 {
        let (key, record) = new_key(&store_a, account).await;
        let hash = key.hash();
        let (revoker, other) = if trial % 2 == 0 { (&a, &b) } else { (&b, &a) };
        for replica in [revoker, other] {
            let found = replica.find_by_hash(&hash).await.unwrap().unwrap();
            assert!(found.revoked_at.is_none());
        }
        let done = revoker
            .revoke(account, record.id, Actor::Cli, Utc::now())
            .await
            .unwrap();
        assert_eq!(done, Some(Revoked::Now));
        let seen = other.find_by_hash(&hash).await.unwrap().unwrap();
        assert!(
            seen.revoked_at.is_some(),
            "trial {trial}: the other replica still accepts"
        );
        // Revoking again is no error and waits the same barrier.
        let again = other
            .revoke(account, record.id, Actor::Cli, Utc::now())
            .await
            .unwrap();
        assert_eq!(again, Some(Revoked::Already));
    }
    a.shutdown().await;
    b.shutdown().await;
    let rows = store_a
        .reader()
        .query_one_raw(Statement::from_string(
            store_a.write.get_database_backend(),
            "SELECT COUNT(*) AS n FROM replicas",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rows.try_get::<i64>("", "n").unwrap(),
        0,
        "shutdown removes the rows"
    );
}

async fn a_revocation_waits_out_a_replica_with_a_longer_lease(db: &Db) {
    let store = db.store().await;
    let (account, _, record) = account_with_key(&store).await;
    // A replica configured apart (twice the lease), alive, that never acknowledges.
    let backend = store.write.get_database_backend();
    let longer = i64::try_from(2 * LEASE.as_millis()).unwrap();
    let sql = format!(
        "INSERT INTO replicas (id, applied_seq, lease_until, lease_ms, started_at, label) \
         VALUES ('slow', 0, {} + $1, $1, $2, 'slow:1')",
        crate::sql::now_ms_sql(backend)
    );
    store
        .write
        .execute_raw(Statement::from_sql_and_values(
            backend,
            &sql,
            [longer.into(), Utc::now().into()],
        ))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let revoked = store
        .revoke(account, record.id, Actor::Cli, Utc::now())
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(revoked, Some(Revoked::Now));
    assert!(
        took >= 2 * LEASE - Duration::from_millis(50),
        "answered after {took:?}, before the slow replica's lease ({longer} ms) was out"
    );
    assert!(took < 2 * LEASE + Duration::from_secs(1), "{took:?}");
}

/// A roll with no grace stops the old key on every replica at once: its new expiry goes
/// through the change log and the barrier like a revocation.
async fn a_roll_without_grace_stops_the_old_key_on_every_replica(db: &Db) {
    let (store_a, store_b) = (db.store().await, db.store().await);
    let (account, _, _) = account_with_key(&store_a).await;
    let (a, b) = (replica(&store_a, "a").await, replica(&store_b, "b").await);
    let (key, record) = new_key(&store_a, account).await;
    let hash = key.hash();
    for replica in [&a, &b] {
        let found = replica.find_by_hash(&hash).await.unwrap().unwrap();
        assert!(found.status(Utc::now()).is_active());
    }
    let rolled = store_a
        .roll(
            account,
            record.id,
            crate::RollTerms::default(),
            agentvista_keys::Asked {
                by: Actor::Cli,
                at: Utc::now(),
                origin: &agentvista_keys::Origin::default(),
            },
        )
        .await
        .unwrap();
    for replica in [&a, &b] {
        let seen = replica.find_by_hash(&hash).await.unwrap().unwrap();
        assert!(
            !seen.status(Utc::now()).is_active(),
            "a replica still accepts the rolled key"
        );
        let new = replica
            .find_by_hash(&rolled.key.hash())
            .await
            .unwrap()
            .unwrap();
        assert!(new.status(Utc::now()).is_active());
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// A replica judges expiry on the database's clock, estimated from its renewals: never
/// behind it, and ahead by no more than a renewal's round trip. (A server whose own wall clock
/// is minutes behind is tried end to end, under libfaketime.)
async fn the_expiry_clock_is_the_databases(db: &Db) {
    let store = db.store().await;
    store.migrate().await.unwrap();
    let a = replica(&store, "a").await;
    let backend = store.write.get_database_backend();
    let db_now = || async {
        let row = store
            .write
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT {} AS now", crate::sql::now_ms_sql(backend)),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "now").unwrap()
    };
    for _ in 0..20 {
        let before = db_now().await;
        let estimated = a.expiry_clock().unwrap().timestamp_millis();
        let after = db_now().await;
        // Both readings in whole milliseconds (the estimate adds a margin for that), on a
        // database clock that a virtual machine's time sync may nudge by a millisecond or two
        // between renewals.
        assert!(
            estimated >= before - 5,
            "the estimate {estimated} is behind the database's clock {before}"
        );
        assert!(
            estimated <= after + 1_000,
            "the estimate {estimated} runs a second ahead of the database's clock {after}"
        );
    }
    a.shutdown().await;
}

crate::on_both!(
    a_fill_concurrent_with_a_revocation_is_not_kept,
    a_verified_key_is_answered_from_memory,
    a_revocation_on_one_replica_holds_on_the_other_at_once,
    a_revocation_waits_out_a_replica_with_a_longer_lease,
    a_roll_without_grace_stops_the_old_key_on_every_replica,
    the_expiry_clock_is_the_databases,
);
