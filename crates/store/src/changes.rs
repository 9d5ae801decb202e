//! The key change log (`docs/architecture.md`, "Verified keys in memory"): every change that
//! can stop a key from working appends a row to `key_changes` **in its own transaction**, with
//! a `seq` taken from the one-row `key_log_head` — whose row lock makes `seq` order commits, so
//! a follower that has read "everything up to n" has missed nothing below n.

use agentvista_keys::{AccountId, Actor, KeyId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr};

use crate::db::db_time;
use crate::sql::statement;

/// The PostgreSQL channel a committed change is announced on (its payload: the `seq`).
pub(crate) const CHANNEL: &str = "agentvista_key_changes";

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// Revoked: it never works again.
    Revoked,
    /// Its expiry moved earlier (a roll's grace): it stops working then.
    Expiry,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Revoked => "revoked",
            ChangeKind::Expiry => "expiry",
        }
    }
}

/// One change, as appended.
pub(crate) struct Change<'a> {
    pub(crate) key: KeyId,
    /// SHA-256 (hex) of the key: replicas evict by it.
    pub(crate) key_hash: &'a str,
    pub(crate) account: AccountId,
    pub(crate) kind: ChangeKind,
    pub(crate) actor: Actor,
    pub(crate) at: DateTime<Utc>,
}

/// Appends `change` in `txn` and returns its `seq`; on PostgreSQL the commit also announces it
/// on [`CHANNEL`]. The head's row stays locked until `txn` ends, which orders concurrent
/// changers by commit.
pub(crate) async fn append(txn: &DatabaseTransaction, change: Change<'_>) -> Result<i64, DbErr> {
    let backend = txn.get_database_backend();
    let head = txn
        .query_one_raw(statement(
            backend,
            "UPDATE key_log_head SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            [],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("key_log_head has no row".into()))?;
    let seq: i64 = head.try_get("", "seq")?;
    txn.execute_raw(statement(
        backend,
        "INSERT INTO key_changes (seq, key_id, key_hash, account_id, kind, actor, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            seq.into(),
            change.key.0.into(),
            change.key_hash.into(),
            change.account.0.into(),
            change.kind.as_str().into(),
            change.actor.to_string().into(),
            db_time(change.at).into(),
        ],
    ))
    .await?;
    if backend == DbBackend::Postgres {
        txn.execute_raw(statement(
            backend,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), seq.to_string().into()],
        ))
        .await?;
    }
    Ok(seq)
}
