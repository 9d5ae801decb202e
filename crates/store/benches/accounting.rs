//! `cargo bench -p agentvista-store`: insert-and-count (the accounting transaction) against a
//! baseline of plain inserts of the same rows in one transaction, for batches of 1, 10 and 100,
//! on SQLite (WAL, synchronous = FULL) and on PostgreSQL when `AGENTVISTA_TEST_POSTGRES_URL`
//! is set. Both run in the same process, one after the other, on the same database.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use agentvista_quota::{Allowance, Period, UsageLedger};
use agentvista_store::{AccountId, EventBatch, NewEvent, Store, testing};
use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait, Value};

const BATCHES: [u64; 3] = [1, 10, 100];

struct Target {
    label: &'static str,
    store: Store,
    plain: DatabaseConnection,
    account: AccountId,
    _dir: Option<tempfile::TempDir>,
    /// Admin URL and database name, for PostgreSQL: dropped after the run.
    drop_after: Option<(String, String)>,
}

async fn sqlite() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    target("sqlite", &url, Some(dir)).await
}

async fn postgres() -> Option<Target> {
    let Ok(admin_url) = std::env::var("AGENTVISTA_TEST_POSTGRES_URL") else {
        eprintln!("postgres benchmarks skipped: AGENTVISTA_TEST_POSTGRES_URL is not set");
        return None;
    };
    let (url, name) = testing::create_database(&admin_url, "agentvista_bench")
        .await
        .unwrap();
    let mut target = target("postgres", &url, None).await;
    target.drop_after = Some((admin_url, name));
    Some(target)
}

async fn target(label: &'static str, url: &str, dir: Option<tempfile::TempDir>) -> Target {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let account = store
        .accounts()
        .create("bench", "free", Utc::now())
        .await
        .unwrap()
        .id;
    let plain = Database::connect(url).await.unwrap();
    Target {
        label,
        store,
        plain,
        account,
        _dir: dir,
        drop_after: None,
    }
}

fn events(next_id: &mut u64, n: u64) -> Vec<NewEvent> {
    let now = Utc::now();
    (0..n)
        .map(|_| {
            *next_id += 1;
            NewEvent {
                client_event_id: Some(format!("evt-{next_id}")),
                event_type: "span".into(),
                trace_id: Some(format!("trace-{}", *next_id / 10)),
                name: Some("llm.call".into()),
                timestamp: now,
                body: Some(serde_json::json!({"model": "gpt", "tokens": 42})),
            }
        })
        .collect()
}

/// The baseline: the same rows, one plain multi-row INSERT in one transaction, no accounting.
async fn plain_insert(db: &DatabaseConnection, account: AccountId, rows: Vec<NewEvent>) {
    let backend = db.get_database_backend();
    let now = Utc::now();
    let mut sql = String::from(
        "INSERT INTO events (account_id, api_key_id, client_event_id, event_type, trace_id, \
         name, timestamp, body, received_at) VALUES ",
    );
    let mut values: Vec<Value> = Vec::new();
    for (i, e) in rows.into_iter().enumerate() {
        let base = i * 9;
        let marks: Vec<String> = (1..=9)
            .map(|k| match backend {
                sea_orm::DbBackend::Postgres => format!("${}", base + k),
                _ => "?".to_owned(),
            })
            .collect();
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("({})", marks.join(",")));
        values.extend([
            account.0.into(),
            Option::<i64>::None.into(),
            e.client_event_id.into(),
            e.event_type.into(),
            e.trace_id.into(),
            e.name.into(),
            e.timestamp.into(),
            e.body.into(),
            now.into(),
        ]);
    }
    let txn = db.begin().await.unwrap();
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

fn accounting(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut targets = vec![rt.block_on(sqlite())];
    targets.extend(rt.block_on(postgres()));
    let mut next_id = 0u64;
    for target in &targets {
        let mut group = c.benchmark_group(format!("record/{}", target.label));
        for n in BATCHES {
            group.throughput(Throughput::Elements(n));
            group.bench_with_input(BenchmarkId::new("plain_insert", n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            let rows = events(&mut next_id, n);
                            let start = Instant::now();
                            plain_insert(&target.plain, target.account, rows).await;
                            spent += start.elapsed();
                        }
                        spent
                    })
                });
            });
            group.bench_with_input(BenchmarkId::new("insert_and_count", n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            let batch = EventBatch {
                                api_key_id: None,
                                received_at: Utc::now(),
                                events: events(&mut next_id, n),
                            };
                            let period = Period::containing(batch.received_at);
                            let start = Instant::now();
                            target
                                .store
                                .record(
                                    target.account,
                                    period,
                                    Allowance::Limited(u64::MAX / 2),
                                    batch,
                                )
                                .await
                                .unwrap();
                            spent += start.elapsed();
                        }
                        spent
                    })
                });
            });
        }
        group.finish();
    }
    for target in targets {
        rt.block_on(async {
            target.plain.close().await.unwrap();
            target.store.close().await.unwrap();
            if let Some((admin_url, name)) = target.drop_after {
                testing::drop_database(&admin_url, &name).await.unwrap();
            }
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = accounting
}
criterion_main!(benches);
