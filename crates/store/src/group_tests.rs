//! Group commit, driven through the ledger of a real SQLite store.

use std::time::Duration;

use agentvista_quota::{Period, RecordError, Recorded};
use chrono::Utc;
use sea_orm::ConnectionTrait;

use crate::ledger::PANIC_MARKER;
use crate::{AccountId, EventBatch, NewEvent, Store, StoreError, StoreOptions};

/// Plans under which the tests' accounts (all on `free`) may store `limit` events a month.
fn free_plan(limit: u64) -> agentvista_quota::Plans {
    agentvista_quota::Plans::from_iter([(
        "free".to_owned(),
        agentvista_quota::Plan {
            monthly_events: limit,
            overage_cents_per_1000_events: 0,
            retention_days: 30,
        },
    )])
}

fn batch(request: usize) -> EventBatch {
    batch_of(
        &(0..3)
            .map(|i| format!("r{request}-e{i}"))
            .collect::<Vec<_>>(),
    )
}

fn batch_of(ids: &[String]) -> EventBatch {
    let events = ids
        .iter()
        .map(|id| NewEvent {
            client_event_id: Some(id.clone()),
            event_type: "span".into(),
            trace_id: None,
            name: None,
            timestamp: Utc::now(),
            body: None,
            context: None,
            span: None,
        })
        .collect();
    EventBatch {
        api_key_id: None,
        received_at: Utc::now(),
        contexts: Vec::new(),
        events,
    }
}

/// A store on a SQLite file, migrated, with one account.
async fn sqlite(busy_timeout: Duration) -> (tempfile::TempDir, Store, AccountId) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let options = StoreOptions {
        busy_timeout,
        ..StoreOptions::default()
    };
    let store = Store::connect_with(&url, options).await.unwrap();
    store.migrate().await.unwrap();
    let account = store
        .accounts()
        .create(&"a".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    (dir, store, account)
}

type Answer = Result<Recorded, RecordError<StoreError>>;

/// Records `batches` as one group: the writer is held until all of them are queued.
async fn as_one_group(store: &Store, account: AccountId, batches: Vec<EventBatch>) -> Vec<Answer> {
    let committer = store.ledger.committer().unwrap();
    let release = committer.stall().await;
    let n = batches.len();
    let period = Period::containing(Utc::now());
    let requests: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let store = store.clone();
            tokio::spawn(
                async move { store.record(account, period, &free_plan(1000), batch).await },
            )
        })
        .collect();
    while committer.queued() < n {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    assert!(
        committer.largest_group() >= n,
        "the requests were not grouped"
    );
    answers
}

async fn stored_and_used(store: &Store, account: AccountId) -> (u64, u64) {
    let period = Period::containing(Utc::now());
    (
        store.events().count(account).await.unwrap(),
        store.used(account, period).await.unwrap(),
    )
}

