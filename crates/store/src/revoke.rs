//! Revoking keys: one transaction locks the keys (ascending id), marks the live ones revoked,
//! appends their changes to the key change log and writes their audit entries; the caller
//! then waits for one revocation barrier, for the highest change among them.
//!
//! Lock order, in this and every transaction that takes more than one of these: key rows in
//! ascending id, then `key_log_head`, then the account row, then usage rows. Making a key or
//! an invitation, accepting one and changing a member take the account row (`FOR NO KEY
//! UPDATE`, which leaves other transactions' foreign-key checks free) before any invitation
//! or membership row, as the account's deletion does.

use agentvista_keys::{AccountId, Actor, KeyHash, KeyId, KeyRecord, Origin, Revoked};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::LockType;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio::time::Instant;

use crate::audit::{AuditAction, NewAuditEntry, append_in};
use crate::changes::{self, Change, ChangeKind};
use crate::db::{begin_immediate, db_time, placeholders};
use crate::entities::api_keys;
use crate::keys::{record, stored_hash};
use crate::sql::statement;
use crate::{Store, StoreError};

/// Which keys a revocation ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// Key `id` of an account (another account's key is not found).
    Key(AccountId, KeyId),
    /// Every key among these hashes, whatever its account (a leak report).
    Hashes(&'a [KeyHash]),
    /// Every key of an account being deleted.
    Account(AccountId),
}

/// Why the keys are revoked, as their audit entries say.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reason<'a> {
    /// Its owner (a user, a key, the command line) revoked it: `key.revoked`, written only
    /// when this call revoked it.
    Owner,
    /// A leak report, with where the keys were found: `key.reported_leaked`, written for
    /// every key found, `detail.already_revoked` telling a key revoked before.
    Leak { source: Option<&'a str> },
    /// The account is being deleted, by the person with this e-mail (`None`: the operator):
    /// no key entries (the log goes with the account); the same transaction closes it.
    AccountClosed { email: Option<&'a str> },
}

/// Who revokes, when, from where, and why.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Note<'a> {
    pub(crate) by: Actor,
    pub(crate) at: DateTime<Utc>,
    pub(crate) origin: &'a Origin,
    pub(crate) reason: Reason<'a>,
}

/// What a revocation committed.
#[derive(Debug)]
pub(crate) struct Revocation {
    /// Each key found, after the revocation, and whether this call revoked it.
    pub(crate) keys: Vec<(KeyRecord, Revoked)>,
    /// The keys' hashes, by which replicas evict them.
    pub(crate) hashes: Vec<KeyHash>,
    /// The change to wait for: the highest of this call's changes and of the last changes of
    /// the keys revoked before (`None` when no key was found).
    pub(crate) seq: Option<i64>,
    /// When the commit returned: the barrier's bound counts from here.
    pub(crate) committed: Instant,
}

impl Store {
    /// Revokes `target`'s keys in one transaction (see the module's documentation). Revoking
    /// a revoked key is no error: its revocation time stays, and its last change is waited for.
    pub(crate) async fn revoke_keys(
        &self,
        target: Target<'_>,
        note: Note<'_>,
    ) -> Result<Revocation, StoreError> {
        let txn = begin_immediate(&self.write).await?;
        let rows = lock_keys(&txn, target).await?;
        let closing = match (target, note.reason) {
            (Target::Account(account), Reason::AccountClosed { email }) => Some((account, email)),
            _ => None,
        };
        if rows.is_empty() && closing.is_none() {
            txn.rollback().await?;
            return Ok(Revocation {
                keys: Vec::new(),
                hashes: Vec::new(),
                seq: None,
                committed: Instant::now(),
            });
        }
        let at = db_time(note.at);
        let (mut keys, mut hashes, mut seq) = revoke_rows(&txn, rows, note).await?;
        let before: Vec<KeyId> = keys
            .iter()
            .filter(|(_, revoked)| *revoked == Revoked::Already)
            .map(|(record, _)| record.id)
            .collect();
        if !before.is_empty() {
            seq = seq.max(Some(last_change_of(&txn, &before).await?));
        }
        // After the keys: the lock order puts the account row behind them.
        if let Some((account, email)) = closing {
            close(&txn, account, email, at).await?;
            // A key created while this transaction waited for the account row (PostgreSQL:
            // a creation locks the row first, and now finds the account deleted) is revoked
            // too; none can be created from here on.
            let late: Vec<_> = lock_keys(&txn, target)
                .await?
                .into_iter()
                .filter(|row| row.revoked_at.is_none())
                .collect();
            if !late.is_empty() {
                let (more, more_hashes, more_seq) = revoke_rows(&txn, late, note).await?;
                keys.extend(more);
                hashes.extend(more_hashes);
                seq = seq.max(more_seq);
            }
        }
        txn.commit().await?;
        Ok(Revocation {
            keys,
            hashes,
            seq,
            committed: Instant::now(),
        })
    }
}

