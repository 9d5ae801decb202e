//! Revocations that must wait for the barrier whatever the key's state: a leak report of a key
//! revoked before, and a report of many keys, which waits once.

use std::time::Duration;

use agentvista_keys::{LeakReport, Origin};
use agentvista_store::StoreOptions;
use sea_orm::DbBackend;
use tokio::time::Instant;

use super::*;

/// The lease of these tests: short, so that waiting one out stays cheap.
pub(super) const LEASE: Duration = Duration::from_millis(200);

/// A second store on `db`'s database, running [`LEASE`].
pub(super) async fn leased(db: &TestDb) -> Store {
    let options = StoreOptions {
        lease: LEASE,
        ..StoreOptions::default()
    };
    Store::connect_with(&db.url, options).await.unwrap()
}

/// Registers a replica that holds a live lease of [`LEASE`] and never applies a change: every
/// barrier on the database waits it out.
pub(super) async fn silent_replica(db: &TestDb) {
    let conn = Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let now_ms = match backend {
        DbBackend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        _ => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    };
    let lease = i64::try_from(LEASE.as_millis()).unwrap();
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO replicas (id, applied_seq, lease_until, lease_ms, started_at, label) \
             VALUES ('silent', 0, {now_ms} + 600000, $1, $2, 'silent:1')"
        ),
        [lease.into(), Utc::now().into()],
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// `n` write keys of `account`.
async fn keys(store: &Store, account: AccountId, n: usize) -> Vec<ApiKey> {
    let name = key_name("leaky");
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        keys.push(
            store
                .keys()
                .create(account, write_key(&name), Utc::now())
                .await
                .unwrap()
                .0,
        );
    }
    keys
}

/// One write key of `account`, and its record.
async fn one_key(store: &Store, account: AccountId) -> (ApiKey, agentvista_keys::KeyRecord) {
    store
        .keys()
        .create(account, write_key(&key_name("leaky")), Utc::now())
        .await
        .unwrap()
}

/// A report of a key its owner revoked returns only once the barrier has been waited for
/// that revocation's change, as a repeated revocation does: a lagging replica may hold it
/// until then.
async fn a_report_of_a_revoked_key_waits_for_the_barrier(db: &TestDb) {
    let store = leased(db).await;
    let acme = account(&store, "acme").await;
    let (key, record) = one_key(&store, acme).await;
    let revoked = store
        .revoke(acme, record.id, Actor::Cli, Utc::now())
        .await
        .unwrap();
    assert_eq!(revoked, Some(Revoked::Now));
    silent_replica(db).await;

    let origin = Origin::default();
    let started = Instant::now();
    let reported = store
        .revoke_leaked(LeakReport {
            hashes: &[key.hash()],
            source: Some("https://example.test/leak"),
            origin: &origin,
            at: Utc::now(),
        })
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= LEASE, "answered after {took:?}, inside the lease");
    assert_eq!(reported.len(), 1);
    assert!(reported[0].already_revoked);
    assert_eq!(
        reported[0].record.revoked_at,
        record_revoked_at(&store, &key).await
    );

    let log = store.audit().page(acme, None, 10).await.unwrap().entries;
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["key.reported_leaked", "key.revoked"]);
    assert_eq!(log[0].detail.as_ref().unwrap()["already_revoked"], true);
    assert_eq!(log[1].actor, "cli");
    store.close().await.unwrap();
}
on_both!(a_report_of_a_revoked_key_waits_for_the_barrier);

async fn record_revoked_at(store: &Store, key: &ApiKey) -> Option<DateTime<Utc>> {
    let record = store.keys().find_by_hash(&key.hash()).await.unwrap();
    record.unwrap().revoked_at
}