/// A trigger failing the insert of the event with id `boom` in the way `raise` says.
async fn add_fault(store: &Store, raise: &str) {
    store
        .write
        .execute_unprepared(&format!(
            "CREATE TRIGGER fault BEFORE INSERT ON events \
             WHEN NEW.client_event_id = 'boom' BEGIN SELECT RAISE({raise}, 'injected'); END"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_requests_share_a_commit_and_each_stays_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let account = store
        .accounts()
        .create(&"a".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    let period = Period::containing(Utc::now());

    // Eight requests of 3 events against 10: three fit, five are refused, whatever order
    // the group runs them in; all are queued before the writer task first runs.
    let requests: Vec<_> = (0..8)
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record(account, period, &free_plan(10), batch(r))
                    .await
            })
        })
        .collect();
    let (mut stored, mut refused) = (0, 0);
    for request in requests {
        match request.await.unwrap() {
            Ok(recorded) => stored += recorded.accepted,
            Err(RecordError::Exceeded(_)) => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((stored, refused), (9, 5));
    assert_eq!(store.used(account, period).await.unwrap(), 9);
    assert_eq!(
        store.events().count(account).await.unwrap(),
        9,
        "refused savepoints left nothing"
    );
    let largest = store.ledger.committer().unwrap().largest_group();
    assert!(
        largest > 1,
        "the requests were never grouped (largest group {largest})"
    );
}

/// One request of a group fails inside its savepoint: no request of the group is stored
/// or counted, the culprit gets its error and the others an outage to retry, and the next
/// group commits.
async fn a_failing_request_fails_its_whole_group(raise: &str) {
    let (_dir, store, account) = sqlite(Duration::from_secs(5)).await;
    add_fault(&store, raise).await;
    let ids = |r: usize| (0..3).map(|i| format!("r{r}-e{i}")).collect::<Vec<_>>();
    let mut poisoned = ids(2);
    poisoned.push("boom".into());
    let group = vec![
        batch_of(&ids(0)),
        batch_of(&ids(1)),
        batch_of(&poisoned),
        batch_of(&ids(3)),
    ];
    for (i, answer) in as_one_group(&store, account, group)
        .await
        .into_iter()
        .enumerate()
    {
        match answer {
            Err(RecordError::Storage(StoreError::Database(e))) if i == 2 => {
                assert!(e.to_string().contains("injected"), "{e}");
            }
            Err(RecordError::Storage(StoreError::Unavailable(_))) if i != 2 => {}
            other => panic!("{raise}: request {i} of the failed group got {other:?}"),
        }
    }
    assert_eq!(stored_and_used(&store, account).await, (0, 0), "{raise}");

    let group = vec![batch_of(&ids(4)), batch_of(&ids(5))];
    for answer in as_one_group(&store, account, group).await {
        assert_eq!(answer.unwrap().accepted, 3, "{raise}");
    }
    assert_eq!(stored_and_used(&store, account).await, (6, 6), "{raise}");
}

#[tokio::test]
async fn a_request_whose_error_rolls_back_the_transaction_fails_its_whole_group() {
    // SQLite rolls back the whole transaction: the dangerous case, where the next
    // savepoint would open a transaction of its own and commit alone.
    a_failing_request_fails_its_whole_group("ROLLBACK").await;
}

#[tokio::test]
async fn a_request_whose_statement_fails_fails_its_whole_group() {
    a_failing_request_fails_its_whole_group("ABORT").await;
}

#[tokio::test]
async fn a_lone_request_rolled_back_by_sqlite_fails_and_the_next_one_commits() {
    // The transaction's own ROLLBACK fails (there is none left): the connection must not
    // be used again as if it were in a transaction.
    let (_dir, store, account) = sqlite(Duration::from_secs(5)).await;
    add_fault(&store, "ROLLBACK").await;
    let period = Period::containing(Utc::now());
    let poisoned = batch_of(&["a".into(), "boom".into()]);
    let answer = store
        .record(account, period, &free_plan(1000), poisoned)
        .await;
    assert!(
        matches!(answer, Err(RecordError::Storage(StoreError::Database(_)))),
        "{answer:?}"
    );
    // A connection left counting a transaction that SQLite ended would now turn BEGIN
    // into a SAVEPOINT: this probe's rollback would leave a transaction open, and the
    // requests below would never be committed (the read pool would not see them).
    store.ready().await.unwrap();
    for r in 0..3 {
        let recorded = store
            .record(account, period, &free_plan(1000), batch(r))
            .await
            .unwrap();
        assert_eq!(recorded.accepted, 3);
    }
    assert_eq!(stored_and_used(&store, account).await, (9, 9));
}

#[tokio::test]
async fn a_writer_that_panics_fails_its_group_as_unavailable_and_is_restarted() {
    let (_dir, store, account) = sqlite(Duration::from_secs(5)).await;
    let group = vec![
        batch(0),
        batch_of(&["x".into(), PANIC_MARKER.into()]),
        batch(2),
    ];
    for answer in as_one_group(&store, account, group).await {
        assert!(
            matches!(
                answer,
                Err(RecordError::Storage(StoreError::Unavailable(_)))
            ),
            "{answer:?}"
        );
    }
    assert_eq!(stored_and_used(&store, account).await, (0, 0));
    assert_eq!(store.ledger.committer().unwrap().restarts(), 1);

    // A lone request panicking, then the writer works on.
    let period = Period::containing(Utc::now());
    let lone = batch_of(&[PANIC_MARKER.into()]);
    let answer = store.record(account, period, &free_plan(1000), lone).await;
    assert!(
        matches!(
            answer,
            Err(RecordError::Storage(StoreError::Unavailable(_)))
        ),
        "{answer:?}"
    );
    store.ready().await.unwrap();
    for answer in as_one_group(&store, account, vec![batch(3), batch(4)]).await {
        assert_eq!(answer.unwrap().accepted, 3);
    }
    assert_eq!(stored_and_used(&store, account).await, (6, 6));
    assert_eq!(store.ledger.committer().unwrap().restarts(), 2);
}

#[tokio::test]
async fn a_stuck_writer_is_not_ready() {
    let (_dir, store, _) = sqlite(Duration::from_millis(200)).await;
    store.ready().await.unwrap();
    let release = store.ledger.committer().unwrap().stall().await;
    let answer = store.ready().await;
    assert!(
        matches!(answer, Err(StoreError::Unavailable(_))),
        "{answer:?}"
    );
    release.send(()).unwrap();
    store.ready().await.unwrap();
}
