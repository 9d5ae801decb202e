//! Traces as trees with outcomes: each event's parent, end, status, model and usage stored in
//! columns; each trace's errors, token sums and end kept in its summary on every write path,
//! taken back by the retention sweep; the list filtered by name, start and errors.

use std::time::Duration;

use agentvista_store::{SpanFields, SpanStatus, Sweep, TokenUsage, TraceSummary};

use super::*;

/// `id` in trace `trace`, `ms` milliseconds after noon, with `span`'s fields.
fn spanned(id: &str, trace: &str, ms: i64, span: SpanFields) -> NewEvent {
    NewEvent {
        span: Some(Box::new(span)),
        ..event(Some(id), Some(trace), noon() + TimeDelta::milliseconds(ms))
    }
}

/// A span that lasted `ms` milliseconds from `start` milliseconds after noon.
fn lasting(parent: Option<&str>, start: i64, ms: i64, status: Option<SpanStatus>) -> SpanFields {
    SpanFields {
        parent_id: parent.map(str::to_owned),
        end_time: Some(noon() + TimeDelta::milliseconds(start + ms)),
        status,
        status_message: status
            .filter(|s| *s == SpanStatus::Error)
            .map(|_| "index unavailable".to_owned()),
        ..SpanFields::default()
    }
}

/// A model call of `input` and `output` tokens.
fn model_call(parent: &str, input: u64, output: u64) -> SpanFields {
    SpanFields {
        parent_id: Some(parent.to_owned()),
        model: Some("gpt-4o-mini".to_owned()),
        usage: Some(TokenUsage {
            input_tokens: input,
            output_tokens: output,
        }),
        ..SpanFields::default()
    }
}

async fn summary(db: &TestDb, account: AccountId, trace: &str) -> TraceSummary {
    db.store
        .events()
        .summary(account, trace)
        .await
        .unwrap()
        .expect("the trace is listed")
}

/// The span fields of `trace`'s events (its first 100), by event id.
async fn spans_of(
    db: &TestDb,
    account: AccountId,
    trace: &str,
) -> std::collections::HashMap<String, SpanFields> {
    let page = db
        .store
        .events()
        .of_trace(account, trace, None, 100)
        .await
        .unwrap();
    page.events
        .into_iter()
        .filter_map(|e| Some((e.client_event_id?, e.span)))
        .collect()
}

async fn record_at(db: &TestDb, account: AccountId, events: Vec<NewEvent>) {
    db.store
        .record(
            account,
            Period::containing(noon()),
            &unlimited(),
            batch(events),
        )
        .await
        .unwrap();
}

async fn fields_are_stored_and_summed_whatever_the_order_they_arrive_in(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    // The child first, alone; then its parent with a retry of the child (a duplicate, which
    // adds nothing); then a model call in a request of its own.
    let child = spanned(
        "search",
        "t",
        35,
        lasting(Some("root"), 35, 14, Some(SpanStatus::Error)),
    );
    record_at(db, acme, vec![child.clone()]).await;
    let root = spanned("root", "t", 0, lasting(None, 0, 56, Some(SpanStatus::Ok)));
    record_at(db, acme, vec![root, child]).await;
    record_at(
        db,
        acme,
        vec![spanned("chat", "t", 14, model_call("root", 12, 34))],
    )
    .await;

    let trace = summary(db, acme, "t").await;
    assert_eq!(trace.event_count, 3);
    assert_eq!(trace.status, Some(SpanStatus::Error));
    assert_eq!(trace.error_count, 1);
    assert_eq!(
        trace.usage,
        Some(TokenUsage {
            input_tokens: 12,
            output_tokens: 34
        })
    );
    assert_eq!(trace.duration(), Some(TimeDelta::milliseconds(56)));

    let spans = spans_of(db, acme, "t").await;
    let by_id = |id: &str| spans[id].clone();
    assert_eq!(
        by_id("search"),
        lasting(Some("root"), 35, 14, Some(SpanStatus::Error))
    );
    assert_eq!(by_id("chat"), model_call("root", 12, 34));
    assert_eq!(
        by_id("root").duration_from(noon()),
        Some(TimeDelta::milliseconds(56))
    );
}
on_both!(fields_are_stored_and_summed_whatever_the_order_they_arrive_in);

