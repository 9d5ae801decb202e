//! Faults: a database that is locked, cut off, read-only or handed text it cannot hold. The
//! store must answer `Unavailable` (HTTP 503) or `InvalidInput` (HTTP 400) — never a plain
//! database failure — and recover by itself once the fault is gone. SQLite always;
//! PostgreSQL when `AGENTVISTA_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use agentvista_quota::{Period, RecordError, Recorded};
use agentvista_store::testing::{Engine, ScratchDb};
use agentvista_store::{AccountId, EventBatch, NewEvent, Store, StoreError, StoreOptions};
use chrono::Utc;
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};

/// Plans under which the tests' accounts (all on `free`) may store `limit` events a month.
fn free_plan(limit: u64) -> agentvista_quota::Plans {
    agentvista_quota::Plans::from_iter([(
        "free".to_owned(),
        agentvista_quota::Plan {
            monthly_events: limit,
            overage_cents_per_1000_events: 0,
            retention_days: 30,
        },
    )])
}

fn batch(ids: &[&str]) -> EventBatch {
    EventBatch {
        api_key_id: None,
        received_at: Utc::now(),
        contexts: Vec::new(),
        events: ids
            .iter()
            .map(|id| NewEvent {
                client_event_id: Some((*id).to_owned()),
                event_type: "span".into(),
                trace_id: Some("t".into()),
                name: Some("n".into()),
                timestamp: Utc::now(),
                body: None,
                context: None,
                span: None,
            })
            .collect(),
    }
}

async fn record(
    store: &Store,
    account: AccountId,
    batch: EventBatch,
) -> Result<Recorded, RecordError<StoreError>> {
    let period = Period::containing(Utc::now());
    store.record(account, period, &free_plan(1000), batch).await
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{what}: expected Unavailable, got {result:?}"
    );
}

fn assert_record_unavailable(what: &str, result: Result<Recorded, RecordError<StoreError>>) {
    assert!(
        matches!(
            result,
            Err(RecordError::Storage(StoreError::Unavailable(_)))
        ),
        "{what}: expected Unavailable, got {result:?}"
    );
}

// ---------------------------------------------------------------- SQLite

#[tokio::test]
async fn sqlite_locked_past_the_busy_timeout_is_unavailable_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
    let options = StoreOptions {
        busy_timeout: Duration::from_millis(200),
        ..StoreOptions::default()
    };
    let store = Store::connect_with(&url, options).await.unwrap();
    store.migrate().await.unwrap();
    let account = store
        .accounts()
        .create(&"a".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    store.ready().await.unwrap();

    // Another process holds the write lock.
    let other = Database::connect(&url).await.unwrap();
    let lock = other
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Exclusive),
            ..Default::default()
        })
        .await
        .unwrap();

    assert_record_unavailable("record", record(&store, account, batch(&["a", "b"])).await);
    assert_unavailable(
        "create an account",
        store
            .accounts()
            .create(&"b".parse().unwrap(), "free", Utc::now())
            .await,
    );
    assert_unavailable("readiness", store.ready().await);
    // Reads go on (WAL).
    assert_eq!(store.events().count(account).await.unwrap(), 0);

    lock.rollback().await.unwrap();
    store.ready().await.unwrap();
    let recorded = record(&store, account, batch(&["a", "b"])).await.unwrap();
    assert_eq!(recorded.accepted, 2);
    store
        .accounts()
        .create(&"b".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_in_memory_is_ready() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
}

// ---------------------------------------------------------------- PostgreSQL

/// A scratch PostgreSQL database, dropped at the end even when the test fails.
struct Scratch(ScratchDb);

impl Scratch {
    async fn new() -> Option<Scratch> {
        ScratchDb::new(Engine::Postgres, "fault suite")
            .await
            .map(Scratch)
    }

    async fn store(&self) -> Store {
        Store::connect(self.0.url()).await.unwrap()
    }

    async fn admin(&self) -> DatabaseConnection {
        let (admin_url, _) = self.0.postgres_names().unwrap();
        Database::connect(admin_url).await.unwrap()
    }

    fn name(&self) -> &str {
        self.0.postgres_names().unwrap().1
    }
}

