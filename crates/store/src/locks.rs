//! Row locks that several writers share, so that they take them in one order (the order
//! is written down in `revoke`).

use sea_orm::{ConnectionTrait, DatabaseTransaction};

use crate::sql::statement;
use crate::{AccountId, StoreError};

/// Takes `account`'s row lock on PostgreSQL (SQLite's write transaction holds the database's),
/// which an account's deletion takes too: nothing is added to a deleted account, and what
/// is counted against a limit under the lock cannot be passed by concurrent transactions.
/// `FOR NO KEY UPDATE`, not `FOR UPDATE`: the foreign-key checks of other transactions'
/// inserts (an audit entry, a membership) take `KEY SHARE` on this row, and must not wait
/// for it — one that holds an invitation's row while it writes its audit entry would
/// otherwise deadlock with an invitation made for the same e-mail.
///
/// [`StoreError::NotFound`] for a deleted (or unknown) account.
pub(crate) async fn lock_open_account(
    txn: &DatabaseTransaction,
    account: AccountId,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let lock = if backend == sea_orm::DbBackend::Postgres {
        " FOR NO KEY UPDATE"
    } else {
        ""
    };
    txn.query_one_raw(statement(
        backend,
        &format!("SELECT id FROM accounts WHERE id = $1 AND deleted_at IS NULL{lock}"),
        [account.0.into()],
    ))
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(())
}
