//! The contexts a job's events share: found among the account's, or stored once. Each row's
//! `last_seen` is raised to the day the job was received (the retention sweep deletes a context
//! only once that day is past its plan's retention, so only once no event refers to it), and a
//! mark the sweep left on it is cleared, in the job's transaction; a row the sweep deleted
//! meanwhile is stored again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, QueryFilter, QuerySelect, Value,
};

use super::batch::{HashedContext, ROWS_PER_INSERT};
use chrono::NaiveDate;

use crate::AccountId;
use crate::db::placeholders;
use crate::entities::{OfAccount, event_contexts};
use crate::sql::statement;

/// Stored contexts a job looked up: row id by content hash, and which rows need touching
/// (marked by the sweep, or last seen before the job's day).
#[derive(Debug, Default)]
pub(super) struct Found {
    ids: HashMap<String, i64>,
    stale: BTreeSet<i64>,
}

impl Found {
    /// Whether a row read with this mark and day must be touched by a job of `day`.
    pub(super) fn stale(
        orphaned_at: Option<i64>,
        last_seen: Option<NaiveDate>,
        day: NaiveDate,
    ) -> bool {
        orphaned_at.is_some() || last_seen.is_none_or(|seen| seen < day)
    }

    /// Notes a stored row.
    pub(super) fn found(&mut self, hash: String, id: i64, stale: bool) {
        if stale {
            self.stale.insert(id);
        }
        self.ids.insert(hash, id);
    }

    /// Raises the stale rows' `last_seen` to `day` and clears their marks; those the sweep
    /// deleted meanwhile are dropped, to be stored again.
    async fn touch(&mut self, txn: &DatabaseTransaction, day: NaiveDate) -> Result<(), DbErr> {
        if self.stale.is_empty() {
            return Ok(());
        }
        let stale = std::mem::take(&mut self.stale);
        // On PostgreSQL this waits for a sweep deleting the same rows; then they are gone.
        let rows = txn
            .query_all_raw(statement(
                txn.get_database_backend(),
                &format!(
                    "UPDATE event_contexts SET orphaned_at = NULL, \
                     last_seen = CASE WHEN last_seen >= $1 THEN last_seen ELSE $1 END \
                     WHERE id IN ({}) RETURNING id",
                    placeholders(2, stale.len())
                ),
                std::iter::once(Value::from(day)).chain(stale.iter().map(|&id| Value::from(id))),
            ))
            .await?;
        let mut alive = BTreeSet::new();
        for row in &rows {
            alive.insert(row.try_get::<i64>("", "id")?);
        }
        self.ids
            .retain(|_, id| !stale.contains(id) || alive.contains(id));
        Ok(())
    }

    fn contains_key(&self, hash: &str) -> bool {
        self.ids.contains_key(hash)
    }
}

/// The row ids of the job's contexts, in order: existing rows of the account are reused, the
/// others inserted (parents first, since a child's row names its parent's id).
pub(super) async fn store_contexts(
    txn: &DatabaseTransaction,
    account: AccountId,
    contexts: &[HashedContext],
    known: Option<Found>,
    day: NaiveDate,
) -> Result<Vec<i64>, DbErr> {
    if contexts.is_empty() {
        return Ok(Vec::new());
    }
    // `known` is every stored one of them, read already in this transaction; without it,
    // read them here.
    let mut ids = match known {
        Some(known) => known,
        None => {
            let mut ids = Found::default();
            let all: Vec<&str> = contexts.iter().map(|c| c.hash.as_str()).collect();
            find_contexts(txn, account, &all, &mut ids, day).await?;
            ids
        }
    };
    ids.touch(txn, day).await?;
    if contexts.iter().any(|c| !ids.contains_key(&c.hash)) {
        // Depth of each context; a parent precedes its child (checked before the transaction).
        let mut depth = vec![0usize; contexts.len()];
        for (i, context) in contexts.iter().enumerate() {
            depth[i] = context.parent.map_or(0, |p| depth[p] + 1);
        }
        for level in 0..=depth.iter().copied().max().unwrap_or(0) {
            // Sorted and without repeats: concurrent requests take the index locks in the same
            // order, so they wait for each other instead of deadlocking.
            let missing: BTreeMap<&str, &HashedContext> = contexts
                .iter()
                .zip(&depth)
                .filter(|(c, d)| **d == level && !ids.contains_key(&c.hash))
                .map(|(c, _)| (c.hash.as_str(), c))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let rows: Vec<&HashedContext> = missing.values().copied().collect();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                insert_contexts(txn, account, contexts, chunk, &ids.ids, day).await?;
            }
            let hashes: Vec<&str> = missing.keys().copied().collect();
            find_contexts(txn, account, &hashes, &mut ids, day).await?;
            ids.touch(txn, day).await?;
        }
    }
    contexts
        .iter()
        .map(|c| {
            ids.ids
                .get(&c.hash)
                .copied()
                .ok_or_else(|| DbErr::Custom("an inserted event context was not found".into()))
        })
        .collect()
}

async fn find_contexts(
    txn: &DatabaseTransaction,
    account: AccountId,
    hashes: &[&str],
    ids: &mut Found,
    day: NaiveDate,
) -> Result<(), DbErr> {
    use event_contexts::Column as C;
    let wanted: HashSet<&str> = hashes.iter().copied().collect();
    let wanted: Vec<&str> = wanted.into_iter().collect();
    for chunk in wanted.chunks(ROWS_PER_INSERT) {
        let rows: Vec<(i64, String, Option<i64>, Option<NaiveDate>)> =
            event_contexts::Entity::of_account(account)
                .select_only()
                .column(C::Id)
                .column(C::Hash)
                .column(C::OrphanedAt)
                .column(C::LastSeen)
                .filter(C::Hash.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(txn)
                .await?;
        for (id, hash, orphaned_at, last_seen) in rows {
            ids.found(hash, id, Found::stale(orphaned_at, last_seen, day));
        }
    }
    Ok(())
}

async fn insert_contexts(
    txn: &DatabaseTransaction,
    account: AccountId,
    all: &[HashedContext],
    rows: &[&HashedContext],
    ids: &HashMap<String, i64>,
    day: NaiveDate,
) -> Result<(), DbErr> {
    use event_contexts::Column as C;
    let mut insert = Query::insert();
    insert.into_table(event_contexts::Entity).columns([
        C::AccountId,
        C::ParentId,
        C::Hash,
        C::Body,
        C::LastSeen,
    ]);
    for row in rows {
        let parent_id = row
            .parent
            .and_then(|p| all.get(p))
            .and_then(|p| ids.get(&p.hash).copied());
        insert
            .values([
                account.0.into(),
                parent_id.into(),
                row.hash.clone().into(),
                crate::sql::json_text(txn.get_database_backend(), Some(&row.body)),
                day.into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    // A concurrent request may have stored the same context: then its row serves both.
    insert.on_conflict(
        OnConflict::columns([C::AccountId, C::Hash])
            .do_nothing()
            .to_owned(),
    );
    txn.execute(&insert).await?;
    Ok(())
}
