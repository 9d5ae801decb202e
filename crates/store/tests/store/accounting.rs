//! Accounting: new events counted once, the limit exact under concurrency, the allowance read in the transaction that counts against it.

use super::*;

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
on_both!(recording_counts_new_events_and_skips_duplicates);

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
on_both!(exactly_the_limit_fits_and_one_more_stores_nothing);

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
on_both!(unlimited_and_capped_allowances_are_honoured);

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
on_both!(a_new_month_starts_from_zero);

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
            let mut rng = Rng::from_seed(seeds.below(u64::MAX));
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
on_both!(concurrent_recording_never_passes_the_allowance);

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
            let mut rng = Rng::from_seed(seeds.below(u64::MAX));
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
on_both!(concurrent_duplicates_are_stored_and_counted_once);

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
on_both!(an_unknown_plan_stores_nothing);

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
        assert!(
            a_transaction_waits_on_a_lock(db).await,
            "accounting did not wait for the plan change"
        );
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
on_both!(accounting_waits_for_an_uncommitted_plan_change);

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
            let mut rng = Rng::from_seed(seeds.below(u64::MAX));
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
on_both!(lowering_the_spend_cap_binds_accounting_in_flight);

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
    let page = first_traces(db, acme, 10).await;
    assert_eq!(page.traces[0].event_count, 12);
}
on_both!(remembered_terms_are_confirmed_by_the_count);

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
on_both!(a_refused_request_leaves_no_context_id_to_remember);