/// A report of a hundred live keys revokes them in one transaction and waits one barrier,
/// not one per key (which would take a hundred leases with a silent replica).
async fn a_report_of_many_keys_waits_for_one_barrier(db: &TestDb) {
    let store = leased(db).await;
    let acme = account(&store, "acme").await;
    let globex = account(&store, "globex").await;
    let mut reported_keys = keys(&store, acme, 60).await;
    reported_keys.extend(keys(&store, globex, 40).await);
    silent_replica(db).await;

    let hashes: Vec<_> = reported_keys.iter().map(ApiKey::hash).collect();
    let origin = Origin::new(Some("203.0.113.7".parse().unwrap()), Some("scanner/1"));
    let started = Instant::now();
    let reported = store
        .revoke_leaked(LeakReport {
            hashes: &hashes,
            source: None,
            origin: &origin,
            at: Utc::now(),
        })
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(reported.len(), 100);
    assert!(reported.iter().all(|key| !key.already_revoked));
    assert!(took >= LEASE, "answered after {took:?}, inside the lease");
    assert!(
        took < 10 * LEASE,
        "took {took:?}: one barrier per key, not one for the report"
    );
    for key in &reported_keys {
        assert!(record_revoked_at(&store, key).await.is_some());
    }
    for (account, n) in [(acme, 60), (globex, 40)] {
        let log = store
            .audit()
            .page(account, None, 100)
            .await
            .unwrap()
            .entries;
        assert_eq!(log.len(), n);
        assert!(log.iter().all(|e| e.action == "key.reported_leaked"
            && e.client_address.as_deref() == Some("203.0.113.7")));
    }
    store.close().await.unwrap();
}
on_both!(a_report_of_many_keys_waits_for_one_barrier);

/// `n` events with new ids, sent with `key`.
fn batch_of(key: Option<KeyId>, tag: &str, n: usize) -> EventBatch {
    EventBatch {
        api_key_id: key,
        received_at: Utc::now(),
        contexts: Vec::new(),
        events: (0..n)
            .map(|i| event(Some(&format!("{tag}-{i}")), Some(tag), noon()))
            .collect(),
    }
}

async fn record(store: &Store, account: AccountId, batch: EventBatch) -> Result<u64, String> {
    store
        .record(account, Period::containing(Utc::now()), &unlimited(), batch)
        .await
        .map(|recorded| recorded.accepted)
        .map_err(|err| format!("{err:?}"))
}

/// A batch whose key was revoked, or expired, before it is counted stores nothing and is
/// refused — small batches (one trip to SQLite) and large ones, new events and repeats alike.
async fn a_batch_of_a_key_that_stopped_working_stores_nothing(db: &TestDb) {
    let store = &db.store;
    let acme = account(store, "acme").await;
    let created = |name: &'static str| async move {
        let (_, record) = store
            .keys()
            .create(acme, write_key(&key_name(name)), Utc::now())
            .await
            .unwrap();
        record.id
    };
    let (revoked, expired, live) = (created("r").await, created("e").await, created("l").await);
    assert_eq!(
        record(store, acme, batch_of(Some(revoked), "first", 3)).await,
        Ok(3)
    );
    store
        .revoke(acme, revoked, Actor::Cli, Utc::now())
        .await
        .unwrap();
    let conn = Database::connect(&db.url).await.unwrap();
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE api_keys SET expires_at = $1 WHERE id = $2",
        [
            (Utc::now() - TimeDelta::seconds(1)).into(),
            expired.0.into(),
        ],
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();

    for key in [revoked, expired] {
        for (tag, n) in [("small", 3), ("large", 1200)] {
            let refused = record(store, acme, batch_of(Some(key), tag, n)).await;
            assert_eq!(refused, Err("CredentialEnded".to_owned()), "{key:?} {tag}");
        }
        let repeat = record(store, acme, batch_of(Some(key), "first", 3)).await;
        assert_eq!(repeat, Err("CredentialEnded".to_owned()), "{key:?} repeat");
    }
    assert_eq!(count_rows(db, "SELECT COUNT(*) AS n FROM events").await, 3);
    let period = Period::containing(Utc::now());
    assert_eq!(store.used(acme, period).await.unwrap(), 3);
    // The account's other key, and its sessions, are untouched.
    assert_eq!(
        record(store, acme, batch_of(Some(live), "live", 2)).await,
        Ok(2)
    );
    assert_eq!(
        record(store, acme, batch_of(None, "session", 2)).await,
        Ok(2)
    );
}
on_both!(a_batch_of_a_key_that_stopped_working_stores_nothing);

