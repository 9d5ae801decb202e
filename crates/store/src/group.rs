//! Group commit for SQLite: concurrent requests share one transaction, and so one fsync, each
//! inside a savepoint of its own so that each stays all or nothing and gets its own answer.
//!
//! SQLite commits one writer at a time and each commit waits for the disk (`synchronous =
//! FULL`). Requests that arrive while a commit is in flight queue here; the writer then takes
//! all of them (up to [`MAX_GROUP`]) into the next transaction. A request is answered only after
//! the transaction that holds it has committed, so "200 means stored" still holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::ledger::{Job, Outcome, begin_immediate, commit_alone, finish};

/// Most requests in one transaction: keeps a transaction, and the lock it holds, short.
const MAX_GROUP: usize = 64;
/// Requests waiting for the writer before senders wait in turn (back-pressure).
const QUEUE: usize = 1024;

type Request = (Job, oneshot::Sender<Outcome>);

/// The handle through which requests reach the single SQLite writer task.
#[derive(Clone, Debug)]
pub(crate) struct Committer {
    requests: mpsc::Sender<Request>,
    /// The most requests one transaction has held so far (for tests and diagnostics).
    largest_group: Arc<AtomicUsize>,
}

impl Committer {
    /// Starts the writer task on the current tokio runtime. It ends when every handle is gone.
    pub(crate) fn start(db: DatabaseConnection) -> Self {
        let (requests, queue) = mpsc::channel(QUEUE);
        let largest_group = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write_groups(db, queue, Arc::clone(&largest_group)));
        Committer {
            requests,
            largest_group,
        }
    }

    /// The most requests one transaction has held so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn largest_group(&self) -> usize {
        self.largest_group.load(Ordering::Relaxed)
    }

    /// Queues `job` and waits until the transaction holding it has committed or failed.
    pub(crate) async fn submit(&self, job: Job) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((job, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> DbErr {
    DbErr::Custom("the SQLite writer has stopped".into())
}

async fn write_groups(
    db: DatabaseConnection,
    mut queue: mpsc::Receiver<Request>,
    largest_group: Arc<AtomicUsize>,
) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        largest_group.fetch_max(group.len(), Ordering::Relaxed);
        let (jobs, replies): (Vec<Job>, Vec<_>) = group.into_iter().unzip();
        let outcomes = commit_group(&db, &jobs).await;
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A requester that gave up (its connection closed) no longer needs the answer.
            let _ = reply.send(outcome);
        }
    }
}

/// Commits `jobs` in one transaction, each in its own savepoint; one outcome per job.
async fn commit_group(db: &DatabaseConnection, jobs: &[Job]) -> Vec<Outcome> {
    if let [job] = jobs {
        return vec![commit_alone(db, job).await];
    }
    let txn = match begin_immediate(db).await {
        Ok(txn) => txn,
        Err(e) => return jobs.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        outcomes.push(match txn.begin().await {
            Ok(savepoint) => finish(savepoint, job).await,
            Err(e) => Err(e),
        });
    }
    match txn.commit().await {
        Ok(()) => outcomes,
        // Nothing of the group is stored: every request fails, refused ones included.
        Err(e) => jobs.iter().map(|_| Err(e.clone())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use agentvista_quota::{Allowance, Period, RecordError, UsageLedger};
    use chrono::Utc;

    use crate::{EventBatch, NewEvent, Store};

    fn batch(request: usize) -> EventBatch {
        let events = (0..3)
            .map(|i| NewEvent {
                client_event_id: Some(format!("r{request}-e{i}")),
                event_type: "span".into(),
                trace_id: None,
                name: None,
                timestamp: Utc::now(),
                body: None,
            })
            .collect();
        EventBatch {
            api_key_id: None,
            received_at: Utc::now(),
            events,
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_a_commit_and_each_stays_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let account = store
            .accounts()
            .create("a", "free", Utc::now())
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
                        .record(account, period, Allowance::Limited(10), batch(r))
                        .await
                })
            })
            .collect();
        let (mut stored, mut refused) = (0, 0);
        for request in requests {
            match request.await.unwrap() {
                Ok(recorded) => stored += recorded.accepted,
                Err(RecordError::Exceeded(_)) => refused += 1,
                Err(RecordError::Storage(e)) => panic!("{e:?}"),
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
}
