//! Invitations that ended — accepted, withdrawn with a member's removal or an account's
//! deletion, or expired — go: their tokens find nothing either way, and the audit log keeps
//! their story. A batch per transaction.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::limit;
use crate::db::db_time;
use crate::sql::statement;

/// Deletes up to `batch` invitations ended at `now`; returns how many.
pub(super) async fn delete_ended(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let backend = txn.get_database_backend();
    let deleted = txn
        .execute_raw(statement(
            backend,
            "DELETE FROM invitations WHERE id IN (SELECT id FROM invitations \
             WHERE accepted_at IS NOT NULL OR revoked_at IS NOT NULL OR expires_at <= $1 \
             ORDER BY id LIMIT $2)",
            [db_time(now).into(), limit(batch).into()],
        ))
        .await?;
    Ok(deleted.rows_affected())
}