async fn every_write_path_sums_alike(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    // 1,200 events: more than one statement's; every third failed, every fifth a model call.
    let many = |trace: &str| -> Vec<NewEvent> {
        (0..1200)
            .map(|i| {
                let span = if i % 5 == 0 {
                    model_call("root", 2, 3)
                } else {
                    let status = (i % 3 == 0).then_some(SpanStatus::Error);
                    lasting(Some("root"), i, 10, status.or(Some(SpanStatus::Ok)))
                };
                spanned(&format!("{trace}-{i}"), trace, i, span)
            })
            .collect()
    };
    record_at(db, acme, many("large")).await;
    // The same events one statement at a time, with a duplicate in each request.
    for (i, chunk) in many("small").chunks(100).enumerate() {
        let mut events = chunk.to_vec();
        if i > 0 {
            events.push(many("small")[0].clone());
        }
        record_at(db, acme, events).await;
    }
    let (large, small) = (
        summary(db, acme, "large").await,
        summary(db, acme, "small").await,
    );
    let failed = (0..1200).filter(|i| i % 5 != 0 && i % 3 == 0).count() as u64;
    assert_eq!(large.error_count, failed);
    assert_eq!(
        large.usage,
        Some(TokenUsage {
            input_tokens: 240 * 2,
            output_tokens: 240 * 3
        })
    );
    // The last ok span starts at 1,199 ms and lasts 10.
    assert_eq!(large.duration(), Some(TimeDelta::milliseconds(1209)));
    let strip = |s: TraceSummary| {
        (
            s.error_count,
            s.status,
            s.usage,
            s.duration(),
            s.event_count,
        )
    };
    assert_eq!(strip(large), strip(small));
}
on_both!(every_write_path_sums_alike);

async fn the_sweep_takes_back_what_deleted_events_added(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let old = noon() - TimeDelta::days(40);
    let aged = EventBatch {
        received_at: old,
        ..batch(vec![
            spanned(
                "late-end",
                "t",
                0,
                lasting(None, 0, 900, Some(SpanStatus::Error)),
            ),
            spanned("call", "t", 5, model_call("late-end", 100, 200)),
        ])
    };
    db.store
        .record(acme, Period::containing(old), &unlimited(), aged)
        .await
        .unwrap();
    record_at(
        db,
        acme,
        vec![
            spanned("kept", "t", 10, lasting(None, 10, 20, Some(SpanStatus::Ok))),
            spanned("kept-call", "t", 12, model_call("kept", 1, 2)),
        ],
    )
    .await;
    assert_eq!(summary(db, acme, "t").await.error_count, 1);

    let sweep = Sweep {
        batch: 1,
        pause: Duration::ZERO,
        ..Sweep::default()
    };
    let swept = db
        .store
        .sweep_retention(&unlimited(), noon(), &sweep)
        .await
        .unwrap();
    assert_eq!(swept.deleted, 2);
    let trace = summary(db, acme, "t").await;
    assert_eq!(trace.event_count, 2);
    assert_eq!((trace.error_count, trace.status), (0, Some(SpanStatus::Ok)));
    assert_eq!(
        trace.usage,
        Some(TokenUsage {
            input_tokens: 1,
            output_tokens: 2
        })
    );
    // The 900 ms span that ended it last is gone: it ends with the kept one now.
    assert_eq!(trace.ended_at, Some(noon() + TimeDelta::milliseconds(30)));
    assert_eq!(trace.duration(), Some(TimeDelta::milliseconds(20)));
}
on_both!(the_sweep_takes_back_what_deleted_events_added);

/// Traces `names[i]` started `i` minutes after noon, the ones in `failed` with an error.
async fn named_traces(db: &TestDb, account: AccountId, names: &[&str], failed: &[&str]) {
    let events = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let status = if failed.contains(name) {
                SpanStatus::Error
            } else {
                SpanStatus::Ok
            };
            let at = i64::try_from(i).unwrap() * 60_000;
            NewEvent {
                name: Some((*name).to_owned()),
                ..spanned(name, name, at, lasting(None, at, 5, Some(status)))
            }
        })
        .collect();
    record_at(db, account, events).await;
}

async fn ids(db: &TestDb, account: AccountId, filter: &TraceFilter) -> Vec<String> {
    let page = db
        .store
        .events()
        .traces(account, filter, None, 50)
        .await
        .unwrap();
    page.traces.into_iter().map(|t| t.trace_id).collect()
}

