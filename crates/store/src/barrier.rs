//! The revocation barrier's waiting side (`docs/architecture.md`, rule 4): after a change has
//! committed, wait until every registered replica has applied it or is dead — or until one
//! lease has passed since the commit, which the conditional renewal makes always safe: a
//! replica that has not applied the change holds a lease granted before the commit, and that
//! lease has run out by then.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::db::{MAX_LEASE, MIN_LEASE};
use crate::sql::{int, now_ms_sql, statement};

/// How often a pending revocation re-reads the replicas' rows. Short: a revocation answers
/// within a poll of the last acknowledgement (goal: p99 ≤ 20 ms with every replica up).
const POLL: Duration = Duration::from_millis(2);

/// The bounds a replica's stored lease is read within ([`MIN_LEASE`], [`MAX_LEASE`]): a row
/// written by hand, or by a process that did not validate its options, cannot make a
/// revocation wait for ever, or overflow the clock.
const MIN_LEASE_MS: i64 = MIN_LEASE.as_millis() as i64;
const MAX_LEASE_MS: i64 = MAX_LEASE.as_millis() as i64;

/// A replica's row, as the barrier reads it.
#[derive(Clone, Debug)]
struct Row {
    label: String,
    applied: i64,
    /// Its own lease (`auth.lease_ms`, as it registered).
    lease: Duration,
    /// Its lease ran out more than a lease ago (crashed, or stopped without cleaning up).
    dead: bool,
}

/// The rows as read at `taken` (an instant before the read was sent).
struct Snapshot {
    taken: Instant,
    rows: Arc<[Row]>,
}

/// Waits out revocations. One per store: concurrent waiters share each read of the rows, so a
/// burst of revocations costs one read per poll, not one per revocation.
#[derive(Debug)]
pub(crate) struct Barrier {
    lease: Duration,
    last: Mutex<Option<Snapshot>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl Barrier {
    pub(crate) fn new(lease: Duration) -> Self {
        Barrier {
            lease,
            last: Mutex::new(None),
        }
    }

    /// Returns once every live replica on `db` has applied change `seq`, or one lease after
    /// `committed` (the instant the change's commit returned) — whichever comes first, and
    /// whatever the database does meanwhile. Replicas still unacknowledged at the bound are
    /// named in a warning.
    ///
    /// The bound is this process's lease, or the longest a replica registered with if that is
    /// longer: a server configured apart from the others is waited out (and a warning says so).
    ///
    /// Measured as `agentvista_revocation_barrier_seconds` (from the commit) and, when the
    /// bound was reached, `agentvista_revocation_barrier_timeouts_total`.
    pub(crate) async fn wait(&self, db: &DatabaseConnection, seq: i64, committed: Instant) {
        let acknowledged = self.wait_for_replicas(db, seq, committed).await;
        metrics::histogram!("agentvista_revocation_barrier_seconds")
            .record(committed.elapsed().as_secs_f64());
        if !acknowledged {
            metrics::counter!("agentvista_revocation_barrier_timeouts_total").increment(1);
        }
    }

    /// [`Barrier::wait`]'s loop: `true` when every live replica acknowledged, `false` when
    /// the bound was reached first.
    async fn wait_for_replicas(
        &self,
        db: &DatabaseConnection,
        seq: i64,
        committed: Instant,
    ) -> bool {
        let mut deadline = committed + self.lease;
        let mut fresh_after = committed;
        loop {
            let read = tokio::time::timeout_at(deadline, self.rows(db, fresh_after)).await;
            let pending: Option<Vec<String>> = match read {
                Ok(Ok(rows)) => {
                    // Only live replicas' leases bound the wait: a dead row's lease ran out.
                    if let Some(longest) = rows.iter().filter(|r| !r.dead).map(|r| r.lease).max()
                        && committed + longest > deadline
                    {
                        tracing::warn!(
                            lease_ms = self.lease.as_millis(),
                            longest_ms = longest.as_millis(),
                            "revocation barrier: a replica runs a longer auth.lease_ms than this \
                             process; waiting out the longer lease (give every process the same)"
                        );
                        deadline = committed + longest;
                    }
                    let pending: Vec<String> = rows
                        .iter()
                        .filter(|r| !r.dead && r.applied < seq)
                        .map(|r| r.label.clone())
                        .collect();
                    if pending.is_empty() {
                        return true;
                    }
                    Some(pending)
                }
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "revocation barrier: cannot read the replicas");
                    None
                }
                Err(_) => None,
            };
            let now = Instant::now();
            if now >= deadline {
                match pending {
                    Some(labels) => tracing::warn!(
                        seq,
                        replicas = %labels.join(", "),
                        lease_ms = self.lease.as_millis(),
                        "revocation barrier: not acknowledged within a lease; answering now, \
                         their leases have run out"
                    ),
                    None => {
                        tracing::warn!(
                            seq,
                            lease_ms = self.lease.as_millis(),
                            "revocation barrier: the database did not answer within a lease; \
                             answering now, every replica's lease has run out (the replicas \
                             that had not applied the change follow once it answers)"
                        );
                        // The answer may not wait longer, but the operator still needs the
                        // names: read them after it.
                        tokio::spawn(name_late_replicas(db.clone(), seq));
                    }
                }
                return false;
            }
            // The next round needs a read sent after this one answered: a read sent before
            // (this one, or another waiter's) holds nothing newer.
            fresh_after = now;
            tokio::time::sleep_until((now + POLL).min(deadline)).await;
        }
    }

    /// The replicas' rows, read after `after`: a read another waiter started later than that
    /// is shared, otherwise this waiter reads.
    async fn rows(&self, db: &DatabaseConnection, after: Instant) -> Result<Arc<[Row]>, DbErr> {
        let mut last = self.last.lock().await;
        if let Some(snapshot) = last.as_ref().filter(|s| s.taken >= after) {
            return Ok(Arc::clone(&snapshot.rows));
        }
        let taken = Instant::now();
        let rows = read_rows(db).await?;
        *last = Some(Snapshot {
            taken,
            rows: Arc::clone(&rows),
        });
        Ok(rows)
    }
}

