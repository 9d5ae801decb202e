//! What the retention sweep leaves: contexts removed in two phases and never under an
//! ingestion that reuses them, audit entries kept for their own retention, one sweeper at a
//! time.

use std::time::Duration;

use agentvista_store::{AuditAction, NewAuditEntry, Origin, Sweep};

use super::*;

/// A sweep without pauses whose contexts may go as soon as they are marked.
fn eager() -> Sweep {
    Sweep {
        batch: 100,
        pause: Duration::ZERO,
        context_grace: Duration::ZERO,
        ..Sweep::default()
    }
}

/// A sweep at noon under plans that keep events 30 days.
async fn sweep_at_noon(db: &TestDb, sweep: &Sweep) -> agentvista_store::Swept {
    db.store
        .sweep_retention(&unlimited(), noon(), sweep)
        .await
        .unwrap()
}

/// A resource context and a scope context under it.
fn service(name: &str) -> Vec<NewContext> {
    vec![
        NewContext {
            parent: None,
            fields: fields(json!({"resource": {"service.name": name}})),
        },
        NewContext {
            parent: Some(0),
            fields: fields(json!({"scope": {"name": "sdk"}})),
        },
    ]
}

/// Records one event `id` of trace `id` in `service`'s scope context, received at `received`.
async fn record_in(
    store: &Store,
    account: AccountId,
    service_name: &str,
    id: &str,
    received: DateTime<Utc>,
) {
    let batch = EventBatch {
        api_key_id: None,
        received_at: received,
        contexts: service(service_name),
        events: vec![in_context(id, id, Some(1), json!({"n": 1}))],
    };
    store
        .record(account, Period::containing(received), &unlimited(), batch)
        .await
        .unwrap();
}

/// `(id, marked)` of every context, by id.
async fn contexts_of(db: &TestDb) -> Vec<(i64, bool)> {
    let conn = Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT id, orphaned_at FROM event_contexts ORDER BY id",
        ))
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "id").unwrap(),
                r.try_get::<Option<i64>>("", "orphaned_at")
                    .unwrap()
                    .is_some(),
            )
        })
        .collect()
}

/// The merged body of the one event of trace `trace`.
async fn body_of(store: &Store, account: AccountId, trace: &str) -> serde_json::Value {
    let page = store
        .events()
        .of_trace(account, trace, None, 10)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1, "{trace}");
    page.events[0].body.clone().unwrap()
}

async fn unreferenced_contexts_go_in_two_phases_children_first(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let old = noon() - TimeDelta::days(40);
    record_in(&db.store, acme, "checkout", "gone", old).await;
    record_in(&db.store, acme, "billing", "kept", noon()).await;
    let all = contexts_of(db).await;
    assert_eq!(all.len(), 4);
    let (resource, scope) = (all[0].0, all[1].0);

    // Phase one: the old event goes, its scope context is marked (its resource still has a
    // child); with an hour's grace nothing is deleted yet.
    let swept = sweep_at_noon(db, &sweep(100)).await;
    assert!(swept.completed);
    assert_eq!((swept.deleted, swept.contexts_deleted), (1, 0));
    assert!(swept.longest_transaction > Duration::ZERO);
    let marked: Vec<i64> = contexts_of(db)
        .await
        .into_iter()
        .filter(|c| c.1)
        .map(|c| c.0)
        .collect();
    assert_eq!(marked, [scope]);
    let again = sweep_at_noon(db, &sweep(100)).await;
    assert_eq!(again.contexts_deleted, 0, "the grace has not passed");

    // Phase two: the scope goes and its resource is marked; the next sweep takes that.
    let swept = sweep_at_noon(db, &eager()).await;
    assert_eq!(swept.contexts_deleted, 1);
    let left = contexts_of(db).await;
    assert_eq!(left.len(), 3);
    assert!(left.contains(&(resource, false)));
    let swept = sweep_at_noon(db, &eager()).await;
    assert_eq!(swept.contexts_deleted, 1);
    assert_eq!(
        contexts_of(db).await.iter().filter(|c| !c.1).count(),
        2,
        "billing's two contexts stay, unmarked"
    );
    assert_eq!(
        body_of(&db.store, acme, "kept").await,
        json!({"n": 1, "resource": {"service.name": "billing"}, "scope": {"name": "sdk"}})
    );

    // The same service sends again: its contexts are stored anew, and its events read them.
    record_in(&db.store, acme, "checkout", "back", noon()).await;
    assert_eq!(contexts_of(db).await.len(), 4);
    assert_eq!(
        body_of(&db.store, acme, "back").await,
        json!({"n": 1, "resource": {"service.name": "checkout"}, "scope": {"name": "sdk"}})
    );
}
on_both!(unreferenced_contexts_go_in_two_phases_children_first);