async fn the_list_filters_by_name_start_and_errors(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let names = [
        "Run Agent",
        "run_agent_v2",
        "100% done",
        "Ünïcode RUN",
        "plan",
    ];
    named_traces(db, acme, &names, &["run_agent_v2", "plan"]).await;
    let by_name = |name: &str| TraceFilter {
        name: Some(name.to_owned()),
        ..TraceFilter::default()
    };
    assert_eq!(
        ids(db, acme, &by_name("RUN")).await,
        ["Ünïcode RUN", "run_agent_v2", "Run Agent"]
    );
    // `_`, `%` and `\` match themselves, not any character.
    assert_eq!(ids(db, acme, &by_name("n_a")).await, ["run_agent_v2"]);
    assert_eq!(ids(db, acme, &by_name("0%")).await, ["100% done"]);
    assert!(ids(db, acme, &by_name("\\")).await.is_empty());
    // ASCII letters only are matched in either case.
    assert!(ids(db, acme, &by_name("ünïcode")).await.is_empty());
    assert_eq!(ids(db, acme, &by_name("Ünïcode")).await, ["Ünïcode RUN"]);

    let errors = TraceFilter {
        errors_only: true,
        ..TraceFilter::default()
    };
    assert_eq!(ids(db, acme, &errors).await, ["plan", "run_agent_v2"]);
    let window = TraceFilter {
        from: Some(noon() + TimeDelta::minutes(1)),
        to: Some(noon() + TimeDelta::minutes(3)),
        ..TraceFilter::default()
    };
    assert_eq!(ids(db, acme, &window).await, ["100% done", "run_agent_v2"]);
    let everything = TraceFilter {
        name: Some("a".into()),
        errors_only: true,
        ..window
    };
    assert_eq!(ids(db, acme, &everything).await, ["run_agent_v2"]);
}
on_both!(the_list_filters_by_name_start_and_errors);

async fn a_cursor_goes_on_under_its_own_filters_only(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    named_traces(db, acme, &["a1", "b", "a2", "a3"], &[]).await;
    let filter = TraceFilter {
        name: Some("a".into()),
        ..TraceFilter::default()
    };
    let events = db.store.events();
    let first = events.traces(acme, &filter, None, 2).await.unwrap();
    let next = first.next_cursor.expect("a third match follows");
    let second = events.traces(acme, &filter, Some(&next), 2).await.unwrap();
    let names: Vec<_> = first
        .traces
        .iter()
        .chain(&second.traces)
        .map(|t| t.trace_id.as_str())
        .collect();
    assert_eq!(names, ["a3", "a2", "a1"]);
    assert_eq!(second.next_cursor, None);
    for other in [
        TraceFilter::default(),
        TraceFilter {
            errors_only: true,
            ..filter.clone()
        },
    ] {
        assert!(matches!(
            events.traces(acme, &other, Some(&next), 2).await,
            Err(StoreError::CursorForOtherFilters)
        ));
    }
}
on_both!(a_cursor_goes_on_under_its_own_filters_only);

async fn a_name_search_stops_after_its_window_and_says_where_to_go_on(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    // The one match is the oldest trace; above it, a full window of others.
    named_traces(db, acme, &["needle"], &[]).await;
    let others = agentvista_store::NAME_SEARCH_WINDOW + 10;
    let sql = if db.url.starts_with("postgres") {
        format!(
            "INSERT INTO traces (account_id, trace_id, name, started_at, last_at, event_count) \
             SELECT {id}, 'hay-' || n, 'hay', TIMESTAMPTZ '2026-12-01 13:00:00+00' \
             + n * INTERVAL '1 second', TIMESTAMPTZ '2026-12-01 13:00:00+00', 1 \
             FROM generate_series(1, {others}) AS n",
            id = acme.0
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {others}) \
             INSERT INTO traces (account_id, trace_id, name, started_at, last_at, event_count) \
             SELECT {id}, 'hay-' || i, 'hay', \
             strftime('%Y-%m-%dT%H:%M:%S+00:00', '2026-12-01 13:00:00', '+' || i || ' seconds'), \
             '2026-12-01T13:00:00+00:00', 1 FROM n",
            id = acme.0
        )
    };
    let conn = Database::connect(&db.url).await.unwrap();
    conn.execute_unprepared(&sql).await.unwrap();
    conn.close().await.unwrap();
    let filter = TraceFilter {
        name: Some("needle".into()),
        ..TraceFilter::default()
    };
    let events = db.store.events();
    let first = events.traces(acme, &filter, None, 50).await.unwrap();
    assert!(first.traces.is_empty(), "the window held no match");
    let next = first.next_cursor.expect("the search goes on");
    let second = events.traces(acme, &filter, Some(&next), 50).await.unwrap();
    let found: Vec<_> = second.traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(found, ["needle"]);
    assert_eq!(second.next_cursor, None);
}
on_both!(a_name_search_stops_after_its_window_and_says_where_to_go_on);

/// An OTLP-shaped span as the decoder stores it: in a context, its own fields in its body.
fn stored_span(id: &str, body: serde_json::Value) -> NewEvent {
    NewEvent {
        context: Some(0),
        body: Some(fields(body)),
        ..event(Some(id), Some("t"), noon())
    }
}

/// The test's stand-in for the decoder's mapping: `parent`, `end_ms` and `failed` read back.
fn mapping(trace: &str, body: &serde_json::Value) -> SpanFields {
    SpanFields {
        parent_id: body["parent"].as_str().map(|p| format!("{trace}-{p}")),
        end_time: body["end_ms"]
            .as_i64()
            .map(|ms| noon() + TimeDelta::milliseconds(ms)),
        status: body["failed"].as_bool().map(|failed| {
            if failed {
                SpanStatus::Error
            } else {
                SpanStatus::Ok
            }
        }),
        ..SpanFields::default()
    }
}

