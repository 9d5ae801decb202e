//! Group commit for SQLite: concurrent requests share one transaction, and so one fsync, each
//! inside a savepoint of its own so that each stays all or nothing and gets its own answer.
//!
//! SQLite commits one writer at a time and each commit waits for the disk (`synchronous =
//! FULL`). Requests that arrive while a commit is in flight queue here; the writer then takes
//! all of them (up to [`MAX_GROUP`]) into the next transaction. A request is answered only after
//! the transaction that holds it has committed, so "200 means stored" still holds.
//!
//! Failing safe:
//! - Any error inside a savepoint — opening it, a statement, releasing it, rolling back to it
//!   after a quota refusal — aborts the whole group: the transaction is rolled back and every
//!   request of the group fails with that error. Some errors (`SQLITE_FULL`, `SQLITE_IOERR`,
//!   `SQLITE_NOMEM`, a trigger's `RAISE(ROLLBACK)`, `SQLITE_BUSY` in places) make SQLite roll
//!   back the whole transaction by itself; the next savepoint would then open a transaction of
//!   its own and commit alone. Which errors did cannot be told through sea-orm, so none may
//!   let the group go on. A quota refusal is no error: only its savepoint is rolled back.
//! - A transaction whose rollback failed leaves its connection in an unknown state; the write
//!   pool closes such a connection instead of reusing it (see `connect.rs`).
//! - The writer task is supervised: if it panics, the requests of the group in flight fail as
//!   [`StoreError::Unavailable`](crate::StoreError::Unavailable) (their transaction is rolled
//!   back) and a new writer takes the queue over. Requests never wait on a writer that is gone:
//!   once the writer cannot be reached they fail as unavailable at once.
//! - A request whose requester has gone (its client left) before its group starts is skipped:
//!   nobody would be told it was stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::{DatabaseConnection, DbErr, RuntimeErr, TransactionTrait};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::ledger::{Job, Outcome, begin_immediate, commit_alone, finish};

/// Most requests in one transaction: keeps a transaction, and the lock it holds, short.
const MAX_GROUP: usize = 64;
/// Requests waiting for the writer before senders wait in turn (back-pressure).
const QUEUE: usize = 1024;

/// What the writer task is asked to do.
enum Request {
    /// Store and count a job; answered once the transaction holding it committed or failed.
    Record(Job, oneshot::Sender<Outcome>),
    /// Readiness: answered once the writer has taken SQLite's write lock and let it go.
    Probe(oneshot::Sender<Result<(), DbErr>>),
    /// Tests only: the writer says it has come here, then waits for `release` before it goes
    /// on, as a stuck writer would.
    #[cfg(test)]
    Stall {
        entered: oneshot::Sender<()>,
        release: oneshot::Receiver<()>,
    },
}

/// The handle through which requests reach the single SQLite writer task.
#[derive(Clone, Debug)]
pub(crate) struct Committer {
    requests: mpsc::Sender<Request>,
    /// The most requests one transaction has held so far (for tests and diagnostics).
    largest_group: Arc<AtomicUsize>,
    /// How often the writer task was restarted after a panic.
    restarts: Arc<AtomicUsize>,
}

impl Committer {
    /// Starts the supervised writer task on the current tokio runtime. It ends when every
    /// handle is gone.
    pub(crate) fn start(db: DatabaseConnection) -> Self {
        let (requests, queue) = mpsc::channel(QUEUE);
        let largest_group = Arc::new(AtomicUsize::new(0));
        let restarts = Arc::new(AtomicUsize::new(0));
        tokio::spawn(supervise(
            db,
            queue,
            Arc::clone(&largest_group),
            Arc::clone(&restarts),
        ));
        Committer {
            requests,
            largest_group,
            restarts,
        }
    }

    /// The most requests one transaction has held so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn largest_group(&self) -> usize {
        self.largest_group.load(Ordering::Relaxed)
    }

    /// How often the writer task was restarted after a panic.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn restarts(&self) -> usize {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Queues `job` and waits until the transaction holding it has committed or failed.
    pub(crate) async fn submit(&self, job: Job) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Record(job, reply))
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Waits until the writer task has taken SQLite's write lock and let it go again: the
    /// writer runs, and a write could start now.
    pub(crate) async fn probe(&self) -> Result<(), DbErr> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Probe(reply))
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

#[cfg(test)]
impl Committer {
    /// Stalls the writer task: returns once the writer waits, and the writer goes on when the
    /// returned sender is used or dropped. Requests queue meanwhile.
    pub(crate) async fn stall(&self) -> oneshot::Sender<()> {
        let (entered, on_entered) = oneshot::channel();
        let (release, on_release) = oneshot::channel();
        self.requests
            .send(Request::Stall {
                entered,
                release: on_release,
            })
            .await
            .expect("the writer runs");
        on_entered.await.expect("the writer stalls");
        release
    }

    /// Requests queued and not yet taken by the writer.
    pub(crate) fn queued(&self) -> usize {
        self.requests.max_capacity() - self.requests.capacity()
    }
}

/// The writer task is gone, or went while it held the request: an outage, not a failure of
/// the request (so [`crate::StoreError::Unavailable`]).
fn writer_gone() -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(
        "the SQLite writer stopped before answering".into(),
    ))
}

/// Runs the writer task, and a new one whenever it panics, until every handle is gone.
async fn supervise(
    db: DatabaseConnection,
    queue: mpsc::Receiver<Request>,
    largest_group: Arc<AtomicUsize>,
    restarts: Arc<AtomicUsize>,
) {
    // Shared so that the queue outlives a writer that panics, with the requests still in it.
    let queue = Arc::new(Mutex::new(queue));
    loop {
        let writer = tokio::spawn(write_groups(
            db.clone(),
            Arc::clone(&queue),
            Arc::clone(&largest_group),
        ));
        match writer.await {
            // Every handle is gone: nothing more can come.
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                restarts.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "the SQLite writer panicked; the requests it held failed as unavailable; \
                     restarting it"
                );
            }
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        }
    }
}

