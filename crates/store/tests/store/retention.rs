//! What the retention sweep leaves: events kept for their plan's days and traces summarised from
//! what is left, in batches that never touch counts; contexts removed in two phases and never
//! under an ingestion that reuses them; audit entries kept for their own retention; one
//! sweeper at a time.

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

/// Plans that keep events 30 days ("free") and 90 days ("pro").
fn retention_plans() -> Plans {
    Plans::from_iter([
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
    ])
}

/// Three accounts with events of several ages, stored in the order they were received, as a
/// server stores them (the sweep walks ids):
/// - `legacy`, on a plan the configuration no longer has: one 400-day-old event;
/// - `globex` (90 days): trace "gone" 100 days old, trace "kept" 40 days old;
/// - `acme` (30 days): trace "old" wholly 40 days old, an event without a trace, and trace
///   "mixed" with one event 41 days old and three of the last two days.
struct Aged {
    acme: AccountId,
    globex: AccountId,
    legacy: AccountId,
    /// Every `(account, period)` an event was counted in, and the count there after storing.
    counted: Vec<(AccountId, Period, u64)>,
}

fn days_ago(days: i64) -> DateTime<Utc> {
    noon() - TimeDelta::days(days)
}

async fn aged_events(db: &TestDb) -> Aged {
    let acme = account(&db.store, "acme").await;
    let create = |name: &'static str, plan: &'static str| async move {
        db.store
            .accounts()
            .create(&AccountName::parse(name).unwrap(), plan, noon())
            .await
            .unwrap()
            .id
    };
    let globex = create("globex", "pro").await;
    let legacy = create("legacy", "legacy").await;
    // Room for every account's events, whatever its plan.
    let roomy = Plans::from_iter(["free", "pro", "legacy"].map(|name| {
        (
            name.to_owned(),
            Plan {
                monthly_events: 100_000,
                ..Plan::FREE
            },
        )
    }));
    let batches = [
        (
            legacy,
            days_ago(400),
            vec![event(Some("l0"), Some("ancient"), days_ago(400))],
        ),
        (
            globex,
            days_ago(100),
            vec![event(Some("g0"), Some("gone"), days_ago(100))],
        ),
        (
            acme,
            days_ago(40),
            vec![
                event(Some("o1"), Some("old"), days_ago(40)),
                event(Some("o2"), Some("old"), days_ago(40)),
                event(Some("m1"), Some("mixed"), days_ago(41)),
                event(None, None, days_ago(40)),
            ],
        ),
        (
            globex,
            days_ago(40),
            vec![event(Some("g1"), Some("kept"), days_ago(40))],
        ),
        (
            acme,
            days_ago(1),
            vec![
                event(None, Some("mixed"), days_ago(2)),
                event(Some("m2"), Some("mixed"), days_ago(1)),
                event(Some("m3"), Some("mixed"), noon()),
            ],
        ),
    ];
    let mut periods = Vec::new();
    for (account, received, events) in batches {
        let period = Period::containing(received);
        let batch = EventBatch {
            api_key_id: None,
            received_at: received,
            contexts: Vec::new(),
            events,
        };
        db.store
            .record(account, period, &roomy, batch)
            .await
            .unwrap();
        periods.push((account, period));
    }
    let mut counted = Vec::new();
    for (account, period) in periods {
        counted.push((
            account,
            period,
            db.store.used(account, period).await.unwrap(),
        ));
    }
    Aged {
        acme,
        globex,
        legacy,
        counted,
    }
}

/// `(trace id, event count, name, start)` of every trace of `account`, newest first.
async fn listed(
    db: &TestDb,
    account: AccountId,
) -> Vec<(String, u64, Option<String>, DateTime<Utc>)> {
    first_traces(db, account, 50)
        .await
        .traces
        .into_iter()
        .map(|t| (t.trace_id, t.event_count, t.name, t.started_at))
        .collect()
}

async fn each_plan_keeps_events_for_its_own_number_of_days(db: &TestDb) {
    let aged = aged_events(db).await;
    let swept = db
        .store
        .sweep_retention(&retention_plans(), noon(), &sweep(100))
        .await
        .unwrap();
    assert_eq!(swept.deleted, 5, "{swept:?}");
    let kept: Vec<String> = listed(db, aged.globex)
        .await
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert_eq!(kept, ["kept"], "90 days keep 40, not 100");
    assert_eq!(db.store.events().count(aged.acme).await.unwrap(), 3);
    assert_eq!(
        db.store.events().count(aged.legacy).await.unwrap(),
        1,
        "a plan the configuration no longer has keeps its events"
    );
}
on_both!(each_plan_keeps_events_for_its_own_number_of_days);

async fn a_trace_past_retention_goes_whole_and_a_mixed_one_is_summarised_again(db: &TestDb) {
    let aged = aged_events(db).await;
    db.store
        .sweep_retention(&retention_plans(), noon(), &sweep(100))
        .await
        .unwrap();
    assert_eq!(
        listed(db, aged.acme).await,
        [(
            "mixed".to_owned(),
            3,
            Some("name of m2".to_owned()),
            days_ago(2)
        )],
        "the old trace is gone; the mixed one is summarised from what is left, its earliest \
         named event naming it"
    );
    let old = db
        .store
        .events()
        .of_trace(aged.acme, "old", None, 10)
        .await
        .unwrap();
    assert!(old.events.is_empty());
}
on_both!(a_trace_past_retention_goes_whole_and_a_mixed_one_is_summarised_again);

async fn the_sweep_deletes_in_batches_and_never_touches_counts(db: &TestDb) {
    let aged = aged_events(db).await;
    // Two events a batch: several transactions.
    let swept = db
        .store
        .sweep_retention(&retention_plans(), noon(), &sweep(2))
        .await
        .unwrap();
    assert_eq!(swept.deleted, 5, "{swept:?}");
    assert!(swept.batches >= 3, "{swept:?}");
    for (account, period, before) in aged.counted {
        assert_eq!(db.store.used(account, period).await.unwrap(), before);
    }
    let again = db
        .store
        .sweep_retention(&retention_plans(), noon(), &sweep(2))
        .await
        .unwrap();
    assert_eq!(again.deleted, 0, "nothing left to do");
}
on_both!(the_sweep_deletes_in_batches_and_never_touches_counts);

async fn a_later_sweep_takes_what_has_aged_since(db: &TestDb) {
    let aged = aged_events(db).await;
    db.store
        .sweep_retention(&retention_plans(), noon(), &sweep(100))
        .await
        .unwrap();
    let later = db
        .store
        .sweep_retention(
            &retention_plans(),
            noon() + TimeDelta::days(60),
            &sweep(100),
        )
        .await
        .unwrap();
    assert_eq!(
        later.deleted, 4,
        "acme's recent three and globex's 40-day-old one"
    );
    assert!(listed(db, aged.acme).await.is_empty());
    assert_eq!(db.store.events().count(aged.legacy).await.unwrap(), 1);
}
on_both!(a_later_sweep_takes_what_has_aged_since);