/// Revokes the live ones among `rows` (locked already): their `revoked_at`, their changes in
/// the key change log, their audit entries. Answers each key with whether this call revoked
/// it, their hashes, and the highest change appended.
async fn revoke_rows(
    txn: &DatabaseTransaction,
    rows: Vec<api_keys::Model>,
    note: Note<'_>,
) -> Result<(Vec<(KeyRecord, Revoked)>, Vec<KeyHash>, Option<i64>), StoreError> {
    let backend = txn.get_database_backend();
    let live: Vec<i64> = rows
        .iter()
        .filter(|row| row.revoked_at.is_none())
        .map(|row| row.id)
        .collect();
    let at = db_time(note.at);
    if !live.is_empty() {
        let mut values = vec![at.into()];
        values.extend(live.iter().map(|&id| id.into()));
        txn.execute_raw(statement(
            backend,
            &format!(
                "UPDATE api_keys SET revoked_at = $1 WHERE id IN ({})",
                placeholders(2, live.len())
            ),
            values,
        ))
        .await?;
    }
    let mut seq = None;
    let mut keys = Vec::with_capacity(rows.len());
    let mut hashes = Vec::with_capacity(rows.len());
    for row in rows {
        hashes.push(stored_hash(&row.key_hash)?);
        let revoked = if row.revoked_at.is_none() {
            let change = Change {
                key: KeyId(row.id),
                key_hash: &row.key_hash,
                account: AccountId(row.account_id),
                kind: ChangeKind::Revoked,
                actor: note.by,
                at,
            };
            seq = seq.max(Some(changes::append(txn, change).await?));
            Revoked::Now
        } else {
            Revoked::Already
        };
        let mut record = record(row)?;
        if revoked == Revoked::Now {
            record.revoked_at = Some(at);
        }
        audit(txn, &record, revoked, note).await?;
        keys.push((record, revoked));
    }
    Ok((keys, hashes, seq))
}

/// Locks `target`'s key rows, in ascending id, and reads them as the lock finds them (on
/// SQLite the transaction holds the write lock already).
async fn lock_keys(
    txn: &DatabaseTransaction,
    target: Target<'_>,
) -> Result<Vec<api_keys::Model>, StoreError> {
    use api_keys::Column as K;
    let query = match target {
        Target::Key(account, id) => api_keys::Entity::find()
            .filter(K::AccountId.eq(account.0))
            .filter(K::Id.eq(id.0)),
        Target::Hashes(hashes) => {
            api_keys::Entity::find().filter(K::KeyHash.is_in(hashes.iter().map(KeyHash::to_hex)))
        }
        Target::Account(account) => api_keys::Entity::find().filter(K::AccountId.eq(account.0)),
    };
    Ok(query
        .order_by_asc(K::Id)
        .lock(LockType::Update)
        .all(txn)
        .await?)
}

/// The highest last change of `keys` (revoked before this transaction); a key revoked before
/// the change log existed has none, and waits for the whole log.
async fn last_change_of(txn: &DatabaseTransaction, keys: &[KeyId]) -> Result<i64, StoreError> {
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT MAX(COALESCE(\
                    (SELECT MAX(c.seq) FROM key_changes c WHERE c.key_id = k.id), \
                    (SELECT h.seq FROM key_log_head h))) AS seq \
                 FROM api_keys k WHERE k.id IN ({})",
                placeholders(1, keys.len())
            ),
            keys.iter().map(|k| k.0.into()),
        ))
        .await?
        .ok_or(StoreError::Corrupt {
            what: "key_changes",
        })?;
    Ok(crate::sql::int(&row, "seq")?)
}

/// The audit entry of `record`'s revocation, if `note` asks for one.
async fn audit(
    txn: &DatabaseTransaction,
    record: &KeyRecord,
    revoked: Revoked,
    note: Note<'_>,
) -> Result<(), StoreError> {
    let (action, detail) = match note.reason {
        Reason::Owner if revoked == Revoked::Already => return Ok(()),
        Reason::AccountClosed { .. } => return Ok(()),
        Reason::Owner => (AuditAction::KeyRevoked, None),
        Reason::Leak { source } => (
            AuditAction::KeyReportedLeaked,
            Some(serde_json::json!({
                "source": source,
                "already_revoked": revoked == Revoked::Already,
            })),
        ),
    };
    append_in(
        txn,
        NewAuditEntry {
            account: record.account_id,
            action,
            actor: note.by.to_string(),
            target: Some(record.prefix.to_string()),
            origin: note.origin,
            detail,
            at: note.at,
        },
    )
    .await
}

/// Closes `account` inside its keys' revocation: the row becomes a tombstone (renamed, so that
/// the name is free again, and marked with who deleted it and when), and its sessions,
/// memberships and pending invitations end. [`StoreError::NotFound`] when there is no such
/// open account: the transaction is then rolled back.
async fn close(
    txn: &DatabaseTransaction,
    account: AccountId,
    email: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let closed = txn
        .execute_raw(statement(
            backend,
            // `||` concatenates on both databases; PostgreSQL casts the id to text itself. The
            // trailing space makes a name no one can give (names are trimmed), so the rename
            // never collides with a live account's.
            "UPDATE accounts SET deleted_at = $1, deleted_by = $2, \
             name = name || ' (deleted ' || id || ') ' WHERE id = $3 AND deleted_at IS NULL",
            [at.into(), email.map(str::to_owned).into(), account.0.into()],
        ))
        .await?;
    if closed.rows_affected() != 1 {
        return Err(StoreError::NotFound);
    }
    for sql in [
        "DELETE FROM sessions WHERE account_id = $1",
        "DELETE FROM memberships WHERE account_id = $1",
    ] {
        txn.execute_raw(statement(backend, sql, [account.0.into()]))
            .await?;
    }
    txn.execute_raw(statement(
        backend,
        "UPDATE invitations SET revoked_at = $1 WHERE account_id = $2 \
         AND accepted_at IS NULL AND revoked_at IS NULL",
        [at.into(), account.0.into()],
    ))
    .await?;
    Ok(())
}
