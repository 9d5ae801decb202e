//! `cargo bench -p agentvista-store --bench lookup`: what verifying a presented key costs —
//! parse and hash (pure), then the lookup by hash in the database, then the same through a
//! replica's verified-key cache — on SQLite, and on PostgreSQL when
//! `AGENTVISTA_TEST_POSTGRES_URL` is set.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use agentvista_keys::{ApiKey, Expiry, KeyLookup, Scope, Scopes};
use agentvista_store::{NewKey, Replica, ReplicaOptions, Store, testing};
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};

async fn store_with_keys(url: &str) -> (Store, String) {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let account = store
        .accounts()
        .create(&"bench".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    let mut presented = String::new();
    let name = "bench".parse().unwrap();
    // A table of realistic size, so the lookup walks a real index.
    for i in 0..1_000 {
        let new = NewKey {
            name: &name,
            scopes: Scopes::only(Scope::Write),
            expiry: Expiry::NEVER,
            created_by: None,
            rate_limit: None,
        };
        let (key, _) = store.keys().create(account, new, Utc::now()).await.unwrap();
        if i == 500 {
            presented = key.expose_secret().to_owned();
        }
    }
    (store, presented)
}

fn lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("lookup.db").display()
    );
    let mut targets = vec![("sqlite", rt.block_on(store_with_keys(&sqlite)), None)];
    if let Ok(admin) = std::env::var("AGENTVISTA_TEST_POSTGRES_URL") {
        let (url, name) = rt
            .block_on(testing::create_database(&admin, "agentvista_bench"))
            .unwrap();
        targets.push((
            "postgres",
            rt.block_on(store_with_keys(&url)),
            Some((admin, name)),
        ));
    }
    let key = targets[0].1.1.clone();
    c.bench_function("verify/parse_and_hash", |b| {
        b.iter(|| ApiKey::parse(std::hint::black_box(&key)).unwrap().hash())
    });
    for (label, (store, presented), _) in &targets {
        c.bench_function(&format!("verify/{label}/parse_hash_and_find"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        let key = ApiKey::parse(presented).unwrap();
                        let found = store.keys().find_by_hash(&key.hash()).await.unwrap();
                        assert!(found.is_some());
                    }
                    start.elapsed()
                })
            });
        });
    }
    // What a replica does per request once the key is held in memory: parse, hash, cache hit
    // (through the lookup port, boxed future included).
    for (label, (store, presented), _) in &targets {
        let options = ReplicaOptions {
            capacity: 100_000,
            label: format!("bench-{label}"),
        };
        let replica = rt.block_on(async {
            let replica = Replica::start(store.clone(), options).await.unwrap();
            replica.until_serving().await;
            let key = ApiKey::parse(presented).unwrap();
            assert!(replica.find_by_hash(&key.hash()).await.unwrap().is_some());
            replica
        });
        c.bench_function(&format!("verify/{label}/parse_hash_and_cache_hit"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        let key = ApiKey::parse(std::hint::black_box(presented)).unwrap();
                        let found = replica.find_by_hash(&key.hash()).await.unwrap();
                        assert!(found.is_some());
                    }
                    start.elapsed()
                })
            });
        });
        assert!(replica.cached_keys() == 1 && replica.is_serving());
        rt.block_on(replica.shutdown());
    }
    for (_, (store, _), cleanup) in targets {
        rt.block_on(async {
            store.close().await.unwrap();
            if let Some((admin, name)) = cleanup {
                testing::drop_database(&admin, &name).await.unwrap();
            }
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = lookup
}
criterion_main!(benches);