async fn the_span_fields_job_fills_spans_stored_before_their_columns(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let spans = EventBatch {
        contexts: vec![NewContext {
            parent: None,
            fields: fields(json!({"resource": {"service.name": "agent"}})),
        }],
        ..batch(vec![
            stored_span("root", json!({"end_ms": 56, "failed": false})),
            stored_span(
                "child",
                json!({"parent": "root", "end_ms": 30, "failed": true}),
            ),
            stored_span("bare", json!({})),
            // A batch event (no context) keeps what it was sent with: nothing.
            event(Some("batch-event"), Some("t"), noon()),
        ])
    };
    db.store
        .record(acme, Period::containing(noon()), &unlimited(), spans)
        .await
        .unwrap();
    // As if those were stored before the columns: the migration that added them runs again
    // and finds every event already there.
    let conn = Database::connect(&db.url).await.unwrap();
    Migrator::down(&conn, Some(1)).await.unwrap();
    Migrator::up(&conn, None).await.unwrap();
    conn.close().await.unwrap();
    let late = EventBatch {
        contexts: vec![NewContext {
            parent: None,
            fields: fields(json!({"resource": {"service.name": "agent"}})),
        }],
        ..batch(vec![stored_span("late", json!({"failed": true}))])
    };
    db.store
        .record(acme, Period::containing(noon()), &unlimited(), late)
        .await
        .unwrap();
    assert_eq!(summary(db, acme, "t").await.status, None, "not filled yet");

    let sweep = Sweep {
        batch: 2,
        pause: Duration::ZERO,
        ..Sweep::default()
    };
    let filled = db.store.fill_span_fields(&sweep, &mapping).await.unwrap();
    assert!(filled.completed && filled.done, "{filled:?}");
    assert_eq!((filled.scanned, filled.filled, filled.batches), (3, 2, 2));
    let trace = summary(db, acme, "t").await;
    assert_eq!(
        (trace.status, trace.error_count),
        (Some(SpanStatus::Error), 1)
    );
    assert_eq!(trace.duration(), Some(TimeDelta::milliseconds(56)));
    let spans = spans_of(db, acme, "t").await;
    let span_of = |id: &str| spans[id].clone();
    assert_eq!(span_of("child").parent_id.as_deref(), Some("t-root"));
    assert_eq!(span_of("child").status, Some(SpanStatus::Error));
    assert_eq!(span_of("bare"), SpanFields::default());
    assert_eq!(span_of("batch-event"), SpanFields::default());
    assert_eq!(
        span_of("late"),
        SpanFields::default(),
        "stored after: not the job's"
    );

    // Done, it reads its progress and stops.
    let again = db.store.fill_span_fields(&sweep, &mapping).await.unwrap();
    assert_eq!((again.done, again.scanned, again.batches), (true, 0, 0));
}
on_both!(the_span_fields_job_fills_spans_stored_before_their_columns);

async fn a_sweep_repairs_thousands_of_traces_in_one_batch(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let old = noon() - TimeDelta::days(40);
    const TRACES: usize = 3000;
    let failed_call = SpanFields {
        status: Some(SpanStatus::Error),
        ..model_call("none", 5, 5)
    };
    let aged = EventBatch {
        received_at: old,
        ..batch(
            (0..TRACES)
                .map(|t| {
                    spanned(
                        &format!("old-{t}"),
                        &format!("t{t}"),
                        0,
                        failed_call.clone(),
                    )
                })
                .collect(),
        )
    };
    db.store
        .record(acme, Period::containing(old), &unlimited(), aged)
        .await
        .unwrap();
    let kept = (0..TRACES)
        .map(|t| {
            spanned(
                &format!("new-{t}"),
                &format!("t{t}"),
                1,
                model_call("none", 1, 2),
            )
        })
        .collect();
    record_at(db, acme, kept).await;
    // One batch takes every aged event: its repair touches every trace, more than one
    // statement's worth of values on either database.
    let sweep = Sweep {
        batch: 10_000,
        pause: Duration::ZERO,
        ..Sweep::default()
    };
    let swept = db
        .store
        .sweep_retention(&unlimited(), noon(), &sweep)
        .await
        .unwrap();
    assert_eq!(swept.deleted, TRACES as u64);
    for t in [0, TRACES / 2, TRACES - 1] {
        let trace = summary(db, acme, &format!("t{t}")).await;
        assert_eq!((trace.event_count, trace.error_count), (1, 0));
        assert_eq!(
            trace.usage,
            Some(TokenUsage {
                input_tokens: 1,
                output_tokens: 2
            })
        );
    }
}
on_both!(a_sweep_repairs_thousands_of_traces_in_one_batch);
