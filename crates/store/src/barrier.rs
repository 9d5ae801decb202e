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

use crate::changes::{int, now_ms_sql, statement};

/// How often a pending revocation re-reads the replicas' rows. Short: a revocation answers
/// within a poll of the last acknowledgement (goal: p99 ≤ 20 ms with every replica up).
const POLL: Duration = Duration::from_millis(2);

/// A replica's row, as the barrier reads it.
#[derive(Clone, Debug)]
struct Row {
    label: String,
    applied: i64,
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
    pub(crate) async fn wait(&self, db: &DatabaseConnection, seq: i64, committed: Instant) {
        let deadline = committed + self.lease;
        let mut fresh_after = committed;
        loop {
            let asked = Instant::now();
            let read = tokio::time::timeout_at(deadline, self.rows(db, fresh_after)).await;
            let pending: Option<Vec<String>> = match read {
                Ok(Ok(rows)) => {
                    let pending: Vec<String> = rows
                        .iter()
                        .filter(|r| !r.dead && r.applied < seq)
                        .map(|r| r.label.clone())
                        .collect();
                    if pending.is_empty() {
                        return;
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
                let who = pending.map_or_else(
                    || "unknown (the database did not answer)".to_owned(),
                    |labels| labels.join(", "),
                );
                tracing::warn!(
                    seq,
                    replicas = %who,
                    lease_ms = self.lease.as_millis(),
                    "revocation barrier: not acknowledged within a lease; answering now, their \
                     leases have run out"
                );
                return;
            }
            fresh_after = asked;
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
        let rows = read_rows(db, self.lease).await?;
        *last = Some(Snapshot {
            taken,
            rows: Arc::clone(&rows),
        });
        Ok(rows)
    }
}

async fn read_rows(db: &DatabaseConnection, lease: Duration) -> Result<Arc<[Row]>, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT label, applied_seq, \
                CASE WHEN lease_until < {now} - $1 THEN 1 ELSE 0 END AS dead \
         FROM replicas",
        now = now_ms_sql(backend)
    );
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let rows = db
        .query_all_raw(statement(backend, &sql, [lease_ms.into()]))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Row {
                label: row.try_get("", "label")?,
                applied: int(row, "applied_seq")?,
                dead: row.try_get::<i32>("", "dead")? == 1,
            })
        })
        .collect()
}
