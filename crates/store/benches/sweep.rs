//! `cargo bench -p agentvista-store --bench sweep`: what the retention sweep costs ingestion,
//! on SQLite and, when `AGENTVISTA_TEST_POSTGRES_URL` is set, on PostgreSQL.
//!
//! - `index/<db>/<batch>`: what an index on `events(account_id, context_id)` (which would make
//!   "is this context still referenced?" a probe) would cost the accounting transaction: two
//!   databases in one process, one given the index, one accounting call on each back to back
//!   (the order alternating), median of the pairs' ratios (with the index over without). The
//!   schema has no such index: contexts carry the day they were last referred to instead.
//! - `sweep/<db>`: 1M events past retention (in traces of 10, under 1,000 contexts, written in
//!   bulk), swept with the server's settings (1,000 rows a transaction, 50 ms between them)
//!   while one client sends batches of 10 events to another account back to back: the sweep's
//!   longest write transaction, and the client's p50 and p99 during the sweep against the same
//!   client's before it.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use agentvista_quota::{Period, Plan, Plans};
use agentvista_store::{AccountId, EventBatch, NewContext, NewEvent, Store, Sweep, testing};
use chrono::{TimeDelta, Utc};
use sea_orm::ConnectionTrait;

/// A migrated store on a scratch database.
struct Scratch {
    store: Store,
    db: testing::ScratchDb,
}

async fn scratch(postgres: bool) -> Option<Scratch> {
    let engine = if postgres {
        testing::Engine::Postgres
    } else {
        testing::Engine::Sqlite
    };
    let db = testing::ScratchDb::new(engine, "sweep benchmark").await?;
    let store = Store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    Some(Scratch { store, db })
}

impl Scratch {
    async fn finish(self) {
        self.store.close().await.unwrap();
    }

    fn label(&self) -> &'static str {
        match self.db.engine() {
            testing::Engine::Postgres => "postgres",
            testing::Engine::Sqlite => "sqlite",
        }
    }

    async fn execute(&self, sql: &str) {
        testing::write_pool(&self.store)
            .execute_unprepared(sql)
            .await
            .unwrap();
    }
}

