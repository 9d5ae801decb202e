//! The store suite, run against SQLite always and PostgreSQL when
//! `AGENTVISTA_TEST_POSTGRES_URL` is set (each test in a fresh database built by the real
//! migrations). One integration binary for the crate.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use agentvista_keys::password::PasswordHash;
use agentvista_keys::session::{CsrfToken, SessionToken};
use agentvista_keys::{
    AccountName, Actor, ApiKey, Email, Expiry, KeyLookup, KeyName, KeyStatus, Revoked, Scope,
    Scopes,
};
use agentvista_migrations::{Migrator, MigratorTrait};
use agentvista_quota::{Period, Plan, Plans, RecordError};
use agentvista_store::{
    AccountId, EventBatch, EventCursor, FirstUser, KeyId, NewContext, NewEvent, NewKey, Store,
    StoreError, TraceCursor, testing,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use serde_json::json;

#[path = "store/limits.rs"]
mod limits;
use limits::{
    a_trace_page_is_planned_from_sizes_and_reads_each_context_once,
    concurrent_creates_never_pass_max_active_keys,
};
#[path = "store/revocation.rs"]
mod revocation;
use revocation::{
    a_batch_of_a_key_that_stopped_working_stores_nothing,
    a_batch_racing_its_keys_revocation_waits_and_is_refused,
    a_report_of_a_revoked_key_waits_for_the_barrier, a_report_of_many_keys_waits_for_one_barrier,
    an_account_with_keys_cannot_be_deleted, lease_settings_cannot_break_the_barrier,
};
#[path = "store/rolls.rs"]
mod rolls;
use rolls::{
    a_revoked_key_has_no_successor_and_a_successor_outlives_a_revocation,
    every_roll_waits_for_the_barrier, racing_rolls_make_one_successor,
};
#[path = "store/passwords.rs"]
mod passwords;
use passwords::a_password_change_keeps_the_asking_session_and_applies_once;
#[path = "store/retention.rs"]
mod retention;
use retention::{
    a_marked_context_an_ingestion_reuses_is_kept, audit_entries_are_kept_for_their_own_retention,
    one_replica_sweeps_at_a_time, unreferenced_contexts_go_in_two_phases_children_first,
};

// ---------------------------------------------------------------- harness

struct TestDb {
    store: Store,
    url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

async fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    TestDb {
        store,
        url,
        _dir: Some(dir),
        postgres: None,
    }
}

async fn postgres_db() -> Option<TestDb> {
    let admin_url = testing::postgres_admin_url("store suite")?;
    let (url, name) = testing::create_database(&admin_url, "agentvista_test")
        .await
        .unwrap();
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    Some(TestDb {
        store,
        url,
        _dir: None,
        postgres: Some((admin_url, name)),
    })
}

impl TestDb {
    async fn finish(mut self) {
        self.store.clone().close().await.unwrap();
        if let Some((admin_url, name)) = self.postgres.take() {
            drop_database(&admin_url, &name).await;
        }
    }
}

impl Drop for TestDb {
    /// A failed test never reaches `finish`: drop its database all the same, from a thread of
    /// its own because the test's runtime is unwinding.
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(drop_database(&admin_url, &name));
            })
            .join();
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    testing::drop_database(admin_url, name).await.unwrap();
}

/// Runs `$test(&TestDb)` as `$test::sqlite` and `$test::postgres`.
macro_rules! on_both {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = super::sqlite_db().await;
                super::$test(&db).await;
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = super::postgres_db().await else { return };
                super::$test(&db).await;
                db.finish().await;
            }
        }
    )*};
}

on_both!(
    concurrent_creates_never_pass_max_active_keys,
    a_trace_page_is_planned_from_sizes_and_reads_each_context_once,
    migrations_run_down_and_up_again,
    accounts_keep_plan_and_spend_cap,
    user_emails_are_unique_whatever_their_case,
    sessions_end_at_expiry_and_logout,
    only_the_hash_of_a_key_is_stored,
    keys_are_listed_newest_first_and_scoped_to_their_account,
    revoking_twice_is_not_an_error_and_other_accounts_get_not_found,
    last_used_is_written_at_most_once_a_minute,
    recording_counts_new_events_and_skips_duplicates,
    exactly_the_limit_fits_and_one_more_stores_nothing,
    unlimited_and_capped_allowances_are_honoured,
    a_new_month_starts_from_zero,
    traces_page_newest_first_with_a_cursor,
    concurrent_recording_never_passes_the_allowance,
    concurrent_duplicates_are_stored_and_counted_once,
    only_one_of_racing_first_runs_creates_a_user,
    contexts_are_stored_once_per_account_and_merged_on_read,
    a_batch_pointing_past_its_contexts_is_refused,
    trace_summaries_count_only_new_events_and_keep_the_earliest_name,
    summaries_are_the_same_whether_a_batch_is_one_statement_or_several,
    events_of_a_trace_page_with_a_cursor,
    the_migration_summarises_existing_traces,
    an_unknown_plan_stores_nothing,
    accounting_waits_for_an_uncommitted_plan_change,
    lowering_the_spend_cap_binds_accounting_in_flight,
    remembered_terms_are_confirmed_by_the_count,
    a_refused_request_leaves_no_context_id_to_remember,
    rolling_a_key_hands_its_grant_to_a_new_one_and_expires_the_old,
    a_rate_limit_is_stored_kept_by_a_roll_and_changed_by_one,
    usage_per_day_and_key_adds_up_to_the_months_count,
    events_past_retention_are_deleted_in_batches_and_their_traces_follow,
    only_an_active_key_of_the_account_rolls,
    the_audit_log_pages_an_accounts_entries_newest_first,
    unreferenced_contexts_go_in_two_phases_children_first,
    a_marked_context_an_ingestion_reuses_is_kept,
    audit_entries_are_kept_for_their_own_retention,
    one_replica_sweeps_at_a_time,
    a_report_of_a_revoked_key_waits_for_the_barrier,
    a_report_of_many_keys_waits_for_one_barrier,
    a_batch_of_a_key_that_stopped_working_stores_nothing,
    a_batch_racing_its_keys_revocation_waits_and_is_refused,
    racing_rolls_make_one_successor,
    a_revoked_key_has_no_successor_and_a_successor_outlives_a_revocation,
    every_roll_waits_for_the_barrier,
    an_account_with_keys_cannot_be_deleted,
    lease_settings_cannot_break_the_barrier,
    a_password_change_keeps_the_asking_session_and_applies_once,
);

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
    }
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

// ---------------------------------------------------------------- schema

async fn migrations_run_down_and_up_again(db: &TestDb) {
    let conn = Database::connect(&db.url).await.unwrap();
    Migrator::down(&conn, None).await.unwrap();
    assert!(
        Migrator::get_applied_migrations(&conn)
            .await
            .unwrap()
            .is_empty()
    );
    Migrator::up(&conn, None).await.unwrap();
    assert_eq!(
        Migrator::get_applied_migrations(&conn).await.unwrap().len(),
        Migrator::migrations().len()
    );
    conn.close().await.unwrap();
    // The store works on the rebuilt schema.
    let id = account(&db.store, "after-rebuild").await;
    assert_eq!(
        db.store.accounts().get(id).await.unwrap().name,
        "after-rebuild"
    );
}

// ---------------------------------------------------------------- accounts, users, sessions

