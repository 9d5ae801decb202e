//! Deleted accounts: their data removed a bounded batch per transaction, table after table
//! (what refers to a row before the row: events before the keys they name, child contexts
//! before their parents), then the account marked purged. The account row itself stays, as
//! the tombstone of the deletion; the people who were in it keep their logins.

use sea_orm::{ConnectionTrait, DbErr};

use crate::sql::statement;

/// The tables, in the order they are emptied, each with the statement that deletes one batch
/// of an account's rows (`$1` the account, `$2` the batch).
const STEPS: [&str; 9] = [
    "DELETE FROM events WHERE id IN \
     (SELECT id FROM events WHERE account_id = $1 ORDER BY id LIMIT $2)",
    "DELETE FROM traces WHERE account_id = $1 AND trace_id IN \
     (SELECT trace_id FROM traces WHERE account_id = $1 LIMIT $2)",
    // Contexts no other context hangs from: children go in one batch, parents in a later one.
    "DELETE FROM event_contexts WHERE id IN \
     (SELECT c.id FROM event_contexts c WHERE c.account_id = $1 AND NOT EXISTS \
      (SELECT 1 FROM event_contexts h WHERE h.parent_id = c.id) LIMIT $2)",
    "DELETE FROM usage_daily WHERE account_id = $1 AND (day, key_id) IN \
     (SELECT day, key_id FROM usage_daily WHERE account_id = $1 LIMIT $2)",
    "DELETE FROM usage_periods WHERE account_id = $1 AND period_start IN \
     (SELECT period_start FROM usage_periods WHERE account_id = $1 LIMIT $2)",
    "DELETE FROM audit_log WHERE id IN \
     (SELECT id FROM audit_log WHERE account_id = $1 LIMIT $2)",
    "DELETE FROM invitations WHERE id IN \
     (SELECT id FROM invitations WHERE account_id = $1 LIMIT $2)",
    "DELETE FROM memberships WHERE account_id = $1 AND user_id IN \
     (SELECT user_id FROM memberships WHERE account_id = $1 LIMIT $2)",
    // Last: every key was revoked, through the barrier, when the account was deleted.
    "DELETE FROM api_keys WHERE id IN \
     (SELECT id FROM api_keys WHERE account_id = $1 LIMIT $2)",
];

/// The deleted accounts whose data is not all gone yet, oldest deletion first.
pub(super) async fn pending(db: &impl ConnectionTrait) -> Result<Vec<i64>, DbErr> {
    let rows = db
        .query_all_raw(statement(
            db.get_database_backend(),
            "SELECT id FROM accounts WHERE deleted_at IS NOT NULL AND purged_at IS NULL \
             ORDER BY deleted_at, id",
            [],
        ))
        .await?;
    rows.iter().map(|row| row.try_get("", "id")).collect()
}

/// Deletes one batch of `account`'s rows from the first table that still holds some; returns
/// how many (0: nothing is left, and the account is marked purged).
pub(super) async fn purge_batch(
    txn: &impl ConnectionTrait,
    account: i64,
    batch: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbErr> {
    let backend = txn.get_database_backend();
    for step in STEPS {
        let done = txn
            .execute_raw(statement(backend, step, [account.into(), batch.into()]))
            .await?;
        if done.rows_affected() > 0 {
            return Ok(done.rows_affected());
        }
    }
    txn.execute_raw(statement(
        backend,
        "UPDATE accounts SET purged_at = $1 WHERE id = $2",
        [now.into(), account.into()],
    ))
    .await?;
    Ok(0)
}
