//! The audit log's own retention: entries older than the cutoff go, oldest first, a batch per
//! transaction.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::limit;
use crate::sql::statement;

/// Deletes, among the `batch` oldest entries, those written before `cutoff`; returns how many.
/// Entries are numbered in the order they are written, so fewer than `batch` means the oldest
/// left are recent enough to keep.
pub(super) async fn delete_oldest(
    txn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let backend = txn.get_database_backend();
    let deleted = txn
        .execute_raw(statement(
            backend,
            "DELETE FROM audit_log \
             WHERE id IN (SELECT id FROM audit_log ORDER BY id LIMIT $1) AND at < $2",
            [limit(batch).into(), cutoff.into()],
        ))
        .await?;
    Ok(deleted.rows_affected())
}
