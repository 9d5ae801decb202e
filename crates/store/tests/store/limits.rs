//! What one account can make the store hold: active keys up to `max_active_keys` however
//! many requests race for the last places, and pages of a trace bounded in bytes.

use agentvista_store::StoreOptions;
use serde_json::value::to_raw_value;

use super::*;

async fn concurrent_creates_never_pass_max_active_keys(db: &TestDb) {
    let store = Store::connect_with(
        &db.url,
        StoreOptions {
            max_active_keys: 5,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    let acme = account(&store, "acme").await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let name = key_name(&format!("k{i}"));
                let new = NewKey {
                    name: &name,
                    scopes: "read".parse().unwrap(),
                    expiry: Expiry::NEVER,
                    created_by: None,
                    rate_limit: None,
                };
                store.keys().create(acme, new, noon()).await.map(|_| ())
            })
        })
        .collect();
    let (mut made, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => made += 1,
            Err(StoreError::TooManyKeys { limit: 5 }) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((made, refused), (5, 15));
    let (keys, next) = store.keys().page(acme, None, 100).await.unwrap();
    assert_eq!((keys.len(), next), (5, None));
    // Pages of 2: newest first, every key once.
    let (first, next) = store.keys().page(acme, None, 2).await.unwrap();
    let (second, _) = store.keys().page(acme, next, 2).await.unwrap();
    assert!(first[0].id.0 > first[1].id.0 && first[1].id.0 > second[0].id.0);
    store.close().await.unwrap();
}
on_both!(concurrent_creates_never_pass_max_active_keys);

async fn a_trace_page_is_planned_from_sizes_and_reads_each_context_once(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let big = "r".repeat(10_000);
    let batch = EventBatch {
        api_key_id: None,
        received_at: noon(),
        contexts: vec![NewContext {
            parent: None,
            fields: to_raw_value(&json!({"resource": {"big": big}})).unwrap(),
        }],
        events: (0..10)
            .map(|i| NewEvent {
                body: Some(to_raw_value(&json!({"i": i})).unwrap()),
                context: Some(0),
                ..event(
                    Some(&format!("e{i}")),
                    Some("t"),
                    noon() + TimeDelta::seconds(i),
                )
            })
            .collect(),
    };
    let period = Period::containing(noon());
    let plans = Plans::new(Plan::defaults());
    db.store.record(acme, period, &plans, batch).await.unwrap();
    // Each event weighs its body, its context and a little more: about 10 KB; 35 KB hold three.
    let plan = db
        .store
        .plan_trace_page(acme, "t", None, 1000, 35_000)
        .await
        .unwrap();
    assert!(
        plan.bytes() > 30_000 && plan.bytes() <= 35_000,
        "{}",
        plan.bytes()
    );
    let page = db.store.read_trace_page(plan).await.unwrap();
    assert_eq!(page.events.len(), 3);
    assert_eq!(page.contexts.len(), 1);
    let fields: serde_json::Value =
        serde_json::from_str(page.contexts.values().next().unwrap().fields.get()).unwrap();
    assert_eq!(
        fields["resource"]["big"].as_str().map(str::len),
        Some(10_000)
    );
    let own: serde_json::Value =
        serde_json::from_str(page.events[2].body.as_ref().unwrap().get()).unwrap();
    assert_eq!(own, json!({"i": 2}));
    // The cursor goes on after the last event of the page; the bound never stops a page
    // before its first event.
    let after = page.next_cursor.clone().unwrap();
    let rest = db
        .store
        .plan_trace_page(acme, "t", Some(&after), 1000, 1)
        .await
        .unwrap();
    let rest = db.store.read_trace_page(rest).await.unwrap();
    assert_eq!(rest.events.len(), 1);
    let own: serde_json::Value =
        serde_json::from_str(rest.events[0].body.as_ref().unwrap().get()).unwrap();
    assert_eq!(own, json!({"i": 3}));
    // No event past the last: an empty plan.
    let end = db
        .store
        .plan_trace_page(acme, "t", Some(&rest.events[0].cursor()), 1000, 1_000_000)
        .await
        .unwrap();
    assert!(!end.is_empty());
    let end = db.store.read_trace_page(end).await.unwrap();
    assert_eq!(end.events.len(), 6);
    assert!(end.next_cursor.is_none());
}
on_both!(a_trace_page_is_planned_from_sizes_and_reads_each_context_once);