/// How long the follow-up read of a barrier that reached its bound may take.
const FOLLOW_UP: Duration = Duration::from_secs(10);

/// Names, in a warning, the live replicas that had still not applied change `seq` when its
/// barrier answered at the bound without having read them.
async fn name_late_replicas(db: DatabaseConnection, seq: i64) {
    let Ok(Ok(rows)) = tokio::time::timeout(FOLLOW_UP, read_rows(&db)).await else {
        return;
    };
    let late: Vec<&str> = rows
        .iter()
        .filter(|r| !r.dead && r.applied < seq)
        .map(|r| r.label.as_str())
        .collect();
    if !late.is_empty() {
        tracing::warn!(
            seq,
            replicas = %late.join(", "),
            "revocation barrier: answered at the lease bound while these replicas had not \
             applied the change"
        );
    }
}

async fn read_rows(db: &DatabaseConnection) -> Result<Arc<[Row]>, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT label, applied_seq, lease_ms, \
                CASE WHEN lease_until < {now} - {lease} THEN 1 ELSE 0 END AS dead \
         FROM replicas",
        now = now_ms_sql(backend),
        lease = format_args!(
            "(CASE WHEN lease_ms < {MIN_LEASE_MS} THEN {MIN_LEASE_MS} \
                   WHEN lease_ms > {MAX_LEASE_MS} THEN {MAX_LEASE_MS} ELSE lease_ms END)"
        ),
    );
    let rows = db.query_all_raw(statement(backend, &sql, [])).await?;
    rows.iter()
        .map(|row| {
            let label: String = row.try_get("", "label")?;
            let stored = int(row, "lease_ms")?;
            let lease_ms = stored.clamp(MIN_LEASE_MS, MAX_LEASE_MS);
            if lease_ms != stored {
                tracing::warn!(
                    replica = %label,
                    lease_ms = stored,
                    "revocation barrier: a replica's row holds a lease outside 100 to 60000 ms; \
                     read as {lease_ms} ms"
                );
            }
            let lease_ms = u64::try_from(lease_ms).unwrap_or(0);
            Ok(Row {
                label,
                applied: int(row, "applied_seq")?,
                lease: Duration::from_millis(lease_ms),
                dead: row.try_get::<i32>("", "dead")? == 1,
            })
        })
        .collect()
}
