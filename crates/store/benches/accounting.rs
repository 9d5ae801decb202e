//! `cargo bench -p agentvista-store --bench accounting`: insert-and-count (the accounting
//! transaction: allowance read, shared context, events, trace summaries, usage) against a
//! baseline of plain inserts of the same rows in one transaction, for batches of 1, 10 and 100,
//! on SQLite (WAL, synchronous = FULL) and on PostgreSQL when `AGENTVISTA_TEST_POSTGRES_URL`
//! is set. Both run in the same process, one after the other, on the same database and the
//! same write connection (the store's own).
//!
//! Then `traces/<db>`: one page of the trace list in an account of 10k events (1k traces) and
//! in one of 1M events (100k traces), first page and a page from the middle. Those rows are
//! written by bulk `INSERT … SELECT`, not through the ledger, to keep the set-up short.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use agentvista_quota::{Period, Plan, Plans};
use agentvista_store::{
    AccountId, EventBatch, NewContext, NewEvent, SpanFields, SpanStatus, Store, TokenUsage,
    TraceFilter, testing,
};
use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait, Value};

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
        .create(&"bench".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    // The baseline writes through the store's own write connection: the same settings and, on
    // SQLite, the same page cache. (Through a connection of its own, each side would find its
    // cache invalidated by the other's last write and re-read its pages, which penalises the
    // side that touches more tables — the accounting — in a way the server, with one writer
    // connection, never pays.)
    let plain = testing::write_pool(&store).clone();
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
                body: Some(
                    serde_json::value::to_raw_value(
                        &serde_json::json!({"model": "gpt", "tokens": 42}),
                    )
                    .unwrap(),
                ),
                context: Some(0),
                // As an instrumented agent sends them: each span ends, says how it went and
                // names its parent; one in five is a model call with its tokens; one in seven
                // failed.
                span: Some(Box::new(SpanFields {
                    parent_id: Some(format!("evt-{}", *next_id - 1)),
                    end_time: Some(now + chrono::TimeDelta::milliseconds(5)),
                    status: Some(if next_id.is_multiple_of(7) {
                        SpanStatus::Error
                    } else {
                        SpanStatus::Ok
                    }),
                    status_message: None,
                    model: next_id.is_multiple_of(5).then(|| "gpt-4o-mini".to_owned()),
                    usage: next_id.is_multiple_of(5).then_some(TokenUsage {
                        input_tokens: 120,
                        output_tokens: 40,
                    }),
                })),
            }
        })
        .collect()
}

/// What an OTLP request from one service shares among its events: stored once.
fn contexts() -> Vec<NewContext> {
    let fields = serde_json::json!({
        "resource": {"service.name": "checkout", "service.version": "1.4.2",
                     "host.name": "web-7", "telemetry.sdk.language": "python",
                     "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": "1.27.0"},
        "scope": {"name": "openai.instrumentation", "version": "0.33.0"},
    });
    vec![NewContext {
        parent: None,
        fields: serde_json::value::to_raw_value(&fields).unwrap(),
    }]
}

fn plans() -> Plans {
    Plans::from_iter([(
        "free".to_owned(),
        Plan {
            monthly_events: u64::MAX / 2,
            overage_cents_per_1000_events: 0,
            retention_days: 30,
        },
    )])
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
                // The body (the eighth value) arrives as JSON text, as the ledger sends it.
                sea_orm::DbBackend::Postgres if k == 8 => format!("CAST(${} AS jsonb)", base + k),
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
            e.body.map(|b| b.get().to_owned()).into(),
            now.into(),
        ]);
    }
    let txn = db.begin().await.unwrap();
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

/// One accounting call of `n` fresh events, timed.
async fn timed_record(target: &Target, plans: &Plans, next_id: &mut u64, n: u64) -> Duration {
    let batch = EventBatch {
        api_key_id: None,
        received_at: Utc::now(),
        contexts: contexts(),
        events: events(next_id, n),
    };
    let period = Period::containing(batch.received_at);
    let start = Instant::now();
    target
        .store
        .record(target.account, period, plans, batch)
        .await
        .unwrap();
    start.elapsed()
}