async fn write_groups(
    db: DatabaseConnection,
    queue: Arc<Mutex<mpsc::Receiver<Request>>>,
    largest_group: Arc<AtomicUsize>,
) {
    let mut queue = queue.lock().await;
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        write_group(&db, group, &largest_group).await;
    }
}

/// Commits the jobs of `group` together and answers every request in it.
async fn write_group(db: &DatabaseConnection, group: Vec<Request>, largest_group: &AtomicUsize) {
    let mut jobs = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    let mut probes = Vec::new();
    for request in group {
        match request {
            Request::Record(_, reply) if reply.is_closed() => {}
            Request::Record(job, reply) => {
                jobs.push(job);
                replies.push(reply);
            }
            Request::Probe(reply) => probes.push(reply),
            #[cfg(test)]
            Request::Stall { entered, release } => {
                let _ = entered.send(());
                let _ = release.await;
            }
        }
    }
    if !jobs.is_empty() {
        largest_group.fetch_max(jobs.len(), Ordering::Relaxed);
        let outcomes = commit_group(db, &jobs).await;
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A requester that gave up (its connection closed) no longer needs the answer.
            let _ = reply.send(outcome);
        }
    }
    if !probes.is_empty() {
        let result = take_write_lock(db).await;
        for reply in probes {
            let _ = reply.send(result.clone());
        }
    }
}

/// Takes SQLite's write lock, as every accounting transaction does first, and lets it go.
async fn take_write_lock(db: &DatabaseConnection) -> Result<(), DbErr> {
    begin_immediate(db).await?.rollback().await
}

/// Commits `jobs` in one transaction, each in its own savepoint; one outcome per job. Any
/// error fails them all and commits nothing (see the module documentation).
async fn commit_group(db: &DatabaseConnection, jobs: &[Job]) -> Vec<Outcome> {
    if let [job] = jobs {
        #[cfg(test)]
        tests::panic_on_marker(job);
        return vec![commit_alone(db, job).await];
    }
    let txn = match begin_immediate(db).await {
        Ok(txn) => txn,
        Err(e) => return fail_all(jobs, &e),
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let outcome = match txn.begin().await {
            Ok(savepoint) => {
                #[cfg(test)]
                tests::panic_on_marker(job);
                finish(savepoint, job).await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(answer) => outcomes.push(Ok(answer)),
            Err(e) => {
                if let Err(rollback) = txn.rollback().await {
                    // The connection goes: the write pool closes it on release.
                    tracing::error!(
                        error = %rollback,
                        "rolling back an aborted group commit failed too"
                    );
                }
                // The culprit keeps its own error; the others did nothing wrong and nothing
                // of theirs was stored, so they fail as an outage (503) that a client retries,
                // not as the culprit's 500 that an OTLP exporter would drop.
                let culprit = outcomes.len();
                return (0..jobs.len())
                    .map(|i| {
                        Err(if i == culprit {
                            e.clone()
                        } else {
                            group_aborted()
                        })
                    })
                    .collect();
            }
        }
    }
    match txn.commit().await {
        Ok(()) => outcomes,
        // Nothing of the group is stored: every request fails, refused ones included.
        Err(e) => fail_all(jobs, &e),
    }
}

/// A request's group was rolled back for another request's error: nothing of it was stored,
/// and a retry is safe ([`crate::StoreError::Unavailable`]).
fn group_aborted() -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(
        "another request of the same group commit failed; nothing was stored".into(),
    ))
}

fn fail_all(jobs: &[Job], err: &DbErr) -> Vec<Outcome> {
    jobs.iter().map(|_| Err(err.clone())).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use agentvista_quota::{Period, RecordError, Recorded, UsageLedger};
    use chrono::Utc;
    use sea_orm::ConnectionTrait;

    use super::Job;
    use crate::{AccountId, EventBatch, NewEvent, Store, StoreError, StoreOptions};

    /// A job holding an event with this id panics the writer task (tests only).
    const PANIC_MARKER: &str = "panic-the-writer";

    pub(super) fn panic_on_marker(job: &Job) {
        let marked = job
            .events
            .iter()
            .any(|e| e.client_event_id.as_deref() == Some(PANIC_MARKER));
        assert!(!marked, "the writer panics, as a test asked");
    }

    /// Plans under which the tests' accounts (all on `free`) may store `limit` events a month.
    fn free_plan(limit: u64) -> agentvista_quota::Plans {
        agentvista_quota::Plans::from_iter([(
            "free".to_owned(),
            agentvista_quota::Plan {
                monthly_events: limit,
                overage_cents_per_1000_events: 0,
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
    async fn as_one_group(
        store: &Store,
        account: AccountId,
        batches: Vec<EventBatch>,
    ) -> Vec<Answer> {
        let committer = store.committer.as_ref().unwrap();
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
        let largest = store.committer.as_ref().unwrap().largest_group();
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
        assert_eq!(store.committer.as_ref().unwrap().restarts(), 1);

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
        assert_eq!(store.committer.as_ref().unwrap().restarts(), 2);
    }

    #[tokio::test]
    async fn a_stuck_writer_is_not_ready() {
        let (_dir, store, _) = sqlite(Duration::from_millis(200)).await;
        store.ready().await.unwrap();
        let release = store.committer.as_ref().unwrap().stall().await;
        let answer = store.ready().await;
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "{answer:?}"
        );
        release.send(()).unwrap();
        store.ready().await.unwrap();
    }
}
