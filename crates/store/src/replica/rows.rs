//! The statements of a replica: its row in `replicas`, the change log it follows, and the
//! one-snapshot read of a missed key.

use std::time::Duration;

use agentvista_keys::{KeyHash, KeyRecord};
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};

use crate::StoreError;
use crate::db::db_time;
use crate::entities::api_keys;
use crate::keys::record;
use crate::sql::{int, now_ms_sql, statement};

/// Changes read by one follower round at most; a longer backlog takes several rounds (the
/// renewal of a partial round fails its condition, so the next round comes at once).
pub(super) const CHANGES_PER_ROUND: usize = 10_000;

/// Rows of replicas dead for this long are deleted (milliseconds).
const DEAD_ROWS_AFTER_MS: i64 = 86_400_000;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Inserts the replica's row, its lease ending now (none granted yet, but not a dead row that
/// another replica's clean-up would delete), as having applied the log's current head (its
/// cache is empty: nothing in it can predate a change); returns that head, and the
/// database's time (milliseconds since the epoch) when it wrote the row.
pub(super) async fn register(
    db: &DatabaseConnection,
    id: &str,
    label: &str,
    lease: Duration,
) -> Result<(i64, i64), StoreError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(statement(
            backend,
            &format!(
                "INSERT INTO replicas (id, applied_seq, lease_until, lease_ms, started_at, label) \
                 SELECT $1, seq, {}, $2, $3, $4 FROM key_log_head WHERE id = 1 \
                 RETURNING applied_seq, lease_until",
                now_ms_sql(backend)
            ),
            [
                id.into(),
                millis(lease).into(),
                db_time(Utc::now()).into(),
                label.into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("key_log_head has no row".into()))?;
    Ok((int(&row, "applied_seq")?, int(&row, "lease_until")?))
}

/// Removes the replica's row (graceful shutdown).
pub(super) async fn deregister(db: &DatabaseConnection, id: &str) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    db.execute_raw(statement(
        backend,
        "DELETE FROM replicas WHERE id = $1",
        [id.into()],
    ))
    .await?;
    Ok(())
}

/// Deletes the rows of replicas dead for a day; returns how many.
pub(super) async fn delete_dead(db: &DatabaseConnection) -> Result<u64, StoreError> {
    let backend = db.get_database_backend();
    let sql = format!(
        "DELETE FROM replicas WHERE lease_until < {} - $1",
        now_ms_sql(backend)
    );
    let done = db
        .execute_raw(statement(backend, &sql, [DEAD_ROWS_AFTER_MS.into()]))
        .await?;
    Ok(done.rows_affected())
}

/// What a renewal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Renewal {
    /// The lease runs for another `lease` from the database's now, which it holds
    /// (milliseconds since the epoch).
    Renewed(i64),
    /// Not renewed: a change committed after the round's read (apply it first).
    Behind,
    /// Not renewed: the row is gone (deleted as dead while this replica was paused).
    Gone,
}

/// The conditional renewal (rule 2), one autocommit statement: the lease is extended only if
/// `applied` has caught up with the log's head, so a lease granted after a change committed
/// implies the change was applied.
pub(super) async fn renew(
    db: &DatabaseConnection,
    id: &str,
    applied: i64,
    lease: Duration,
) -> Result<Renewal, StoreError> {
    let backend = db.get_database_backend();
    let sql = format!(
        "UPDATE replicas SET applied_seq = $1, lease_until = {} + $2 \
         WHERE id = $3 AND $1 >= (SELECT seq FROM key_log_head WHERE id = 1) \
         RETURNING lease_until - $2 AS db_now",
        now_ms_sql(backend)
    );
    let done = db
        .query_one_raw(statement(
            backend,
            &sql,
            [applied.into(), millis(lease).into(), id.into()],
        ))
        .await?;
    if let Some(row) = done {
        return Ok(Renewal::Renewed(int(&row, "db_now")?));
    }
    let exists = db
        .query_one_raw(statement(
            backend,
            "SELECT id FROM replicas WHERE id = $1",
            [id.into()],
        ))
        .await?;
    Ok(if exists.is_some() {
        Renewal::Behind
    } else {
        Renewal::Gone
    })
}

/// The log's head.
pub(super) async fn head(db: &DatabaseConnection) -> Result<i64, StoreError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(statement(
            backend,
            "SELECT seq FROM key_log_head WHERE id = 1",
            [],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("key_log_head has no row".into()))?;
    Ok(int(&row, "seq")?)
}

/// The log's head and the changes after `applied` (at most [`CHANGES_PER_ROUND`], oldest
/// first), in one statement, so one snapshot.
pub(super) async fn changes_after(
    db: &DatabaseConnection,
    applied: i64,
) -> Result<(i64, Vec<(i64, KeyHash)>), StoreError> {
    let backend = db.get_database_backend();
    let limit = i64::try_from(CHANGES_PER_ROUND).unwrap_or(i64::MAX);
    let rows = db
        .query_all_raw(statement(
            backend,
            "SELECT h.seq AS head, c.seq AS seq, c.key_hash AS key_hash \
             FROM key_log_head h \
             LEFT JOIN key_changes c ON c.seq > $1 AND c.seq <= h.seq \
             WHERE h.id = 1 ORDER BY c.seq LIMIT $2",
            [applied.into(), limit.into()],
        ))
        .await?;
    let head = match rows.first() {
        Some(row) => int(row, "head")?,
        None => return Err(DbErr::Custom("key_log_head has no row".into()).into()),
    };
    let mut changes = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: Option<i64> = row.try_get("", "seq")?;
        let hash: Option<String> = row.try_get("", "key_hash")?;
        if let (Some(seq), Some(hash)) = (seq, hash) {
            let hash = KeyHash::from_hex(&hash).map_err(|_| StoreError::Corrupt {
                what: "key_changes.key_hash",
            })?;
            changes.push((seq, hash));
        }
    }
    Ok((head, changes))
}

/// The key of `hash` (in any status) and the log's head, in one statement, so one snapshot:
/// the record reflects every change up to that head.
pub(super) async fn key_and_head(
    db: &DatabaseConnection,
    hash: &KeyHash,
) -> Result<(Option<KeyRecord>, i64), StoreError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(statement(
            backend,
            "SELECT h.seq AS head, k.* FROM key_log_head h \
             LEFT JOIN api_keys k ON k.key_hash = $1 WHERE h.id = 1",
            [hash.to_hex().into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("key_log_head has no row".into()))?;
    let head = int(&row, "head")?;
    let id: Option<i64> = row.try_get("", "id")?;
    if id.is_none() {
        return Ok((None, head));
    }
    let model = api_keys::Model::from_query_result(&row, "")?;
    Ok((Some(record(model)?), head))
}