/// One plain insert of `n` fresh events, timed.
async fn timed_plain(target: &Target, next_id: &mut u64, n: u64) -> Duration {
    let rows = events(next_id, n);
    let start = Instant::now();
    plain_insert(&target.plain, target.account, rows).await;
    start.elapsed()
}

/// The goal's figure, robust against a shared machine: `ROUNDS` pairs of one plain insert and
/// one accounting call, taken back to back (the order alternating), so that whatever slows the
/// machine slows both sides of a pair. Prints the median of the pairs' ratios (plain time over
/// accounting time: 1.0 means accounting costs nothing, 0.7 is the goal at batch 100).
fn paired_ratios(rt: &tokio::runtime::Runtime, target: &Target, plans: &Plans, next_id: &mut u64) {
    const ROUNDS: usize = 300;
    for n in BATCHES {
        let mut ratios: Vec<f64> = rt.block_on(async {
            let mut ratios = Vec::with_capacity(ROUNDS);
            for round in 0..ROUNDS {
                let (plain, counted) = if round % 2 == 0 {
                    let plain = timed_plain(target, next_id, n).await;
                    (plain, timed_record(target, plans, next_id, n).await)
                } else {
                    let counted = timed_record(target, plans, next_id, n).await;
                    (timed_plain(target, next_id, n).await, counted)
                };
                ratios.push(plain.as_secs_f64() / counted.as_secs_f64());
            }
            ratios
        });
        ratios.sort_by(f64::total_cmp);
        eprintln!(
            "ratio/{}/{n}: plain insert / insert-and-count = {:.2} (median of {ROUNDS} pairs; \
             quartiles {:.2}-{:.2})",
            target.label,
            ratios[ROUNDS / 2],
            ratios[ROUNDS / 4],
            ratios[3 * ROUNDS / 4],
        );
    }
}

fn accounting(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut targets = vec![rt.block_on(sqlite())];
    targets.extend(rt.block_on(postgres()));
    let mut next_id = 0u64;
    let plans = plans();
    for target in &targets {
        paired_ratios(&rt, target, &plans, &mut next_id);
    }
    for target in &targets {
        let mut group = c.benchmark_group(format!("record/{}", target.label));
        for n in BATCHES {
            group.throughput(Throughput::Elements(n));
            group.bench_with_input(BenchmarkId::new("plain_insert", n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            spent += timed_plain(target, &mut next_id, n).await;
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
                            spent += timed_record(target, &plans, &mut next_id, n).await;
                        }
                        spent
                    })
                });
            });
        }
        group.finish();
    }
    for target in &targets {
        list_traces(c, &rt, target);
    }
    for target in targets {
        rt.block_on(async {
            target.store.close().await.unwrap();
            if let Some((admin_url, name)) = target.drop_after {
                testing::drop_database(&admin_url, &name).await.unwrap();
            }
        });
    }
}

