//! The store suite, run against SQLite always and PostgreSQL when
//! `AGENTVISTA_TEST_POSTGRES_URL` is set (each test in a fresh database built by the real
//! migrations). One integration binary for the crate: the harness and shared helpers here,
//! the tests by feature in `store/<feature>.rs`, each registered on both databases by
//! `on_both!(name)` right below it (an unregistered test is dead code, which the build
//! refuses).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use agentvista_keys::password::PasswordHash;
use agentvista_keys::session::{CsrfToken, SessionToken};
use agentvista_keys::{
    AccountName, Actor, ApiKey, Email, Expiry, KeyLookup, KeyName, KeyStatus, Revoked, Role, Scope,
    Scopes,
};
use agentvista_migrations::{Migrator, MigratorTrait};
use agentvista_quota::{Period, Plan, Plans, RecordError};
use agentvista_store::testing::{Engine, Rng, ScratchDb};
use agentvista_store::{
    AccountId, EventBatch, EventCursor, FirstUser, KeyId, NewContext, NewEvent, NewKey, Store,
    StoreError, TraceCursor, TraceFilter, on_both,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use serde_json::json;

// ---------------------------------------------------------------- harness

/// A test's store on a database of its own, migrated.
struct TestDb {
    store: Store,
    url: String,
    /// Dropped with the fixture: the database goes with it.
    _scratch: ScratchDb,
}

/// The suite's runner for [`on_both!`]: `test` on a migrated store of `engine`.
async fn run(test: impl AsyncFnOnce(&TestDb), engine: Engine) {
    let Some(scratch) = ScratchDb::new(engine, "store suite").await else {
        return;
    };
    let url = scratch.url().to_owned();
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let db = TestDb {
        store,
        url,
        _scratch: scratch,
    };
    test(&db).await;
    db.store.clone().close().await.unwrap();
}

// The suite, by feature; each test is registered with `on_both!` right below it, which runs it
// through `run` on SQLite and PostgreSQL.
#[path = "store/accounting.rs"]
mod accounting;
#[path = "store/accounts.rs"]
mod accounts;
#[path = "store/audit.rs"]
mod audit;
#[path = "store/closing.rs"]
mod closing;
#[path = "store/invitations.rs"]
mod invitations;
#[path = "store/keys.rs"]
mod keys;
#[path = "store/limits.rs"]
mod limits;
#[path = "store/members.rs"]
mod members;
#[path = "store/outcomes.rs"]
mod outcomes;
#[path = "store/passwords.rs"]
mod passwords;
#[path = "store/retention.rs"]
mod retention;
#[path = "store/revocation.rs"]
mod revocation;
#[path = "store/rolls.rs"]
mod rolls;
#[path = "store/schema.rs"]
mod schema;
#[path = "store/traces.rs"]
mod traces;
#[path = "store/usage.rs"]
mod usage;

// ---------------------------------------------------------------- helpers the features share

/// A stored password hash, as storage would hand it back (the store does not check it).
fn phc(text: &str) -> PasswordHash {
    PasswordHash::from_phc(text.to_owned())
}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn event(id: Option<&str>, trace: Option<&str>, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        client_event_id: id.map(str::to_owned),
        event_type: "span".into(),
        trace_id: trace.map(str::to_owned),
        name: id.map(|i| format!("name of {i}")),
        timestamp: at,
        body: Some(fields(serde_json::json!({"input": "hello", "n": 1}))),
        context: None,
        span: None,
    }
}

/// The first `limit` traces of `account`'s list, unfiltered.
async fn first_traces(db: &TestDb, account: AccountId, limit: u64) -> agentvista_store::TracePage {
    db.store
        .events()
        .traces(account, &TraceFilter::default(), None, limit)
        .await
        .unwrap()
}

fn batch(events: Vec<NewEvent>) -> EventBatch {
    EventBatch {
        api_key_id: None,
        received_at: noon(),
        contexts: Vec::new(),
        events,
    }
}

/// Plans under which every account of these tests (all on `free`) may store `limit` events.
fn limited(limit: u64) -> Plans {
    Plans::from_iter([(
        "free".to_owned(),
        Plan {
            monthly_events: limit,
            overage_cents_per_1000_events: 0,
            retention_days: 30,
        },
    )])
}

/// Plans under which every account of these tests may store any number of events.
fn unlimited() -> Plans {
    Plans::from_iter([(
        "free".to_owned(),
        Plan {
            monthly_events: 0,
            overage_cents_per_1000_events: 1,
            retention_days: 30,
        },
    )])
}

