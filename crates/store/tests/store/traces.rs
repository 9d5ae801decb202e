//! Traces and their events: pages with cursors, contexts stored once and merged on read, trace summaries kept exact.

use super::*;

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

    let first = first_traces(db, acme, 2).await;
    let ids: Vec<_> = first.traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(ids, ["trace-4", "trace-3"]);
    assert_eq!(first.traces[0].event_count, 5);
    assert_eq!(first.traces[0].started_at, noon() + TimeDelta::minutes(4));
    assert_eq!(first.traces[0].name.as_deref(), Some("name of trace-4-0"));

    let cursor = TraceCursor::decode(&first.next_cursor.unwrap().encode()).unwrap();
    let second = db
        .store
        .events()
        .traces(acme, &TraceFilter::default(), Some(&cursor), 2)
        .await
        .unwrap();
    let ids: Vec<_> = second.traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(ids, ["trace-2", "trace-1"]);
    let third = db
        .store
        .events()
        .traces(
            acme,
            &TraceFilter::default(),
            second.next_cursor.as_ref(),
            2,
        )
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
on_both!(traces_page_newest_first_with_a_cursor);

/// The fields of a service "shop" whose resource is large, and its scope.
fn shop() -> serde_json::Value {
    json!({"resource": {"service.name": "shop", "pad": "x".repeat(1_000)},
           "scope": {"name": "sdk"}})
}

/// The fields of a service "billing" and its scope.
fn billing() -> serde_json::Value {
    json!({"resource": {"service.name": "billing"}, "scope": {"name": "sdk"}})
}

/// One request's contexts: 0 is `resource`, 1 a unit context under it, and 2 the same as 0
/// within one request (so one row all the same).
fn contexts_of_request(resource: &serde_json::Value) -> Vec<NewContext> {
    vec![
        NewContext {
            parent: None,
            fields: fields(resource.clone()),
        },
        NewContext {
            parent: Some(0),
            fields: fields(json!({"unit": "ms", "description": "latency"})),
        },
        NewContext {
            parent: None,
            fields: fields(resource.clone()),
        },
    ]
}

/// Records `events` of `account` in one request whose contexts are those of `resource`.
async fn record_from(
    db: &TestDb,
    account: AccountId,
    resource: &serde_json::Value,
    events: Vec<NewEvent>,
) {
    let batch = EventBatch {
        contexts: contexts_of_request(resource),
        ..batch(events)
    };
    db.store
        .record(account, Period::containing(noon()), &unlimited(), batch)
        .await
        .unwrap();
}

async fn context_rows(db: &TestDb) -> i64 {
    count_rows(db, "SELECT COUNT(*) AS n FROM event_contexts").await
}

async fn a_context_repeated_within_and_across_requests_is_one_row(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let first = vec![
        in_context("e1", "t", Some(0), json!({})),
        in_context("e2", "t", Some(2), json!({})),
    ];
    record_from(db, acme, &shop(), first).await;
    assert_eq!(context_rows(db).await, 2);
    let second = vec![in_context("e3", "t", Some(1), json!({}))];
    record_from(db, acme, &shop(), second).await;
    assert_eq!(
        context_rows(db).await,
        2,
        "another request reuses both rows"
    );
}
on_both!(a_context_repeated_within_and_across_requests_is_one_row);

async fn another_service_or_account_has_context_rows_of_its_own(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    record_from(
        db,
        acme,
        &shop(),
        vec![in_context("e1", "t", Some(1), json!({}))],
    )
    .await;
    // A new resource, and so a new unit context under it (same fields, other parent).
    record_from(
        db,
        acme,
        &billing(),
        vec![in_context("e2", "t", Some(1), json!({}))],
    )
    .await;
    assert_eq!(context_rows(db).await, 4);
    record_from(
        db,
        globex,
        &shop(),
        vec![in_context("e1", "t", Some(1), json!({}))],
    )
    .await;
    assert_eq!(context_rows(db).await, 6);
}
on_both!(another_service_or_account_has_context_rows_of_its_own);

async fn events_hold_no_copy_of_their_context(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let events = (0..3)
        .map(|i| in_context(&format!("e{i}"), "t", Some(i), json!({"n": i})))
        .collect();
    record_from(db, acme, &shop(), events).await;
    let pad = "x".repeat(1_000);
    let copies =
        format!("SELECT COUNT(*) AS n FROM events WHERE CAST(body AS TEXT) LIKE '%{pad}%'");
    assert_eq!(count_rows(db, "SELECT COUNT(*) AS n FROM events").await, 3);
    assert_eq!(count_rows(db, &copies).await, 0);
}
on_both!(events_hold_no_copy_of_their_context);

async fn an_event_reads_back_merged_with_its_contexts_its_own_fields_winning(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let first = vec![
        in_context("e1", "t", Some(0), json!({"span_id": "a"})),
        in_context("e2", "t", Some(1), json!({"value": 3, "scope": "own"})),
        in_context("e3", "t", None, json!({"plain": true})),
        in_context("e4", "t", Some(2), json!({})),
    ];
    record_from(db, acme, &shop(), first).await;
    record_from(
        db,
        acme,
        &billing(),
        vec![in_context("e5", "t", Some(1), json!({"value": 5}))],
    )
    .await;

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
    let (shop, billing) = (shop()["resource"].clone(), billing()["resource"].clone());
    assert_eq!(
        bodies,
        [
            (
                "e1",
                json!({"span_id": "a", "resource": shop, "scope": {"name": "sdk"}})
            ),
            (
                "e2",
                json!({"value": 3, "scope": "own", "unit": "ms", "description": "latency",
                       "resource": shop})
            ),
            ("e3", json!({"plain": true})),
            ("e4", json!({"resource": shop, "scope": {"name": "sdk"}})),
            (
                "e5",
                json!({"value": 5, "unit": "ms", "description": "latency",
                       "resource": billing, "scope": {"name": "sdk"}})
            ),
        ]
    );
}
on_both!(an_event_reads_back_merged_with_its_contexts_its_own_fields_winning);

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
on_both!(a_batch_pointing_past_its_contexts_is_refused);

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

    let page = first_traces(db, acme, 10).await;
    assert_eq!(page.traces.len(), 1);
    let trace = &page.traces[0];
    assert_eq!(trace.trace_id, "t");
    assert_eq!(trace.name.as_deref(), Some("seven"));
    assert_eq!(trace.started_at, noon() + TimeDelta::seconds(5));
    assert_eq!(trace.last_at, noon() + TimeDelta::seconds(30));
    assert_eq!(trace.event_count, 6);
}
on_both!(trace_summaries_count_only_new_events_and_keep_the_earliest_name);

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
        let page = first_traces(db, acme, 10).await;
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
on_both!(summaries_are_the_same_whether_a_batch_is_one_statement_or_several);

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
on_both!(events_of_a_trace_page_with_a_cursor);

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

    let page = first_traces(db, acme, 10).await;
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
    let page = first_traces(db, acme, 10).await;
    assert_eq!(
        (page.traces[1].event_count, page.traces[1].last_at),
        (5, noon() + TimeDelta::seconds(20))
    );
}
on_both!(the_migration_summarises_existing_traces);