/// Writes `events` events in traces of 10 (and their summaries) for a new account, in bulk.
async fn bulk_account(target: &Target, name: &str, events: u64) -> AccountId {
    let account = target
        .store
        .accounts()
        .create(&name.parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id
        .0;
    let traces = events / 10;
    let (event_rows, trace_rows) = if target.label == "postgres" {
        (
            format!(
                "INSERT INTO events (account_id, event_type, trace_id, name, timestamp, \
                 received_at) \
                 SELECT {account}, 'span', 'trace-' || (i / 10), \
                        CASE WHEN i % 10 = 0 THEN 'op' END, \
                        to_timestamp(1800000000 + i), to_timestamp(1800000000 + i) \
                 FROM generate_series(0, {events} - 1) AS i"
            ),
            format!(
                "INSERT INTO traces (account_id, trace_id, name, name_at, started_at, last_at, \
                 event_count, error_count, status_count) \
                 SELECT {account}, 'trace-' || j, 'op', to_timestamp(1800000000 + 10 * j), \
                        to_timestamp(1800000000 + 10 * j), to_timestamp(1800000009 + 10 * j), 10, \
                        CASE WHEN j % 100 = 0 THEN 1 ELSE 0 END, 10 \
                 FROM generate_series(0, {traces} - 1) AS j"
            ),
        )
    } else {
        // The text form the store writes (RFC 3339, `+00:00`), so that comparisons hold.
        let at = |seconds: &str| {
            format!("strftime('%Y-%m-%dT%H:%M:%S+00:00', 1800000000 + {seconds}, 'unixepoch')")
        };
        (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n \
                 WHERE i + 1 < {events}) \
                 INSERT INTO events (account_id, event_type, trace_id, name, timestamp, \
                 received_at) \
                 SELECT {account}, 'span', 'trace-' || (i / 10), \
                        CASE WHEN i % 10 = 0 THEN 'op' END, {}, {} FROM n",
                at("i"),
                at("i")
            ),
            format!(
                "WITH RECURSIVE n(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM n \
                 WHERE j + 1 < {traces}) \
                 INSERT INTO traces (account_id, trace_id, name, name_at, started_at, last_at, \
                 event_count, error_count, status_count) \
                 SELECT {account}, 'trace-' || j, 'op', {}, {}, {}, 10, \
                        CASE WHEN j % 100 = 0 THEN 1 ELSE 0 END, 10 FROM n",
                at("10 * j"),
                at("10 * j"),
                at("10 * j + 9")
            ),
        )
    };
    let txn = target.plain.begin().await.unwrap();
    txn.execute_unprepared(&event_rows).await.unwrap();
    txn.execute_unprepared(&trace_rows).await.unwrap();
    txn.commit().await.unwrap();
    AccountId(account)
}

/// A page of 50 traces: the first, and one from the middle of the list (through a cursor).
fn list_traces(c: &mut Criterion, rt: &tokio::runtime::Runtime, target: &Target) {
    const PAGE: u64 = 50;
    let started = Instant::now();
    let accounts = rt.block_on(async {
        [
            ("10k", bulk_account(target, "ten-thousand", 10_000).await),
            ("1M", bulk_account(target, "one-million", 1_000_000).await),
        ]
    });
    eprintln!(
        "{}: 1.01M events and their traces written in {:.1?}",
        target.label,
        started.elapsed()
    );
    let mut group = c.benchmark_group(format!("traces/{}", target.label));
    for (size, account) in accounts {
        let events = target.store.events();
        // The cursor of the page in the middle, found once outside the measurement.
        let middle = rt.block_on(async {
            let traces = events.count(account).await.unwrap() / 10;
            events
                .traces(account, &TraceFilter::default(), None, traces / 2)
                .await
                .unwrap()
                .next_cursor
        });
        group.bench_function(BenchmarkId::new("first_page", size), |b| {
            b.iter(|| {
                rt.block_on(events.traces(account, &TraceFilter::default(), None, PAGE))
                    .unwrap()
            });
        });
        group.bench_function(BenchmarkId::new("middle_page", size), |b| {
            b.iter(|| {
                rt.block_on(events.traces(account, &TraceFilter::default(), middle.as_ref(), PAGE))
                    .unwrap()
            });
        });
        // The first page under each filter: one trace in a hundred failed; the time range is
        // the middle half of the account's traces; a name search that matches every trace
        // stops at the page, one that matches none reads its whole window.
        let traces = i64::try_from(rt.block_on(events.count(account)).unwrap() / 10).unwrap();
        let at = |j: i64| chrono::DateTime::from_timestamp(1_800_000_000 + 10 * j, 0);
        let filters = [
            (
                "errors",
                TraceFilter {
                    errors_only: true,
                    ..TraceFilter::default()
                },
            ),
            (
                "time_range",
                TraceFilter {
                    from: at(traces / 4),
                    to: at(3 * traces / 4),
                    ..TraceFilter::default()
                },
            ),
            (
                "name_found",
                TraceFilter {
                    name: Some("OP".into()),
                    ..TraceFilter::default()
                },
            ),
            (
                "name_missing",
                TraceFilter {
                    name: Some("needle".into()),
                    ..TraceFilter::default()
                },
            ),
        ];
        for (label, filter) in filters {
            group.bench_function(BenchmarkId::new(format!("first_page_{label}"), size), |b| {
                b.iter(|| {
                    rt.block_on(events.traces(account, &filter, None, PAGE))
                        .unwrap()
                });
            });
        }
    }
    group.finish();
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