async fn account(store: &Store, name: &str) -> AccountId {
    store
        .accounts()
        .create(&AccountName::parse(name).unwrap(), "free", noon())
        .await
        .unwrap()
        .id
}

fn key_name(name: &str) -> KeyName {
    KeyName::parse(name).unwrap()
}

fn write_key(name: &KeyName) -> NewKey<'_> {
    NewKey {
        name,
        scopes: Scopes::only(Scope::Write),
        expiry: Expiry::NEVER,
        created_by: None,
        rate_limit: None,
    }
}

/// A sweep of `batch` rows a transaction, without pauses.
/// A person with `email`, a member of `account` with `role`.
async fn person(
    db: &TestDb,
    account: AccountId,
    email: &str,
    role: Role,
) -> agentvista_store::User {
    db.store
        .users()
        .create(
            account,
            role,
            &Email::parse(email).unwrap(),
            &phc("h"),
            noon(),
        )
        .await
        .unwrap()
}

/// A session of `user` in the account their login starts in, opened at noon.
async fn open_session(
    store: &Store,
    user: &agentvista_store::User,
    token_hash: &agentvista_keys::session::SessionTokenHash,
    csrf_token: &CsrfToken,
    expires_at: DateTime<Utc>,
) -> agentvista_store::Session {
    let account = store
        .memberships()
        .starting_account(user.id)
        .await
        .unwrap()
        .map(|m| m.account_id);
    let new = agentvista_store::NewSession {
        token_hash,
        csrf_token,
        account,
        origin: &agentvista_keys::Origin::default(),
        now: noon(),
        expires_at,
    };
    store.sessions().create(user, new).await.unwrap()
}

fn sweep(batch: u64) -> agentvista_store::Sweep {
    agentvista_store::Sweep {
        batch,
        pause: std::time::Duration::ZERO,
        ..Default::default()
    }
}

fn grace(grace: std::time::Duration) -> agentvista_store::RollTerms {
    agentvista_store::RollTerms {
        grace,
        ..Default::default()
    }
}

/// A JSON object as the decoder hands it over: its text, keys sorted.
fn fields(value: serde_json::Value) -> Box<serde_json::value::RawValue> {
    assert!(value.is_object());
    serde_json::value::to_raw_value(&value).unwrap()
}

fn in_context(id: &str, trace: &str, context: Option<usize>, body: serde_json::Value) -> NewEvent {
    NewEvent {
        body: Some(fields(body)),
        context,
        ..event(Some(id), Some(trace), noon())
    }
}

/// `SELECT COUNT(*) AS n …` on a connection of its own.
async fn count_rows(db: &TestDb, sql: &str) -> i64 {
    let conn = Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .unwrap();
    let n = row.try_get("", "n").unwrap();
    conn.close().await.unwrap();
    n
}

fn at(id: &str, seconds: i64, name: Option<&str>) -> NewEvent {
    NewEvent {
        name: name.map(str::to_owned),
        ..event(Some(id), Some("t"), noon() + TimeDelta::seconds(seconds))
    }
}

fn pro_and_small() -> Plans {
    Plans::from_iter([
        (
            // 1¢ per event beyond the first 10.
            "pro".to_owned(),
            Plan {
                monthly_events: 10,
                overage_cents_per_1000_events: 1_000,
                retention_days: 30,
            },
        ),
        (
            "small".to_owned(),
            Plan {
                monthly_events: 5,
                overage_cents_per_1000_events: 0,
                retention_days: 30,
            },
        ),
    ])
}

/// Whether, within 20 s, some transaction of this PostgreSQL database is seen waiting for a
/// lock: a test's sign that another transaction has reached the lock it holds.
async fn a_transaction_waits_on_a_lock(db: &TestDb) -> bool {
    let probe = Database::connect(&db.url).await.unwrap();
    let waiting = "SELECT COUNT(*) AS n FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let waited = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let row = probe
                .query_one_raw(Statement::from_string(
                    probe.get_database_backend(),
                    waiting,
                ))
                .await
                .unwrap()
                .unwrap();
            if row.try_get::<i64>("", "n").unwrap() > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    probe.close().await.unwrap();
    waited.is_ok()
}

/// A transaction of its own on a connection of its own; on SQLite it holds the write lock.
async fn locking_transaction(conn: &DatabaseConnection) -> sea_orm::DatabaseTransaction {
    conn.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
    .unwrap()
}