/// Waits (polling, bounded) until a backend of database `name` waits for a lock.
async fn until_a_backend_waits_for_a_lock(admin: &DatabaseConnection, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let sql = format!(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = '{name}' AND wait_event_type = 'Lock'"
    );
    loop {
        let row = admin
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql.clone(),
            ))
            .await
            .unwrap()
            .unwrap();
        let waiting: i64 = row.try_get("", "n").unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no backend ever waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn postgres_backends_terminated_mid_request_are_unavailable_then_recover() {
    let Some(db) = Scratch::new().await else {
        return;
    };
    let store = db.store().await;
    store.migrate().await.unwrap();
    let account = store
        .accounts()
        .create(&"a".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    store.ready().await.unwrap();

    // Hold the events table so that an ingestion is in flight, waiting, when its connection
    // is cut.
    let locker = Database::connect(db.0.url()).await.unwrap();
    let lock = locker.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let locker_pid: i32 = lock
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_backend_pid() AS pid",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "pid")
        .unwrap();
    let in_flight = {
        let store = store.clone();
        tokio::spawn(async move { record(&store, account, batch(&["a", "b"])).await })
    };
    let admin = db.admin().await;
    until_a_backend_waits_for_a_lock(&admin, db.name()).await;
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> {locker_pid} AND pid <> pg_backend_pid()",
            db.name()
        ))
        .await
        .unwrap();
    assert_record_unavailable("the ingestion in flight", in_flight.await.unwrap());
    lock.rollback().await.unwrap();
    locker.close().await.unwrap();

    // The pool replaces the dead connections by itself: no restart.
    store.ready().await.unwrap();
    let recorded = record(&store, account, batch(&["a", "b"])).await.unwrap();
    assert_eq!((recorded.accepted, recorded.used), (2, 2));
    assert_eq!(store.events().count(account).await.unwrap(), 2);

    // Every connection cut while idle: the next requests still succeed.
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name()
        ))
        .await
        .unwrap();
    let recorded = record(&store, account, batch(&["c"])).await.unwrap();
    assert_eq!(recorded.used, 3);
    store.ready().await.unwrap();
    admin.close().await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn postgres_read_only_is_not_ready_and_its_writes_are_unavailable() {
    let Some(db) = Scratch::new().await else {
        return;
    };
    let store = db.store().await;
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
    store.close().await.unwrap();

    // As on a standby: every new session is read-only.
    let admin = db.admin().await;
    let set = |value: &str| {
        format!(
            "ALTER DATABASE \"{}\" SET default_transaction_read_only = {value}",
            db.name()
        )
    };
    admin.execute_unprepared(&set("on")).await.unwrap();
    let read_only = db.store().await;
    assert_unavailable("readiness", read_only.ready().await);
    assert_unavailable(
        "create an account",
        read_only
            .accounts()
            .create(&"a".parse().unwrap(), "free", Utc::now())
            .await,
    );
    read_only.close().await.unwrap();

    admin.execute_unprepared(&set("off")).await.unwrap();
    let writable = db.store().await;
    writable.ready().await.unwrap();
    writable
        .accounts()
        .create(&"a".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap();
    writable.close().await.unwrap();
    admin.close().await.unwrap();
}

#[tokio::test]
async fn postgres_refuses_nul_characters_as_invalid_input() {
    let Some(db) = Scratch::new().await else {
        return;
    };
    let store = db.store().await;
    store.migrate().await.unwrap();
    let created = store
        .accounts()
        .create(&"a\0b".parse().unwrap(), "free", Utc::now())
        .await;
    assert!(
        matches!(created, Err(StoreError::InvalidInput(_))),
        "text: {created:?}"
    );
    let account = store
        .accounts()
        .create(&"a".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;

    let mut in_text = batch(&["x"]);
    in_text.events[0].name = Some("n\0".into());
    let mut in_json = batch(&["y"]);
    in_json.events[0].body =
        Some(serde_json::value::to_raw_value(&serde_json::json!({ "k": "v\u{0}" })).unwrap());
    for (what, batch) in [("text", in_text), ("json", in_json)] {
        let result = record(&store, account, batch).await;
        assert!(
            matches!(
                result,
                Err(RecordError::Storage(StoreError::InvalidInput(_)))
            ),
            "{what}: {result:?}"
        );
    }
    assert_eq!(store.events().count(account).await.unwrap(), 0);
    assert_eq!(
        record(&store, account, batch(&["z"])).await.unwrap().used,
        1
    );
    store.close().await.unwrap();
}