async fn accounts_keep_plan_and_spend_cap(db: &TestDb) {
    let accounts = db.store.accounts();
    let id = account(&db.store, "acme").await;
    assert_eq!(accounts.get(id).await.unwrap().plan, "free");
    assert_eq!(accounts.set_plan(id, "pro").await.unwrap().plan, "pro");
    let capped = accounts.set_spend_cap(id, Some(1_234)).await.unwrap();
    assert_eq!(capped.spend_cap_cents, Some(1_234));
    assert_eq!(accounts.get(id).await.unwrap().spend_cap_cents, Some(1_234));
    assert_eq!(
        accounts
            .set_spend_cap(id, None)
            .await
            .unwrap()
            .spend_cap_cents,
        None
    );
    let named = |name: &str| AccountName::parse(name).unwrap();
    assert_eq!(
        accounts
            .find_by_name(&named("acme"))
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
    assert!(
        accounts
            .find_by_name(&named("nobody"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        accounts.get(AccountId(id.0 + 100)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        accounts.set_plan(AccountId(id.0 + 100), "pro").await,
        Err(StoreError::NotFound)
    ));
}

async fn user_emails_are_unique_whatever_their_case(db: &TestDb) {
    let users = db.store.users();
    let email = |text: &str| Email::parse(text).unwrap();
    assert_eq!(users.count().await.unwrap(), 0);
    let acme = account(&db.store, "acme").await;
    let ada = users
        .create(
            acme,
            &email("Ada@Example.com"),
            &phc("$argon2id$fake"),
            noon(),
        )
        .await
        .unwrap();
    assert_eq!(ada.email, "ada@example.com");
    assert!(matches!(
        users
            .create(acme, &email(" ADA@example.COM"), &phc("x"), noon())
            .await,
        Err(StoreError::EmailTaken)
    ));
    let found = users
        .find_by_email(&email("ADA@EXAMPLE.COM"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user, ada);
    assert_eq!(found.password_hash.as_str(), "$argon2id$fake");
    assert!(!format!("{found:?}").contains("argon2id"));
    assert!(
        users
            .find_by_email(&email("bob@example.com"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(users.count().await.unwrap(), 1);
    assert_eq!(users.get(ada.id).await.unwrap(), ada);
}

async fn sessions_end_at_expiry_and_logout(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let ada = db
        .store
        .users()
        .create(
            acme,
            &Email::parse("ada@example.com").unwrap(),
            &phc("h"),
            noon(),
        )
        .await
        .unwrap();
    let sessions = db.store.sessions();
    let hash = |token: &str| SessionToken::presented(token).hash();
    let (token, other) = (hash("one"), hash("two"));
    let expires = noon() + TimeDelta::hours(12);
    let csrf = CsrfToken::from_stored("csrf-1".to_owned());
    let created = sessions
        .create(&ada, &token, &csrf, noon(), expires)
        .await
        .unwrap();
    assert!(!format!("{created:?}").contains("csrf-1"), "{created:?}");
    sessions
        .create(
            &ada,
            &other,
            &CsrfToken::from_stored("csrf-2".to_owned()),
            noon(),
            noon() + TimeDelta::hours(1),
        )
        .await
        .unwrap();

    let found = sessions.find(&token, noon()).await.unwrap().unwrap();
    assert_eq!(
        (found.user.id, found.csrf_token.expose_secret()),
        (ada.id, "csrf-1")
    );
    assert!(
        sessions.find(&token, expires).await.unwrap().is_none(),
        "expired at its expiry"
    );
    assert!(
        sessions
            .find(&hash("three"), noon())
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(
        sessions
            .delete_expired(noon() + TimeDelta::hours(2))
            .await
            .unwrap(),
        1
    );
    assert!(sessions.find(&other, noon()).await.unwrap().is_none());
    sessions.delete(&token).await.unwrap();
    assert!(sessions.find(&token, noon()).await.unwrap().is_none());
    sessions.delete(&token).await.unwrap();
}

// ---------------------------------------------------------------- keys

async fn only_the_hash_of_a_key_is_stored(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let (key, record) = db
        .store
        .keys()
        .create(acme, write_key(&key_name("ci")), noon())
        .await
        .unwrap();
    assert_eq!(record.prefix, key.prefix());
    assert_eq!(record.status(noon()), KeyStatus::Active);
    assert_eq!(
        db.store.keys().find_by_hash(&key.hash()).await.unwrap(),
        Some(record)
    );

    let other = ApiKey::generate().unwrap();
    assert_eq!(
        db.store.keys().find_by_hash(&other.hash()).await.unwrap(),
        None
    );

    // Nothing in the row is the key or its secret part.
    let conn = Database::connect(&db.url).await.unwrap();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT name, prefix, key_hash, scopes FROM api_keys",
        ))
        .await
        .unwrap();
    let secret = &key.expose_secret()[12..];
    for row in rows {
        for column in ["name", "prefix", "key_hash", "scopes"] {
            let value: String = row.try_get("", column).unwrap();
            assert!(!value.contains(secret), "{column} holds the secret");
        }
        assert_eq!(
            row.try_get::<String>("", "key_hash").unwrap(),
            key.hash().to_hex()
        );
    }
    conn.close().await.unwrap();
}

async fn keys_are_listed_newest_first_and_scoped_to_their_account(db: &TestDb) {
    let keys = db.store.keys();
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let in_a_week = Expiry::for_new_key(Some(noon() + TimeDelta::days(7)), noon()).unwrap();
    let (_, first) = keys
        .create(acme, write_key(&key_name("first")), noon())
        .await
        .unwrap();
    let (_, second) = keys
        .create(
            acme,
            NewKey {
                name: &key_name("second"),
                scopes: "read,admin".parse().unwrap(),
                expiry: in_a_week,
                created_by: None,
                rate_limit: None,
            },
            noon(),
        )
        .await
        .unwrap();
    keys.create(globex, write_key(&key_name("theirs")), noon())
        .await
        .unwrap();

    let listed = keys.list(acme).await.unwrap();
    assert_eq!(listed, vec![second.clone(), first.clone()]);
    assert_eq!(listed[0].scopes, "admin,read".parse().unwrap());
    assert_eq!(listed[0].expiry, in_a_week);
    assert_eq!(
        listed[0].status(noon() + TimeDelta::days(7)),
        KeyStatus::Expired
    );
    assert_eq!(
        keys.find_by_prefix(acme, &first.prefix).await.unwrap(),
        first
    );
    assert!(matches!(
        keys.find_by_prefix(globex, &first.prefix).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        keys.get(globex, first.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn revoking_twice_is_not_an_error_and_other_accounts_get_not_found(db: &TestDb) {
    let keys = db.store.keys();
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let (key, record) = keys
        .create(acme, write_key(&key_name("ci")), noon())
        .await
        .unwrap();

    // Revocation goes through the lookup port, the only way to change what verification finds.
    let port: &dyn KeyLookup = &db.store;
    assert_eq!(
        port.revoke(globex, record.id, Actor::Cli, noon())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        keys.find_by_hash(&key.hash())
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );

    let later = noon() + TimeDelta::minutes(5);
    assert_eq!(
        port.revoke(acme, record.id, Actor::Cli, noon())
            .await
            .unwrap(),
        Some(Revoked::Now)
    );
    assert_eq!(
        port.revoke(acme, record.id, Actor::Cli, later)
            .await
            .unwrap(),
        Some(Revoked::Already)
    );
    let revoked = keys.find_by_hash(&key.hash()).await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(noon()),
        "the first revocation time stays"
    );
    assert_eq!(revoked.status(later), KeyStatus::Revoked);
}

async fn last_used_is_written_at_most_once_a_minute(db: &TestDb) {
    let keys = db.store.keys();
    let acme = account(&db.store, "acme").await;
    let (key, record) = keys
        .create(acme, write_key(&key_name("ci")), noon())
        .await
        .unwrap();
    assert!(keys.touch_last_used(record.id, noon()).await.unwrap());
    assert!(
        !keys
            .touch_last_used(record.id, noon() + TimeDelta::seconds(59))
            .await
            .unwrap()
    );
    let at = noon() + TimeDelta::seconds(60);
    assert!(keys.touch_last_used(record.id, at).await.unwrap());
    assert_eq!(
        keys.find_by_hash(&key.hash())
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(at)
    );
}

// ---------------------------------------------------------------- accounting

async fn recording_counts_new_events_and_skips_duplicates(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let period = Period::containing(noon());
    let allowance = &limited(100);
    let first = batch(vec![
        event(Some("a"), Some("t1"), noon()),
        event(Some("b"), Some("t1"), noon()),
        event(Some("a"), Some("t1"), noon()),
        event(None, None, noon()),
    ]);
    let recorded = db
        .store
        .record(acme, period, allowance, first)
        .await
        .unwrap();
    assert_eq!(
        (recorded.accepted, recorded.duplicates, recorded.used),
        (3, 1, 3)
    );

    let again = batch(vec![
        event(Some("b"), Some("t1"), noon()),
        event(Some("c"), None, noon()),
    ]);
    let recorded = db
        .store
        .record(acme, period, allowance, again)
        .await
        .unwrap();
    assert_eq!(
        (recorded.accepted, recorded.duplicates, recorded.used),
        (1, 1, 4)
    );

    // Ids are per account: another account may use the same ones.
    let globex = account(&db.store, "globex").await;
    let theirs = batch(vec![event(Some("a"), None, noon())]);
    assert_eq!(
        db.store
            .record(globex, period, allowance, theirs)
            .await
            .unwrap()
            .accepted,
        1
    );

    assert_eq!(db.store.used(acme, period).await.unwrap(), 4);
    assert_eq!(db.store.events().count(acme).await.unwrap(), 4);
    assert_eq!(db.store.used(globex, period).await.unwrap(), 1);
}

async fn exactly_the_limit_fits_and_one_more_stores_nothing(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let period = Period::containing(noon());
    let allowance = &limited(5);
    let four = (0..4)
        .map(|i| event(Some(&format!("e{i}")), None, noon()))
        .collect();
    db.store
        .record(acme, period, allowance, batch(four))
        .await
        .unwrap();

    let two = batch(vec![
        event(Some("x"), None, noon()),
        event(Some("y"), None, noon()),
    ]);
    let Err(RecordError::Exceeded(refused)) = db.store.record(acme, period, allowance, two).await
    else {
        panic!("two more events than fit were accepted");
    };
    assert_eq!((refused.limit, refused.used), (5, 4));
    assert_eq!(
        refused.resets_at,
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        db.store.events().count(acme).await.unwrap(),
        4,
        "a refused batch stores nothing"
    );

    // A duplicate of a stored event costs nothing, even at the limit.
    let one = batch(vec![
        event(Some("x"), None, noon()),
        event(Some("e0"), None, noon()),
    ]);
    let recorded = db.store.record(acme, period, allowance, one).await.unwrap();
    assert_eq!(
        (recorded.accepted, recorded.duplicates, recorded.used),
        (1, 1, 5)
    );
    let dup = batch(vec![event(Some("e1"), None, noon())]);
    assert_eq!(
        db.store
            .record(acme, period, allowance, dup)
            .await
            .unwrap()
            .duplicates,
        1
    );
    let more = batch(vec![event(None, None, noon())]);
    assert!(matches!(
        db.store.record(acme, period, allowance, more).await,
        Err(RecordError::Exceeded(_))
    ));
    assert_eq!(db.store.used(acme, period).await.unwrap(), 5);
    assert_eq!(db.store.events().count(acme).await.unwrap(), 5);
}

async fn unlimited_and_capped_allowances_are_honoured(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let period = Period::containing(noon());
    let many: Vec<_> = (0..1_200)
        .map(|i| event(Some(&format!("u{i}")), None, noon()))
        .collect();
    let recorded = db
        .store
        .record(acme, period, &unlimited(), batch(many))
        .await
        .unwrap();
    assert_eq!(
        recorded.accepted, 1_200,
        "more rows than one INSERT statement holds"
    );
    let over = batch(vec![event(None, None, noon()); 2]);
    assert!(
        db.store
            .record(acme, period, &limited(1_201), over)
            .await
            .is_err()
    );
    let fits = batch(vec![event(None, None, noon())]);
    assert_eq!(
        db.store
            .record(acme, period, &limited(1_201), fits)
            .await
            .unwrap()
            .used,
        1_201
    );
}

async fn a_new_month_starts_from_zero(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let november = Period::containing(noon());
    let december = november.next();
    let one = || batch(vec![event(None, None, noon())]);
    db.store
        .record(acme, november, &limited(1), one())
        .await
        .unwrap();
    assert!(
        db.store
            .record(acme, november, &limited(1), one())
            .await
            .is_err()
    );
    assert_eq!(
        db.store
            .record(acme, december, &limited(1), one())
            .await
            .unwrap()
            .used,
        1
    );
    assert_eq!(db.store.used(acme, november).await.unwrap(), 1);
    assert_eq!(db.store.used(acme, december.next()).await.unwrap(), 0);
}

// ---------------------------------------------------------------- reads

async fn traces_page_newest_first_with_a_cursor(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let period = Period::containing(noon());
    let mut events = Vec::new();
    for t in 0..5i64 {
        let trace = format!("trace-{t}");
        for e in 0..=t {
            let at = noon() + TimeDelta::minutes(t) + TimeDelta::seconds(e);
            events.push(event(Some(&format!("{trace}-{e}")), Some(&trace), at));
        }
    }
    events.push(event(Some("orphan"), None, noon()));
    db.store
        .record(acme, period, &unlimited(), batch(events))
        .await
        .unwrap();
    let theirs = batch(vec![event(Some("x"), Some("their-trace"), noon())]);
    db.store
        .record(globex, period, &unlimited(), theirs)
        .await
        .unwrap();

    let first = db.store.events().traces(acme, None, 2).await.unwrap();
    let ids: Vec<_> = first.traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(ids, ["trace-4", "trace-3"]);
    assert_eq!(first.traces[0].event_count, 5);
    assert_eq!(first.traces[0].started_at, noon() + TimeDelta::minutes(4));
    assert_eq!(first.traces[0].name.as_deref(), Some("name of trace-4-0"));

    let cursor = TraceCursor::decode(&first.next_cursor.unwrap().encode()).unwrap();
    let second = db
        .store
        .events()
        .traces(acme, Some(&cursor), 2)
        .await
        .unwrap();
    let ids: Vec<_> = second.traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(ids, ["trace-2", "trace-1"]);
    let third = db
        .store
        .events()
        .traces(acme, second.next_cursor.as_ref(), 2)
        .await
        .unwrap();
    let ids: Vec<_> = third.traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(ids, ["trace-0"]);
    assert!(third.next_cursor.is_none());

    let events = db
        .store
        .events()
        .of_trace(acme, "trace-3", None, 100)
        .await
        .unwrap()
        .events;
    assert_eq!(events.len(), 4);
    assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert_eq!(
        events[0].body,
        Some(serde_json::json!({"input": "hello", "n": 1}))
    );
    assert!(
        db.store
            .events()
            .of_trace(acme, "their-trace", None, 100)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

// ---------------------------------------------------------------- concurrency

/// A small xorshift generator: reproducible from the printed seed, no extra dependency.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = getrandom::u64().unwrap() | 1;
        eprintln!("rng seed {seed:#x}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn concurrent_recording_never_passes_the_allowance(db: &TestDb) {
    const TASKS: u64 = 16;
    const CALLS: u64 = 200;
    const LIMIT: u64 = 1_000;
    let acme = account(&db.store, "acme").await;
    let period = Period::containing(noon());
    let mut seeds = Rng::seeded();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = db.store.clone();
            let mut rng = Rng(seeds.below(u64::MAX) | 1);
            tokio::spawn(async move {
                let (mut accepted, mut refused) = (0u64, 0u64);
                for _ in 0..CALLS {
                    let size = 1 + rng.below(10);
                    let events = (0..size).map(|_| event(None, None, noon())).collect();
                    match store
                        .record(acme, period, &limited(LIMIT), batch(events))
                        .await
                    {
                        Ok(recorded) => {
                            assert_eq!(recorded.accepted, size);
                            assert!(recorded.used <= LIMIT);
                            accepted += size;
                        }
                        Err(RecordError::Exceeded(e)) => {
                            assert!(e.used + size > LIMIT, "refused although it fitted: {e:?}");
                            refused += 1;
                        }
                        Err(e) => panic!("storage failed: {e:?}"),
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    let (mut accepted, mut refused) = (0, 0);
    for handle in handles {
        let (a, r) = handle.await.unwrap();
        accepted += a;
        refused += r;
    }
    let used = db.store.used(acme, period).await.unwrap();
    let stored = db.store.events().count(acme).await.unwrap();
    assert!(used <= LIMIT, "used {used} > {LIMIT}");
    assert_eq!(used, stored, "the count equals the rows stored");
    assert_eq!(used, accepted, "refused calls stored nothing");
    assert!(
        refused > 0,
        "the allowance was never reached; the test proves nothing"
    );
    // Random sizes of 1–10 leave at most 9 events unused once every task is refused.
    assert!(used > LIMIT - 10, "used {used}");
}

async fn concurrent_duplicates_are_stored_and_counted_once(db: &TestDb) {
    const TASKS: usize = 16;
    const IDS: usize = 60;
    let acme = account(&db.store, "acme").await;
    let period = Period::containing(noon());
    let store = Arc::new(db.store.clone());
    let mut seeds = Rng::seeded();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = Arc::clone(&store);
            let mut rng = Rng(seeds.below(u64::MAX) | 1);
            tokio::spawn(async move {
                // Every task sends every id once, in its own random order and batch sizes.
                let mut ids: Vec<usize> = (0..IDS).collect();
                for i in (1..ids.len()).rev() {
                    ids.swap(i, usize::try_from(rng.below(i as u64 + 1)).unwrap());
                }
                let mut accepted = 0;
                for chunk in ids.chunks(1 + usize::try_from(rng.below(7)).unwrap()) {
                    let events = chunk
                        .iter()
                        .map(|i| event(Some(&format!("dup-{i}")), Some("t"), noon()))
                        .collect();
                    let recorded = store
                        .record(acme, period, &unlimited(), batch(events))
                        .await
                        .unwrap();
                    assert_eq!(recorded.accepted + recorded.duplicates, chunk.len() as u64);
                    accepted += recorded.accepted;
                }
                accepted
            })
        })
        .collect();
    let mut accepted = 0;
    for handle in handles {
        accepted += handle.await.unwrap();
    }
    assert_eq!(accepted, IDS as u64);
    assert_eq!(db.store.used(acme, period).await.unwrap(), IDS as u64);
    assert_eq!(db.store.events().count(acme).await.unwrap(), IDS as u64);
}

async fn only_one_of_racing_first_runs_creates_a_user(db: &TestDb) {
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(async move {
                let email = Email::parse(&format!("admin{i}@example.com")).unwrap();
                let name = AccountName::parse(&format!("account {i}")).unwrap();
                let first = FirstUser {
                    account_name: &name,
                    plan: "free",
                    email: &email,
                    password_hash: &phc("h"),
                };
                store.create_first_user(first, noon()).await
            })
        })
        .collect();
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::AlreadySetUp) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(db.store.users().count().await.unwrap(), 1);
}

// ---------------------------------------------------------------- contexts and summaries

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

async fn contexts_are_stored_once_per_account_and_merged_on_read(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let period = Period::containing(noon());
    let resource = json!({"resource": {"service.name": "shop", "pad": "x".repeat(1_000)},
                          "scope": {"name": "sdk"}});
    let contexts = |resource: &serde_json::Value| {
        vec![
            NewContext {
                parent: None,
                fields: fields(resource.clone()),
            },
            NewContext {
                parent: Some(0),
                fields: fields(json!({"unit": "ms", "description": "latency"})),
            },
            // The same as the first, within one request: one row all the same.
            NewContext {
                parent: None,
                fields: fields(resource.clone()),
            },
        ]
    };
    let first = EventBatch {
        contexts: contexts(&resource),
        ..batch(vec![
            in_context("e1", "t", Some(0), json!({"span_id": "a"})),
            in_context("e2", "t", Some(1), json!({"value": 3, "scope": "own"})),
            in_context("e3", "t", None, json!({"plain": true})),
            in_context("e4", "t", Some(2), json!({})),
        ])
    };
    db.store
        .record(acme, period, &unlimited(), first)
        .await
        .unwrap();
    // Another request from the same service reuses both rows.
    let second = EventBatch {
        contexts: contexts(&resource),
        ..batch(vec![in_context("e5", "t", Some(1), json!({"value": 4}))])
    };
    db.store
        .record(acme, period, &unlimited(), second)
        .await
        .unwrap();
    assert_eq!(
        count_rows(db, "SELECT COUNT(*) AS n FROM event_contexts").await,
        2
    );
    // Another service: a new resource, and so a new unit context under it (same fields,
    // other parent). Another account: rows of its own.
    let other = json!({"resource": {"service.name": "billing"}, "scope": {"name": "sdk"}});
    let third = EventBatch {
        contexts: contexts(&other),
        ..batch(vec![in_context("e6", "t", Some(1), json!({"value": 5}))])
    };
    db.store
        .record(acme, period, &unlimited(), third)
        .await
        .unwrap();
    let theirs = EventBatch {
        contexts: contexts(&resource),
        ..batch(vec![in_context("e1", "t", Some(1), json!({"value": 6}))])
    };
    db.store
        .record(globex, period, &unlimited(), theirs)
        .await
        .unwrap();
    assert_eq!(
        count_rows(db, "SELECT COUNT(*) AS n FROM event_contexts").await,
        6
    );
    // The events table holds no copy of a context.
    let pad = "x".repeat(1_000);
    assert_eq!(
        count_rows(
            db,
            &format!("SELECT COUNT(*) AS n FROM events WHERE CAST(body AS TEXT) LIKE '%{pad}%'")
        )
        .await,
        0
    );

    let page = db
        .store
        .events()
        .of_trace(acme, "t", None, 100)
        .await
        .unwrap();
    let bodies: Vec<_> = page
        .events
        .iter()
        .map(|e| {
            (
                e.client_event_id.as_deref().unwrap(),
                e.body.clone().unwrap(),
            )
        })
        .collect();
    let service = resource["resource"].clone();
    let billing = other["resource"].clone();
    assert_eq!(
        bodies,
        [
            (
                "e1",
                json!({"span_id": "a", "resource": service, "scope": {"name": "sdk"}})
            ),
            (
                "e2",
                json!({"value": 3, "scope": "own", "unit": "ms", "description": "latency",
                       "resource": service})
            ),
            ("e3", json!({"plain": true})),
            ("e4", json!({"resource": service, "scope": {"name": "sdk"}})),
            (
                "e5",
                json!({"value": 4, "unit": "ms", "description": "latency",
                       "resource": service, "scope": {"name": "sdk"}})
            ),
            (
                "e6",
                json!({"value": 5, "unit": "ms", "description": "latency",
                       "resource": billing, "scope": {"name": "sdk"}})
            ),
        ]
    );
}

async fn a_batch_pointing_past_its_contexts_is_refused(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let period = Period::containing(noon());
    let dangling = EventBatch {
        contexts: vec![NewContext {
            parent: None,
            fields: fields(json!({"a": 1})),
        }],
        ..batch(vec![in_context("e1", "t", Some(1), json!({}))])
    };
    assert!(matches!(
        db.store.record(acme, period, &unlimited(), dangling).await,
        Err(RecordError::Storage(_))
    ));
    let forward = EventBatch {
        contexts: vec![NewContext {
            parent: Some(0),
            fields: fields(json!({"a": 1})),
        }],
        ..batch(vec![in_context("e1", "t", Some(0), json!({}))])
    };
    assert!(matches!(
        db.store.record(acme, period, &unlimited(), forward).await,
        Err(RecordError::Storage(_))
    ));
    assert_eq!(db.store.events().count(acme).await.unwrap(), 0);
}

fn at(id: &str, seconds: i64, name: Option<&str>) -> NewEvent {
    NewEvent {
        name: name.map(str::to_owned),
        ..event(Some(id), Some("t"), noon() + TimeDelta::seconds(seconds))
    }
}

async fn trace_summaries_count_only_new_events_and_keep_the_earliest_name(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let period = Period::containing(noon());
    let plans = limited(6);
    let record = |events| db.store.record(acme, period, &plans, batch(events));
    record(vec![at("x1", 10, Some("ten")), at("x2", 20, None)])
        .await
        .unwrap();
    let recorded = record(vec![
        // A duplicate, earlier and named: skipped, so neither counted nor naming the trace.
        at("x1", -100, Some("duplicate")),
        at("x3", 5, None),
        at("x4", 7, Some("seven")),
        at("x5", 30, Some("thirty")),
    ])
    .await
    .unwrap();
    assert_eq!((recorded.accepted, recorded.duplicates), (3, 1));
    // Refused for the quota: leaves the summary alone.
    assert!(matches!(
        record(vec![
            at("y1", -3_600, Some("refused")),
            at("y2", 3_600, None)
        ])
        .await,
        Err(RecordError::Exceeded(_))
    ));
    // Named at the same instant as the current name, but stored later: the name stays.
    record(vec![at("x6", 7, Some("tie"))]).await.unwrap();

    let page = db.store.events().traces(acme, None, 10).await.unwrap();
    assert_eq!(page.traces.len(), 1);
    let trace = &page.traces[0];
    assert_eq!(trace.trace_id, "t");
    assert_eq!(trace.name.as_deref(), Some("seven"));
    assert_eq!(trace.started_at, noon() + TimeDelta::seconds(5));
    assert_eq!(trace.last_at, noon() + TimeDelta::seconds(30));
    assert_eq!(trace.event_count, 6);
}

/// A batch of up to 500 events is written in one statement (on PostgreSQL with its summaries),
/// a larger one in several: both must summarise alike. Three traces whose earliest events come
/// last (in the last statement of the large batch), and a duplicate that must not count.
async fn summaries_are_the_same_whether_a_batch_is_one_statement_or_several(db: &TestDb) {
    let plans = unlimited();
    let period = Period::containing(noon());
    let events = |n: i64| -> Vec<NewEvent> {
        (0..n)
            .map(|i| NewEvent {
                name: (i % 7 == 0).then(|| format!("n{i}")),
                ..event(
                    Some(&format!("e{i}")),
                    Some(&format!("t{}", i % 3)),
                    noon() - TimeDelta::seconds(i),
                )
            })
            .collect()
    };
    for (name, n) in [("small", 300), ("large", 1_300)] {
        let acme = account(&db.store, name).await;
        let mut batch_events = events(n);
        // One event again, under its own id: a duplicate.
        batch_events.push(batch_events[5].clone());
        let recorded = db
            .store
            .record(acme, period, &plans, batch(batch_events))
            .await
            .unwrap();
        assert_eq!((recorded.accepted, recorded.duplicates), (n as u64, 1));
        // Again: all duplicates, nothing changes.
        db.store
            .record(acme, period, &plans, batch(events(n)))
            .await
            .unwrap();
        let page = db.store.events().traces(acme, None, 10).await.unwrap();
        let mut got: Vec<_> = page
            .traces
            .into_iter()
            .map(|t| (t.trace_id, t.name, t.started_at, t.last_at, t.event_count))
            .collect();
        got.sort();
        // What the events say, computed here.
        let mut want = Vec::new();
        for k in 0..3 {
            let of_trace: Vec<NewEvent> = events(n)
                .into_iter()
                .filter(|e| e.trace_id.as_deref() == Some(&format!("t{k}")))
                .collect();
            let named = of_trace
                .iter()
                .filter(|e| e.name.is_some())
                .min_by_key(|e| e.timestamp)
                .and_then(|e| e.name.clone());
            want.push((
                format!("t{k}"),
                named,
                of_trace.iter().map(|e| e.timestamp).min().unwrap(),
                of_trace.iter().map(|e| e.timestamp).max().unwrap(),
                of_trace.len() as u64,
            ));
        }
        assert_eq!(got, want, "{name} batch");
    }
}

async fn events_of_a_trace_page_with_a_cursor(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let period = Period::containing(noon());
    // Two events share a timestamp on each page boundary: the cursor keys on (time, id).
    let events = vec![
        at("p3", 1, None),
        at("p0", 0, None),
        at("p4", 1, None),
        at("p1", 0, None),
        at("p2", 1, None),
    ];
    db.store
        .record(acme, period, &unlimited(), batch(events))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<EventCursor> = None;
    let mut pages = 0;
    loop {
        let page = db
            .store
            .events()
            .of_trace(acme, "t", cursor.as_ref(), 2)
            .await
            .unwrap();
        pages += 1;
        assert!(page.events.len() <= 2);
        seen.extend(page.events.into_iter().map(|e| e.client_event_id.unwrap()));
        match page.next_cursor {
            Some(next) => cursor = Some(EventCursor::decode(&next.encode()).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, ["p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(pages, 3);
    let none = db
        .store
        .events()
        .of_trace(acme, "t", None, 0)
        .await
        .unwrap();
    assert!(none.events.is_empty());
}

async fn the_migration_summarises_existing_traces(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let conn = Database::connect(&db.url).await.unwrap();
    // Back to before the trace summaries: the migration that made them (the fifth), and
    // every one after it.
    let after_the_fourth = u32::try_from(Migrator::migrations().len() - 4).unwrap();
    Migrator::down(&conn, Some(after_the_fourth)).await.unwrap();
    let rows: [(Option<&str>, i64, Option<&str>); 6] = [
        (Some("t1"), 3, Some("later")),
        (Some("t1"), 1, None),
        (Some("t1"), 2, Some("first named")),
        (Some("t1"), 2, Some("same time, stored later")),
        (Some("t2"), 10, None),
        (None, 0, Some("no trace")),
    ];
    for (trace, seconds, name) in rows {
        let insert = Query::insert()
            .into_table(Alias::new("events"))
            .columns(
                [
                    "account_id",
                    "event_type",
                    "trace_id",
                    "name",
                    "timestamp",
                    "received_at",
                ]
                .map(Alias::new),
            )
            .values([
                acme.0.into(),
                "span".into(),
                trace.map(str::to_owned).into(),
                name.map(str::to_owned).into(),
                (noon() + TimeDelta::seconds(seconds)).into(),
                noon().into(),
            ])
            .unwrap()
            .to_owned();
        conn.execute(&insert).await.unwrap();
    }
    Migrator::up(&conn, None).await.unwrap();
    conn.close().await.unwrap();

    let page = db.store.events().traces(acme, None, 10).await.unwrap();
    let summaries: Vec<_> = page
        .traces
        .iter()
        .map(|t| {
            (
                t.trace_id.as_str(),
                t.name.as_deref(),
                t.started_at - noon(),
                t.last_at - noon(),
                t.event_count,
            )
        })
        .collect();
    assert_eq!(
        summaries,
        [
            (
                "t2",
                None,
                TimeDelta::seconds(10),
                TimeDelta::seconds(10),
                1
            ),
            (
                "t1",
                Some("first named"),
                TimeDelta::seconds(1),
                TimeDelta::seconds(3),
                4
            ),
        ]
    );
    // Recording after the backfill adds to the summary.
    let more = batch(vec![at("late", 20, None)]);
    let more = EventBatch {
        events: more
            .events
            .into_iter()
            .map(|e| NewEvent {
                trace_id: Some("t1".into()),
                ..e
            })
            .collect(),
        ..more
    };
    db.store
        .record(acme, Period::containing(noon()), &unlimited(), more)
        .await
        .unwrap();
    let page = db.store.events().traces(acme, None, 10).await.unwrap();
    assert_eq!(
        (page.traces[1].event_count, page.traces[1].last_at),
        (5, noon() + TimeDelta::seconds(20))
    );
}

// ---------------------------------------------------------------- allowance in the transaction

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

async fn an_unknown_plan_stores_nothing(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let period = Period::containing(noon());
    let Err(RecordError::UnknownPlan(unknown)) = db
        .store
        .record(
            acme,
            period,
            &pro_and_small(),
            batch(vec![at("a", 0, None)]),
        )
        .await
    else {
        panic!("an account on an unconfigured plan was counted");
    };
    assert_eq!(unknown.plan, "free");
    assert_eq!(db.store.events().count(acme).await.unwrap(), 0);
    assert_eq!(db.store.used(acme, period).await.unwrap(), 0);
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

async fn accounting_waits_for_an_uncommitted_plan_change(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    db.store.accounts().set_plan(acme, "pro").await.unwrap();
    db.store
        .accounts()
        .set_spend_cap(acme, Some(100))
        .await
        .unwrap();
    let period = Period::containing(noon());
    let conn = Database::connect(&db.url).await.unwrap();
    let change = locking_transaction(&conn).await;
    let to_small = Query::update()
        .table(Alias::new("accounts"))
        .value(Alias::new("plan"), "small")
        .and_where(Expr::col(Alias::new("id")).eq(acme.0))
        .to_owned();
    change.execute(&to_small).await.unwrap();

    // 8 events fit the old allowance (110), not the new one (5).
    let store = db.store.clone();
    let eight: Vec<_> = (0..8).map(|i| at(&format!("e{i}"), 0, None)).collect();
    let recording = tokio::spawn(async move {
        store
            .record(acme, period, &pro_and_small(), batch(eight))
            .await
    });
    if db.store.is_postgres() {
        // Observed, not assumed: the accounting transaction waits for the row lock.
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
        assert!(
            waited.is_ok(),
            "accounting did not wait for the plan change"
        );
        probe.close().await.unwrap();
    }
    // (On SQLite the open transaction holds the write lock, so accounting cannot start before
    // the commit; when it did start is not observable, so there the test only checks the end.)
    change.commit().await.unwrap();
    let Err(RecordError::Exceeded(refused)) = recording.await.unwrap() else {
        panic!("accounting used the allowance of the plan it had before the change");
    };
    assert_eq!(refused.limit, 5);
    assert_eq!(db.store.used(acme, period).await.unwrap(), 0);
    conn.close().await.unwrap();
}

async fn lowering_the_spend_cap_binds_accounting_in_flight(db: &TestDb) {
    use std::sync::atomic::{AtomicBool, Ordering};
    const TASKS: u64 = 8;
    // Plan "pro": 10 events + 1 per cent of cap; lowered to a cap of 240¢: 250 events.
    const NEW_CAP: i64 = 240;
    const NEW_ALLOWANCE: u64 = 250;
    let acme = account(&db.store, "acme").await;
    db.store.accounts().set_plan(acme, "pro").await.unwrap();
    db.store
        .accounts()
        .set_spend_cap(acme, Some(1_000_000))
        .await
        .unwrap();
    let period = Period::containing(noon());
    let lowered = Arc::new(AtomicBool::new(false));
    let mut seeds = Rng::seeded();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = db.store.clone();
            let lowered = Arc::clone(&lowered);
            let mut rng = Rng(seeds.below(u64::MAX) | 1);
            tokio::spawn(async move {
                let plans = pro_and_small();
                let mut used_after_success = Vec::new();
                for call in 0..2_000 {
                    let size = 1 + rng.below(10);
                    let events = (0..size)
                        .map(|i| at(&format!("t{t}-c{call}-e{i}"), 0, None))
                        .collect();
                    match store.record(acme, period, &plans, batch(events)).await {
                        Ok(recorded) => used_after_success.push(recorded.used),
                        Err(RecordError::Exceeded(_)) => {
                            assert!(lowered.load(Ordering::SeqCst), "refused before the change");
                            return used_after_success;
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
                panic!("never refused after 2,000 calls");
            })
        })
        .collect();

    // Once accounting is well under way, lower the cap and learn the usage at that instant.
    while db.store.used(acme, period).await.unwrap() < 150 {
        tokio::task::yield_now().await;
    }
    let conn = Database::connect(&db.url).await.unwrap();
    let change = locking_transaction(&conn).await;
    let lower = Query::update()
        .table(Alias::new("accounts"))
        .value(Alias::new("spend_cap_cents"), NEW_CAP)
        .and_where(Expr::col(Alias::new("id")).eq(acme.0))
        .to_owned();
    change.execute(&lower).await.unwrap();
    let usage = Query::select()
        .expr_as(Expr::col(Alias::new("events_used")), Alias::new("n"))
        .from(Alias::new("usage_periods"))
        .and_where(Expr::col(Alias::new("account_id")).eq(acme.0))
        .to_owned();
    let used_at_change: i64 = change
        .query_one(&usage)
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    // Set before the commit: a task refused by the new cap can see the commit's effect before
    // this task gets back from it. While the change holds the account row, counts wait for
    // it, so no refusal can come from the new cap before the commit.
    lowered.store(true, Ordering::SeqCst);
    change.commit().await.unwrap();
    let used_at_change = u64::try_from(used_at_change).unwrap();

    // Whatever committed after the change fits the new allowance; what committed before
    // ended at most at the usage the change saw.
    let bound = Ord::max(used_at_change, NEW_ALLOWANCE);
    for task in tasks {
        for used in task.await.unwrap() {
            assert!(
                used <= bound,
                "usage {used} passed the new allowance {NEW_ALLOWANCE} (usage at the change: \
                 {used_at_change})"
            );
        }
    }
    let used = db.store.used(acme, period).await.unwrap();
    assert!(used <= bound, "used {used}, bound {bound}");
    assert_eq!(used, db.store.events().count(acme).await.unwrap());
    conn.close().await.unwrap();
}

/// The ledger remembers an account's terms between requests; a change made by another process
/// (which cannot tell this one) still binds the next count.
async fn remembered_terms_are_confirmed_by_the_count(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let accounts = db.store.accounts();
    accounts.set_plan(acme, "pro").await.unwrap();
    // No overage: `pro` admits its 10 events.
    accounts.set_spend_cap(acme, Some(0)).await.unwrap();
    let period = Period::containing(noon());
    let plans = pro_and_small();
    let record = |ids: &[&str]| {
        let events = ids.iter().map(|id| at(id, 0, None)).collect();
        db.store.record(acme, period, &plans, batch(events))
    };
    record(&["a", "b", "c", "d"]).await.unwrap();

    // Another server on the same database moves the account to `small` (5 events).
    let other = Store::connect(&db.url).await.unwrap();
    other.accounts().set_plan(acme, "small").await.unwrap();
    let Err(RecordError::Exceeded(exceeded)) = record(&["e", "f"]).await else {
        panic!("counted under terms that had changed");
    };
    assert_eq!((exceeded.limit, exceeded.used), (5, 4));
    // And back to `pro`, with a cap of 2¢: 10 events and 2 more.
    other.accounts().set_plan(acme, "pro").await.unwrap();
    other.accounts().set_spend_cap(acme, Some(2)).await.unwrap();
    let recorded = record(&["e", "f", "g", "h", "i", "j", "k", "l"])
        .await
        .unwrap();
    assert_eq!((recorded.accepted, recorded.used), (8, 12));
    let Err(RecordError::Exceeded(exceeded)) = record(&["m"]).await else {
        panic!("counted past the cap");
    };
    assert_eq!(exceeded.limit, 12);
    other.close().await.unwrap();
    assert_eq!(db.store.used(acme, period).await.unwrap(), 12);
    // The events counted after the terms were read again are in their trace's summary; the
    // refused ones are not.
    let page = db.store.events().traces(acme, None, 10).await.unwrap();
    assert_eq!(page.traces[0].event_count, 12);
}

/// A context inserted by a request that is then refused is rolled back with it; its id must not
/// be remembered. (The next context stored takes the same id on SQLite, another account's here:
/// a remembered id would then merge that account's fields into this one's events.)
async fn a_refused_request_leaves_no_context_id_to_remember(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let period = Period::containing(noon());
    let with_context = |service: &str, ids: &[&str]| EventBatch {
        contexts: vec![NewContext {
            parent: None,
            fields: fields(json!({"resource": {"service.name": service}})),
        }],
        ..batch(
            ids.iter()
                .map(|id| in_context(id, "t", Some(0), json!({})))
                .collect(),
        )
    };
    assert!(matches!(
        db.store
            .record(acme, period, &limited(1), with_context("shop", &["a", "b"]))
            .await,
        Err(RecordError::Exceeded(_))
    ));
    db.store
        .record(globex, period, &limited(1), with_context("bank", &["z"]))
        .await
        .unwrap();
    db.store
        .record(acme, period, &limited(1), with_context("shop", &["a"]))
        .await
        .unwrap();
    let page = db
        .store
        .events()
        .of_trace(acme, "t", None, 10)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(
        page.events[0].body.as_ref().unwrap()["resource"]["service.name"],
        "shop"
    );
}

async fn rolling_a_key_hands_its_grant_to_a_new_one_and_expires_the_old(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let keys = db.store.keys();
    let later = noon() + TimeDelta::days(30);
    let name = key_name("ci");
    let new = NewKey {
        expiry: Expiry::for_new_key(Some(later), noon()).unwrap(),
        ..write_key(&name)
    };
    let (old_key, old) = keys.create(acme, new, noon()).await.unwrap();
    let hour = std::time::Duration::from_secs(3600);
    let rolled = db
        .store
        .roll(
            acme,
            old.id,
            grace(hour),
            agentvista_keys::Asked {
                by: Actor::Cli,
                at: noon(),
                origin: &agentvista_keys::Origin::default(),
            },
        )
        .await
        .unwrap();
    // The same grant, a new secret.
    assert_ne!(rolled.record.prefix, old.prefix);
    assert_ne!(rolled.key.hash(), old_key.hash());
    assert_eq!(
        (
            &rolled.record.name,
            rolled.record.scopes,
            rolled.record.account_id
        ),
        (&old.name, old.scopes, acme)
    );
    assert_eq!(rolled.record.expiry, Expiry::at(Some(later)));
    let found = keys
        .find_by_hash(&rolled.key.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, rolled.record.id);
    // The old key works until the grace ends, and not after.
    let old_now = keys.find_by_hash(&old_key.hash()).await.unwrap().unwrap();
    let ends = noon() + TimeDelta::hours(1);
    assert_eq!(old_now.expiry, Expiry::at(Some(ends)));
    assert_eq!(rolled.old.expiry, old_now.expiry);
    assert!(old_now.status(ends - TimeDelta::seconds(1)).is_active());
    assert!(!old_now.status(ends).is_active());
    // Replicas hear of it through the change log.
    assert_eq!(
        count_rows(
            db,
            "SELECT COUNT(*) AS n FROM key_changes WHERE kind = 'expiry'"
        )
        .await,
        1
    );

    // Rolled again with no grace: the new key stops at once; an earlier expiry is kept.
    let again = db
        .store
        .roll(
            acme,
            rolled.record.id,
            grace(std::time::Duration::ZERO),
            agentvista_keys::Asked {
                by: Actor::Cli,
                at: noon(),
                origin: &agentvista_keys::Origin::default(),
            },
        )
        .await
        .unwrap();
    assert!(!again.old.status(noon()).is_active());
    let kept = db
        .store
        .roll(
            acme,
            again.record.id,
            grace(hour),
            agentvista_keys::Asked {
                by: Actor::Cli,
                at: later - TimeDelta::minutes(1),
                origin: &agentvista_keys::Origin::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(kept.old.expiry, Expiry::at(Some(later)));
}

async fn a_rate_limit_is_stored_kept_by_a_roll_and_changed_by_one(db: &TestDb) {
    use agentvista_keys::RateLimit;
    use agentvista_store::{RateLimitChange, RollTerms};
    let acme = account(&db.store, "acme").await;
    let keys = db.store.keys();
    let name = key_name("limited");
    let limit = RateLimit::new(5, 20).unwrap();
    let new = NewKey {
        rate_limit: Some(limit),
        ..write_key(&name)
    };
    let (key, created) = keys.create(acme, new, noon()).await.unwrap();
    assert_eq!(created.rate_limit, Some(limit));
    let found = keys.find_by_hash(&key.hash()).await.unwrap().unwrap();
    assert_eq!(found.rate_limit, Some(limit));
    assert_eq!(keys.list(acme).await.unwrap()[0].rate_limit, Some(limit));

    let kept = db
        .store
        .roll(
            acme,
            created.id,
            grace(std::time::Duration::from_secs(60)),
            agentvista_keys::Asked {
                by: Actor::Cli,
                at: noon(),
                origin: &agentvista_keys::Origin::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        kept.record.rate_limit,
        Some(limit),
        "a roll keeps the limit"
    );
    let other = RateLimit::new(1, 1).unwrap();
    let changed = db
        .store
        .roll(
            acme,
            kept.record.id,
            RollTerms {
                grace: std::time::Duration::from_secs(60),
                rate_limit: RateLimitChange::Set(Some(other)),
            },
            agentvista_keys::Asked {
                by: Actor::Cli,
                at: noon(),
                origin: &agentvista_keys::Origin::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        keys.get(acme, changed.record.id).await.unwrap().rate_limit,
        Some(other)
    );
    let removed = db
        .store
        .roll(
            acme,
            changed.record.id,
            RollTerms {
                grace: std::time::Duration::from_secs(60),
                rate_limit: RateLimitChange::Set(None),
            },
            agentvista_keys::Asked {
                by: Actor::Cli,
                at: noon(),
                origin: &agentvista_keys::Origin::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        keys.get(acme, removed.record.id).await.unwrap().rate_limit,
        None
    );
    // The old keys keep theirs.
    assert_eq!(
        keys.get(acme, created.id).await.unwrap().rate_limit,
        Some(limit)
    );
}

async fn usage_per_day_and_key_adds_up_to_the_months_count(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let keys = db.store.keys();
    let (_, first) = keys
        .create(acme, write_key(&key_name("first")), noon())
        .await
        .unwrap();
    let (_, second) = keys
        .create(acme, write_key(&key_name("second")), noon())
        .await
        .unwrap();
    let november = Period::containing(noon());
    let next_day = noon() + TimeDelta::hours(20);
    let with = |key: Option<KeyId>, at: DateTime<Utc>, events: Vec<NewEvent>| EventBatch {
        api_key_id: key,
        received_at: at,
        contexts: Vec::new(),
        events,
    };
    let ids = |prefix: &str, n: usize| -> Vec<NewEvent> {
        (0..n)
            .map(|i| event(Some(&format!("{prefix}{i}")), Some("t"), noon()))
            .collect()
    };
    let plenty = &limited(100_000);
    let record = |batch| db.store.record(acme, november, plenty, batch);
    // One call on SQLite; then a batch with a duplicate (the statements one by one); then one
    // of several statements' worth; then a session's (no key).
    record(with(Some(first.id), noon(), ids("a", 3)))
        .await
        .unwrap();
    let mut repeat = ids("a", 1);
    repeat.extend(ids("b", 1));
    assert_eq!(
        record(with(Some(first.id), noon(), repeat))
            .await
            .unwrap()
            .accepted,
        1
    );
    record(with(Some(second.id), next_day, ids("c", 1_200)))
        .await
        .unwrap();
    record(with(None, next_day, ids("d", 2))).await.unwrap();
    // Refused: nothing stored, nothing counted, per day neither.
    let used = db.store.used(acme, november).await.unwrap();
    assert_eq!(used, 1_206);
    let refused = db
        .store
        .record(
            acme,
            november,
            &limited(used + 1),
            with(Some(first.id), noon(), ids("e", 2)),
        )
        .await;
    assert!(
        matches!(refused, Err(RecordError::Exceeded(_))),
        "{refused:?}"
    );
    // December's events are December's.
    let december = november.next();
    db.store
        .record(
            acme,
            december,
            plenty,
            with(Some(first.id), december.start(), ids("f", 5)),
        )
        .await
        .unwrap();

    let usage = db.store.usage_daily(acme, november).await.unwrap();
    assert_eq!(usage.days.len(), 30, "every day of November");
    assert_eq!(usage.days[0].0, november.first_day());
    let on = |day: u32| usage.days[day as usize - 1].1;
    assert_eq!((on(26), on(27), on(28), on(29)), (0, 4, 1_202, 0));
    assert_eq!(usage.days.iter().map(|(_, n)| n).sum::<u64>(), used);
    let per_key: Vec<(KeyId, &str, u64)> = usage
        .keys
        .iter()
        .map(|k| (k.id, k.name.as_str(), k.events))
        .collect();
    assert_eq!(
        per_key,
        [(second.id, "second", 1_200), (first.id, "first", 4)]
    );
    assert_eq!(usage.keys[0].prefix, second.prefix);
    assert_eq!(usage.without_key, 2);
    let december_usage = db.store.usage_daily(acme, december).await.unwrap();
    assert_eq!(december_usage.days.len(), 31);
    assert_eq!(december_usage.days[0].1, 5);
    // Another account sees none of it.
    let globex = account(&db.store, "globex").await;
    let theirs = db.store.usage_daily(globex, november).await.unwrap();
    assert!(theirs.keys.is_empty() && theirs.days.iter().all(|(_, n)| *n == 0));
}

async fn events_past_retention_are_deleted_in_batches_and_their_traces_follow(db: &TestDb) {
    let plans = Plans::from_iter([
        (
            "free".to_owned(),
            Plan {
                retention_days: 30,
                ..Plan::FREE
            },
        ),
        (
            "pro".to_owned(),
            Plan {
                retention_days: 90,
                ..Plan::PRO
            },
        ),
    ]);
    let acme = account(&db.store, "acme").await;
    let globex = db
        .store
        .accounts()
        .create(&AccountName::parse("globex").unwrap(), "pro", noon())
        .await
        .unwrap()
        .id;
    // A plan the configuration no longer has: its events are kept.
    let legacy = db
        .store
        .accounts()
        .create(&AccountName::parse("legacy").unwrap(), "legacy", noon())
        .await
        .unwrap()
        .id;
    let days_ago = |days: i64| noon() - TimeDelta::days(days);
    let mut recorded_in = Vec::new();
    let mut store = |account, received: DateTime<Utc>, events: Vec<NewEvent>| {
        let period = Period::containing(received);
        recorded_in.push((account, period));
        // Room for every account's events, whatever its plan.
        let plans = Plans::from_iter(["free", "pro", "legacy"].map(|name| {
            (
                name.to_owned(),
                Plan {
                    monthly_events: 100_000,
                    ..Plan::FREE
                },
            )
        }));
        let batch = EventBatch {
            api_key_id: None,
            received_at: received,
            contexts: Vec::new(),
            events,
        };
        let store = db.store.clone();
        async move { store.record(account, period, &plans, batch).await.unwrap() }
    };
    // Stored in the order they were received, as a server stores them (the sweep walks ids).
    // A plan the configuration no longer has keeps its events; globex (90 days) loses its
    // 100-day-old event and keeps the 40-day-old one; acme (30 days) loses trace "old" whole,
    // and trace "mixed" keeps its recent half, whose earliest named event then names it.
    store(
        legacy,
        days_ago(400),
        vec![event(Some("l0"), Some("ancient"), days_ago(400))],
    )
    .await;
    store(
        globex,
        days_ago(100),
        vec![event(Some("g0"), Some("gone"), days_ago(100))],
    )
    .await;
    store(
        acme,
        days_ago(40),
        vec![
            event(Some("o1"), Some("old"), days_ago(40)),
            event(Some("o2"), Some("old"), days_ago(40)),
            event(Some("m1"), Some("mixed"), days_ago(41)),
            event(None, None, days_ago(40)),
        ],
    )
    .await;
    store(
        globex,
        days_ago(40),
        vec![event(Some("g1"), Some("kept"), days_ago(40))],
    )
    .await;
    store(
        acme,
        days_ago(1),
        vec![
            event(None, Some("mixed"), days_ago(2)),
            event(Some("m2"), Some("mixed"), days_ago(1)),
            event(Some("m3"), Some("mixed"), noon()),
        ],
    )
    .await;
    let counted: Vec<u64> = {
        let mut counted = Vec::new();
        for (account, period) in &recorded_in {
            counted.push(db.store.used(*account, *period).await.unwrap());
        }
        counted
    };

    // Two events a batch: several transactions.
    let swept = db
        .store
        .sweep_retention(&plans, noon(), &sweep(2))
        .await
        .unwrap();
    assert_eq!(swept.deleted, 5, "{swept:?}");
    assert!(swept.batches >= 3, "{swept:?}");

    let listed = |account| {
        let store = db.store.clone();
        async move {
            store
                .events()
                .traces(account, None, 50)
                .await
                .unwrap()
                .traces
                .into_iter()
                .map(|t| (t.trace_id, t.event_count, t.name, t.started_at))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(acme).await,
        [(
            "mixed".to_owned(),
            3,
            Some("name of m2".to_owned()),
            days_ago(2)
        )],
        "the old trace is gone; the mixed one is summarised from what is left"
    );
    assert!(
        db.store
            .events()
            .of_trace(acme, "old", None, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert_eq!(db.store.events().count(acme).await.unwrap(), 3);
    let kept: Vec<String> = listed(globex).await.into_iter().map(|t| t.0).collect();
    assert_eq!(kept, ["kept"]);
    assert_eq!(db.store.events().count(legacy).await.unwrap(), 1);
    // Counts are never touched.
    for ((account, period), before) in recorded_in.iter().zip(counted) {
        assert_eq!(db.store.used(*account, *period).await.unwrap(), before);
    }
    // Nothing left to do; a later sweep takes the rest as it ages.
    let again = db
        .store
        .sweep_retention(&plans, noon(), &sweep(2))
        .await
        .unwrap();
    assert_eq!(again.deleted, 0);
    let later = db
        .store
        .sweep_retention(&plans, noon() + TimeDelta::days(60), &sweep(100))
        .await
        .unwrap();
    assert_eq!(
        later.deleted, 4,
        "acme's recent three and globex's 40-day-old one"
    );
    assert!(listed(acme).await.is_empty());
}

async fn only_an_active_key_of_the_account_rolls(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let (_, record) = db
        .store
        .keys()
        .create(acme, write_key(&key_name("ci")), noon())
        .await
        .unwrap();
    let minute = std::time::Duration::from_secs(60);
    assert!(matches!(
        db.store
            .roll(
                globex,
                record.id,
                grace(minute),
                agentvista_keys::Asked {
                    by: Actor::Cli,
                    at: noon(),
                    origin: &agentvista_keys::Origin::default()
                }
            )
            .await,
        Err(agentvista_store::RollError::NotFound)
    ));
    assert!(matches!(
        db.store
            .roll(
                acme,
                record.id,
                grace(agentvista_store::MAX_ROLL_GRACE * 2),
                agentvista_keys::Asked {
                    by: Actor::Cli,
                    at: noon(),
                    origin: &agentvista_keys::Origin::default()
                }
            )
            .await,
        Err(agentvista_store::RollError::GraceTooLong)
    ));
    let port: &dyn KeyLookup = &db.store;
    port.revoke(acme, record.id, Actor::Cli, noon())
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .roll(
                acme,
                record.id,
                grace(minute),
                agentvista_keys::Asked {
                    by: Actor::Cli,
                    at: noon(),
                    origin: &agentvista_keys::Origin::default()
                }
            )
            .await,
        Err(agentvista_store::RollError::NotFound)
    ));
    // Nothing was created by the refused rolls.
    assert_eq!(db.store.keys().list(acme).await.unwrap().len(), 1);
}

async fn the_audit_log_pages_an_accounts_entries_newest_first(db: &TestDb) {
    use agentvista_store::{AuditAction, NewAuditEntry, Origin};
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let origin = Origin::new(Some("192.0.2.7".parse().unwrap()), Some(&"x".repeat(300)));
    let log = db.store.audit();
    for (i, account) in [(0, acme), (1, globex), (2, acme), (3, acme)] {
        log.append(NewAuditEntry {
            account,
            action: AuditAction::KeyCreated,
            actor: "user:1".to_owned(),
            target: Some(format!("av_0000000{i}")),
            origin: &origin,
            detail: Some(serde_json::json!({"n": i})),
            at: noon() + TimeDelta::seconds(i),
        })
        .await
        .unwrap();
    }
    let first = log.page(acme, None, 2).await.unwrap();
    let targets: Vec<_> = first
        .entries
        .iter()
        .map(|e| e.target.clone().unwrap())
        .collect();
    assert_eq!(targets, ["av_00000003", "av_00000002"]);
    let entry = &first.entries[0];
    assert_eq!(
        (entry.action.as_str(), entry.actor.as_str(), entry.at),
        ("key.created", "user:1", noon() + TimeDelta::seconds(3))
    );
    assert_eq!(entry.client_address.as_deref(), Some("192.0.2.7"));
    assert_eq!(entry.user_agent.as_ref().unwrap().chars().count(), 256);
    assert_eq!(entry.detail, Some(serde_json::json!({"n": 3})));
    let rest = log.page(acme, first.next_cursor, 2).await.unwrap();
    assert_eq!(rest.entries.len(), 1);
    assert_eq!(rest.entries[0].target.as_deref(), Some("av_00000000"));
    assert_eq!(rest.next_cursor, None);
    // Another account's entries are its own.
    assert_eq!(log.page(globex, None, 100).await.unwrap().entries.len(), 1);
}