/// A batch counted while a revocation of its key is under way (its transaction holds the
/// key's row, uncommitted) waits for it, then is refused: the events commit before the
/// revocation does, or not at all.
async fn a_batch_racing_its_keys_revocation_waits_and_is_refused(db: &TestDb) {
    let store = db.store.clone();
    let acme = account(&store, "acme").await;
    let (_, key) = store
        .keys()
        .create(acme, write_key(&key_name("racing")), Utc::now())
        .await
        .unwrap();
    let conn = Database::connect(&db.url).await.unwrap();
    let revoking = conn
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await
        .unwrap();
    revoking
        .execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2",
            [Utc::now().into(), key.id.0.into()],
        ))
        .await
        .unwrap();
    let recording =
        tokio::spawn(
            async move { record(&store, acme, batch_of(Some(key.id), "racing", 3)).await },
        );
    revoking.commit().await.unwrap();
    let answer = recording.await.unwrap();
    assert_eq!(answer, Err("CredentialEnded".to_owned()));
    assert_eq!(count_rows(db, "SELECT COUNT(*) AS n FROM events").await, 0);
    conn.close().await.unwrap();
}
on_both!(a_batch_racing_its_keys_revocation_waits_and_is_refused);

/// No key row goes without a change in the key change log: an account that holds keys cannot
/// be deleted (every key, revoked ones included, stays as a record); one without keys can.
async fn an_account_with_keys_cannot_be_deleted(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let empty = account(&db.store, "empty").await;
    let (key, record) = one_key(&db.store, acme).await;
    db.store
        .revoke(acme, record.id, Actor::Cli, Utc::now())
        .await
        .unwrap();
    let conn = Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let delete = |id: AccountId| {
        Statement::from_sql_and_values(backend, "DELETE FROM accounts WHERE id = $1", [id.0.into()])
    };
    let refused = conn.execute_raw(delete(acme)).await;
    let message = refused
        .expect_err("an account with keys was deleted")
        .to_string();
    assert!(message.to_lowercase().contains("foreign key"), "{message}");
    assert!(
        db.store
            .keys()
            .find_by_hash(&key.hash())
            .await
            .unwrap()
            .is_some()
    );
    let done = conn.execute_raw(delete(empty)).await.unwrap();
    assert_eq!(done.rows_affected(), 1);
    conn.close().await.unwrap();
}
on_both!(an_account_with_keys_cannot_be_deleted);

/// A lease outside 100 to 60,000 ms is refused when the store opens; a replica's row holding
/// an absurd one (written by hand, or by an older process) is read within those bounds, so a
/// revocation neither panics nor waits on it once it is dead.
async fn lease_settings_cannot_break_the_barrier(db: &TestDb) {
    for lease in [
        Duration::ZERO,
        Duration::from_millis(99),
        Duration::from_secs(61),
    ] {
        let options = StoreOptions {
            lease,
            ..StoreOptions::default()
        };
        let refused = Store::connect_with(&db.url, options).await;
        assert!(
            matches!(refused, Err(StoreError::InvalidOptions(_))),
            "{lease:?}: {:?}",
            refused.map(|_| ())
        );
    }
    let conn = Database::connect(&db.url).await.unwrap();
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "INSERT INTO replicas (id, applied_seq, lease_until, lease_ms, started_at, label) \
         VALUES ('absurd', 0, 0, $1, $2, 'absurd:1')",
        [(i64::MAX / 2).into(), Utc::now().into()],
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();
    let store = leased(db).await;
    let acme = account(&store, "acme").await;
    let (_, record) = one_key(&store, acme).await;
    let started = Instant::now();
    let revoked = store
        .revoke(acme, record.id, Actor::Cli, Utc::now())
        .await
        .unwrap();
    assert_eq!(revoked, Some(Revoked::Now));
    // Waited out, the clamped lease would hold it a minute.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a dead replica's row held the revocation for {:?}",
        started.elapsed()
    );
    store.close().await.unwrap();
}
on_both!(lease_settings_cannot_break_the_barrier);