fn plans() -> Plans {
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
        .create(&name.parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id
}

/// One accounting call of `n` fresh events under one shared context, timed.
async fn record(store: &Store, account: AccountId, next: &mut u64, n: u64) -> Duration {
    let now = Utc::now();
    let events = (0..n)
        .map(|_| {
            *next += 1;
            NewEvent {
                client_event_id: Some(format!("evt-{next}")),
                event_type: "span".into(),
                trace_id: Some(format!("trace-{}", *next / 10)),
                name: Some("llm.call".into()),
                timestamp: now,
                body: Some(serde_json::value::to_raw_value(&serde_json::json!({"t": 42})).unwrap()),
                context: Some(0),
                span: None,
            }
        })
        .collect();
    let fields = serde_json::json!({"resource": {"service.name": "checkout"}});
    let batch = EventBatch {
        api_key_id: None,
        received_at: now,
        contexts: vec![NewContext {
            parent: None,
            fields: serde_json::value::to_raw_value(&fields).unwrap(),
        }],
        events,
    };
    let start = Instant::now();
    store
        .record(account, Period::containing(now), &plans(), batch)
        .await
        .unwrap();
    start.elapsed()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn index_cost(postgres: bool) {
    const ROUNDS: usize = 1000;
    let (Some(with), Some(without)) = (scratch(postgres).await, scratch(postgres).await) else {
        return;
    };
    with.execute("CREATE INDEX idx_events_account_context ON events (account_id, context_id)")
        .await;
    let (a, b) = (
        account(&with.store, "acme").await,
        account(&without.store, "acme").await,
    );
    let (mut next_a, mut next_b) = (0, 0);
    for n in [10, 100] {
        let mut ratios = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let (indexed, bare) = if round % 2 == 0 {
                let indexed = record(&with.store, a, &mut next_a, n).await;
                (indexed, record(&without.store, b, &mut next_b, n).await)
            } else {
                let bare = record(&without.store, b, &mut next_b, n).await;
                (record(&with.store, a, &mut next_a, n).await, bare)
            };
            ratios.push(indexed.as_secs_f64() / bare.as_secs_f64());
        }
        ratios.sort_by(f64::total_cmp);
        eprintln!(
            "index/{}/{n}: time with the index / without = {:.3} (median of {ROUNDS} pairs; \
             quartiles {:.2}-{:.2})",
            with.label(),
            ratios[ROUNDS / 2],
            ratios[ROUNDS / 4],
            ratios[3 * ROUNDS / 4],
        );
    }
    with.finish().await;
    without.finish().await;
}

/// Writes `events` events received 40 days ago for a new account, in traces of 10 with their
/// summaries, under 1,000 contexts.
async fn expired(db: &Scratch, events: u64) {
    let account = account(&db.store, "old").await.0;
    let base = (Utc::now() - TimeDelta::days(40)).timestamp();
    let traces = events / 10;
    if db.db.engine() == testing::Engine::Postgres {
        let at = |s: &str| format!("to_timestamp({base} + {s})");
        db.execute(&format!(
            "INSERT INTO event_contexts (account_id, hash, body, last_seen) \
             SELECT {account}, 'h' || j, '{{}}'::jsonb, CAST({} AS DATE) \
             FROM generate_series(0, 999) AS j",
            at("0")
        ))
        .await;
        db.execute(&format!(
            "INSERT INTO events (account_id, event_type, trace_id, name, timestamp, received_at, \
             context_id) \
             SELECT {account}, 'span', 'trace-' || (i / 10), CASE WHEN i % 10 = 0 THEN 'op' END, \
                    {}, {}, (SELECT MIN(id) FROM event_contexts) + i % 1000 \
             FROM generate_series(0, {events} - 1) AS i",
            at("i / 100"),
            at("i / 100")
        ))
        .await;
        db.execute(&format!(
            "INSERT INTO traces (account_id, trace_id, name, name_at, started_at, last_at, \
             event_count) \
             SELECT {account}, 'trace-' || j, 'op', {}, {}, {}, 10 \
             FROM generate_series(0, {traces} - 1) AS j",
            at("j / 10"),
            at("j / 10"),
            at("j / 10")
        ))
        .await;
    } else {
        // The text form the store writes (RFC 3339, `+00:00`), so that comparisons hold.
        let at =
            |s: &str| format!("strftime('%Y-%m-%dT%H:%M:%S+00:00', {base} + {s}, 'unixepoch')");
        let series = |var: &str, n: u64| {
            format!(
                "WITH RECURSIVE n({var}) AS (SELECT 0 UNION ALL SELECT {var} + 1 FROM n \
                 WHERE {var} + 1 < {n})"
            )
        };
        db.execute(&format!(
            "{} INSERT INTO event_contexts (account_id, hash, body, last_seen) \
             SELECT {account}, 'h' || j, '{{}}', date({base}, 'unixepoch') FROM n",
            series("j", 1000)
        ))
        .await;
        db.execute(&format!(
            "{} INSERT INTO events (account_id, event_type, trace_id, name, timestamp, \
             received_at, context_id) \
             SELECT {account}, 'span', 'trace-' || (i / 10), CASE WHEN i % 10 = 0 THEN 'op' END, \
                    {}, {}, (SELECT MIN(id) FROM event_contexts) + i % 1000 FROM n",
            series("i", events),
            at("i / 100"),
            at("i / 100")
        ))
        .await;
        db.execute(&format!(
            "{} INSERT INTO traces (account_id, trace_id, name, name_at, started_at, last_at, \
             event_count) SELECT {account}, 'trace-' || j, 'op', {}, {}, {}, 10 FROM n",
            series("j", traces),
            at("j / 10"),
            at("j / 10"),
            at("j / 10")
        ))
        .await;
    }
}

async fn sweep_under_load(postgres: bool, events: u64) {
    let Some(db) = scratch(postgres).await else {
        return;
    };
    let started = Instant::now();
    expired(&db, events).await;
    // Statistics, as autovacuum gathers them for tables this size.
    db.execute("ANALYZE").await;
    eprintln!(
        "sweep/{}: {events} expired events written in {:.1?}",
        db.label(),
        started.elapsed()
    );
    let client = account(&db.store, "live").await;
    let mut next = 0;
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(record(&db.store, client, &mut next, 10).await);
    }
    let sweeper = {
        let store = db.store.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let swept = store
                .sweep_retention(&plans(), Utc::now(), &Sweep::default())
                .await
                .unwrap();
            (swept, started.elapsed())
        })
    };
    let mut during = Vec::new();
    while !sweeper.is_finished() {
        during.push(record(&db.store, client, &mut next, 10).await);
    }
    let (swept, took) = sweeper.await.unwrap();
    assert_eq!(swept.deleted, events, "{swept:?}");
    let marked = testing::write_pool(&db.store)
        .query_one_raw(sea_orm::Statement::from_string(
            testing::write_pool(&db.store).get_database_backend(),
            "SELECT COUNT(*) AS n FROM event_contexts WHERE orphaned_at IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(
        marked, 1000,
        "every context of the expired events is marked"
    );
    idle.sort();
    during.sort();
    eprintln!(
        "sweep/{}: {} events deleted in {} transactions over {:.1?}; longest transaction \
         {:.1?}",
        db.label(),
        swept.deleted,
        swept.batches,
        took,
        swept.longest_transaction
    );
    eprintln!(
        "sweep/{}: batches of 10 before the sweep p50 {:.2?} p99 {:.2?}; during it ({} \
         batches) p50 {:.2?} p99 {:.2?} max {:.2?}",
        db.label(),
        quantile(&idle, 0.5),
        quantile(&idle, 0.99),
        during.len(),
        quantile(&during, 0.5),
        quantile(&during, 0.99),
        during.last().copied().unwrap_or_default(),
    );
    db.finish().await;
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = std::env::var("SWEEP_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    // PostgreSQL when AGENTVISTA_TEST_POSTGRES_URL is set (else `scratch` says it skips).
    for target in [false, true] {
        rt.block_on(index_cost(target));
        rt.block_on(sweep_under_load(target, events));
    }
}