async fn a_marked_context_an_ingestion_reuses_is_kept(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let old = noon() - TimeDelta::days(40);
    record_in(&db.store, acme, "checkout", "gone", old).await;
    sweep_at_noon(db, &sweep(100)).await;
    assert_eq!(contexts_of(db).await.iter().filter(|c| c.1).count(), 1);

    // This store remembers the context's id as seen 40 days ago: a job of today reads the row
    // again, raises its day and clears the mark in its transaction.
    record_in(&db.store, acme, "checkout", "today", noon()).await;
    assert!(
        contexts_of(db).await.iter().all(|c| !c.1),
        "the mark is cleared"
    );
    // Another process reads it as it is now, and reuses it untouched.
    let other = Store::connect(&db.url).await.unwrap();
    record_in(&other, acme, "checkout", "read", noon()).await;
    other.close().await.unwrap();

    // Marked again by hand, as if the sweep had raced the ingestion: seen today, so the
    // deleting phase keeps it and clears the mark.
    let conn = Database::connect(&db.url).await.unwrap();
    conn.execute_unprepared("UPDATE event_contexts SET orphaned_at = 0")
        .await
        .unwrap();
    conn.close().await.unwrap();
    let swept = sweep_at_noon(db, &eager()).await;
    assert_eq!(swept.contexts_deleted, 0);
    assert!(contexts_of(db).await.iter().all(|c| !c.1));
    for trace in ["today", "read"] {
        assert_eq!(
            body_of(&db.store, acme, trace).await,
            json!({"n": 1, "resource": {"service.name": "checkout"}, "scope": {"name": "sdk"}})
        );
    }
}
on_both!(a_marked_context_an_ingestion_reuses_is_kept);

async fn audit_entries_are_kept_for_their_own_retention(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let origin = Origin::default();
    for days in [500, 401, 399, 10, 0] {
        db.store
            .audit()
            .append(NewAuditEntry {
                account: acme,
                action: AuditAction::KeyCreated,
                actor: "cli".into(),
                target: Some(format!("{days} days")),
                origin: &origin,
                detail: None,
                at: noon() - TimeDelta::days(days),
            })
            .await
            .unwrap();
    }
    let kept = |db: &TestDb| {
        let store = db.store.clone();
        async move {
            let page = store.audit().page(acme, None, 50).await.unwrap();
            page.entries
                .into_iter()
                .filter_map(|e| e.target)
                .collect::<Vec<_>>()
        }
    };
    let forever = Sweep {
        audit_retention: None,
        ..sweep(2)
    };
    let swept = sweep_at_noon(db, &forever).await;
    assert_eq!(swept.audit_deleted, 0);
    // Two a batch: the walk goes on past a full batch and stops at the first entry kept.
    let swept = sweep_at_noon(db, &sweep(2)).await;
    assert_eq!(swept.audit_deleted, 2, "{swept:?}");
    assert_eq!(kept(db).await, ["0 days", "10 days", "399 days"]);
}
on_both!(audit_entries_are_kept_for_their_own_retention);

async fn one_replica_sweeps_at_a_time(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    record_in(
        &db.store,
        acme,
        "checkout",
        "gone",
        noon() - TimeDelta::days(40),
    )
    .await;
    let conn = Database::connect(&db.url).await.unwrap();
    let held = format!(
        "UPDATE sweeps SET holder = 'another replica', lease_until = {} WHERE name = 'retention'",
        i64::MAX / 2
    );
    conn.execute_unprepared(&held).await.unwrap();
    let swept = sweep_at_noon(db, &sweep(100)).await;
    assert_eq!(
        swept,
        agentvista_store::Swept::default(),
        "nothing done, and it says so"
    );
    assert_eq!(db.store.events().count(acme).await.unwrap(), 1);

    // A lease that ran out on the database's clock is taken over; the sweep gives it back.
    conn.execute_unprepared("UPDATE sweeps SET lease_until = 1 WHERE name = 'retention'")
        .await
        .unwrap();
    let swept = sweep_at_noon(db, &sweep(100)).await;
    assert!(swept.completed);
    assert_eq!(swept.deleted, 1);
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT holder, lease_until FROM sweeps WHERE name = 'retention'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        row.try_get::<String>("", "holder").unwrap(),
        "another replica"
    );
    assert_eq!(
        row.try_get::<i64>("", "lease_until").unwrap(),
        0,
        "released"
    );
    conn.close().await.unwrap();
}
on_both!(one_replica_sweeps_at_a_time);

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
on_both!(events_past_retention_are_deleted_in_batches_and_their_traces_follow);
