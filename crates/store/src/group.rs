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
//!   pool closes such a connection instead of reusing it (see `store.rs`).
//! - The writer task is supervised: if it panics, the requests of the group in flight fail as
//!   [`StoreError::Unavailable`](crate::StoreError::Unavailable) (their transaction is rolled
//!   back) and a new writer takes the queue over. Requests never wait on a writer that is gone:
//!   once the writer cannot be reached they fail as unavailable at once.
//! - A request whose requester has gone (its client left) before its group starts is skipped:
//!   nobody would be told it was stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::fmt;
use std::future::Future;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr, TransactionTrait};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::db::begin_immediate;

/// Work the writer runs in a transaction of its own, or in a savepoint of a group's. The group
/// commit knows nothing else of it.
pub(crate) trait Work: Send + Sync + 'static {
    /// What the work answers when the database did its part.
    type Answer: Send + 'static;

    /// Runs the work's statements in `txn` (a transaction or a savepoint).
    fn run(
        &self,
        txn: &DatabaseTransaction,
    ) -> impl Future<Output = Result<Self::Answer, DbErr>> + Send;

    /// Whether `answer` keeps what the work wrote; if not, the work's transaction or
    /// savepoint is rolled back (a refusal, not an error: the rest of a group goes on).
    fn keeps(answer: &Self::Answer) -> bool;
}

/// What a request gets: the work's answer, or the database error that ended it (its own, or
/// its group's: nothing of it was stored then).
pub(crate) type Outcome<W> = Result<<W as Work>::Answer, DbErr>;

/// One work, one transaction: committed if the work keeps its answer, else rolled back.
pub(crate) async fn commit_alone<W: Work>(db: &DatabaseConnection, work: &W) -> Outcome<W> {
    let txn = begin_immediate(db).await?;
    finish(txn, work).await
}

/// Runs `work` in `txn` (a transaction or a savepoint) and commits or rolls it back.
async fn finish<W: Work>(txn: DatabaseTransaction, work: &W) -> Outcome<W> {
    match work.run(&txn).await {
        Ok(answer) if W::keeps(&answer) => txn.commit().await.map(|()| answer),
        Ok(answer) => txn.rollback().await.map(|()| answer),
        Err(e) => {
            // The work's error is the answer. A rollback that fails as well is no less an
            // error: the connection is then in an unknown state, and SQLite's write pool
            // closes it on release (`store.rs`); a group this work belongs to aborts whole
            // (below). Nothing more can be done here but say it.
            if let Err(rollback) = txn.rollback().await {
                tracing::error!(
                    error = %rollback,
                    "rolling back a failed transaction failed too"
                );
            }
            Err(e)
        }
    }
}

/// Most requests in one transaction: keeps a transaction, and the lock it holds, short.
const MAX_GROUP: usize = 64;
/// Requests waiting for the writer before senders wait in turn (back-pressure).
const QUEUE: usize = 1024;

/// What the writer task is asked to do.
enum Request<W: Work> {
    /// Run a work; answered once the transaction holding it committed or failed.
    Run(W, oneshot::Sender<Outcome<W>>),
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
pub(crate) struct Committer<W: Work> {
    requests: mpsc::Sender<Request<W>>,
    /// The most requests one transaction has held so far (for tests and diagnostics).
    largest_group: Arc<AtomicUsize>,
    /// How often the writer task was restarted after a panic.
    restarts: Arc<AtomicUsize>,
}

impl<W: Work> Clone for Committer<W> {
    fn clone(&self) -> Self {
        Committer {
            requests: self.requests.clone(),
            largest_group: Arc::clone(&self.largest_group),
            restarts: Arc::clone(&self.restarts),
        }
    }
}

impl<W: Work> fmt::Debug for Committer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Committer")
            .field("largest_group", &self.largest_group)
            .field("restarts", &self.restarts)
            .finish_non_exhaustive()
    }
}

impl<W: Work> Committer<W> {
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

    /// Queues `work` and waits until the transaction holding it has committed or failed.
    pub(crate) async fn submit(&self, work: W) -> Outcome<W> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Run(work, reply))
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
impl<W: Work> Committer<W> {
    /// The most requests one transaction has held so far.
    pub(crate) fn largest_group(&self) -> usize {
        self.largest_group.load(Ordering::Relaxed)
    }

    /// How often the writer task was restarted after a panic.
    pub(crate) fn restarts(&self) -> usize {
        self.restarts.load(Ordering::Relaxed)
    }

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
async fn supervise<W: Work>(
    db: DatabaseConnection,
    queue: mpsc::Receiver<Request<W>>,
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

async fn write_groups<W: Work>(
    db: DatabaseConnection,
    queue: Arc<Mutex<mpsc::Receiver<Request<W>>>>,
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

/// Commits the works of `group` together and answers every request in it.
async fn write_group<W: Work>(
    db: &DatabaseConnection,
    group: Vec<Request<W>>,
    largest_group: &AtomicUsize,
) {
    let mut works = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    let mut probes = Vec::new();
    for request in group {
        match request {
            Request::Run(_, reply) if reply.is_closed() => {}
            Request::Run(work, reply) => {
                works.push(work);
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
    if !works.is_empty() {
        largest_group.fetch_max(works.len(), Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss, reason = "at most MAX_GROUP")]
        metrics::histogram!("agentvista_group_commit_requests").record(works.len() as f64);
        let outcomes = commit_group(db, &works).await;
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

/// Commits `works` in one transaction, each in its own savepoint; one outcome per work. Any
/// error fails them all and commits nothing (see the module documentation).
async fn commit_group<W: Work>(db: &DatabaseConnection, works: &[W]) -> Vec<Outcome<W>> {
    if let [work] = works {
        return vec![commit_alone(db, work).await];
    }
    let txn = match begin_immediate(db).await {
        Ok(txn) => txn,
        Err(e) => return fail_all(works, &e),
    };
    let mut outcomes = Vec::with_capacity(works.len());
    for work in works {
        let outcome = match txn.begin().await {
            Ok(savepoint) => finish(savepoint, work).await,
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
                return (0..works.len())
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
        Err(e) => fail_all(works, &e),
    }
}

/// A request's group was rolled back for another request's error: nothing of it was stored,
/// and a retry is safe ([`crate::StoreError::Unavailable`]).
fn group_aborted() -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(
        "another request of the same group commit failed; nothing was stored".into(),
    ))
}

fn fail_all<W: Work>(works: &[W], err: &DbErr) -> Vec<Outcome<W>> {
    works.iter().map(|_| Err(err.clone())).collect()
}
