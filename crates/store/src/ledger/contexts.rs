//! The contexts a job's events share: found among the account's, or stored once.

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, QueryFilter, QuerySelect};

use super::batch::{HashedContext, ROWS_PER_INSERT};
use crate::AccountId;
use crate::entities::{OfAccount, event_contexts};

/// The row ids of the job's contexts, in order: existing rows of the account are reused, the
/// others inserted (parents first, since a child's row names its parent's id).
pub(super) async fn store_contexts(
    txn: &DatabaseTransaction,
    account: AccountId,
    contexts: &[HashedContext],
    known: Option<HashMap<String, i64>>,
) -> Result<Vec<i64>, DbErr> {
    if contexts.is_empty() {
        return Ok(Vec::new());
    }
    // `known` is every stored one of them, read already in this transaction; without it,
    // read them here.
    let mut ids = match known {
        Some(known) => known,
        None => {
            let mut ids = HashMap::new();
            let all: Vec<&str> = contexts.iter().map(|c| c.hash.as_str()).collect();
            find_contexts(txn, account, &all, &mut ids).await?;
            ids
        }
    };
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
                insert_contexts(txn, account, contexts, chunk, &ids).await?;
            }
            let hashes: Vec<&str> = missing.keys().copied().collect();
            find_contexts(txn, account, &hashes, &mut ids).await?;
        }
    }
    contexts
        .iter()
        .map(|c| {
            ids.get(&c.hash)
                .copied()
                .ok_or_else(|| DbErr::Custom("an inserted event context was not found".into()))
        })
        .collect()
}

async fn find_contexts(
    txn: &DatabaseTransaction,
    account: AccountId,
    hashes: &[&str],
    ids: &mut HashMap<String, i64>,
) -> Result<(), DbErr> {
    use event_contexts::Column as C;
    let wanted: HashSet<&str> = hashes.iter().copied().collect();
    let wanted: Vec<&str> = wanted.into_iter().collect();
    for chunk in wanted.chunks(ROWS_PER_INSERT) {
        let rows: Vec<(i64, String)> = event_contexts::Entity::of_account(account)
            .select_only()
            .column(C::Id)
            .column(C::Hash)
            .filter(C::Hash.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        ids.extend(rows.into_iter().map(|(id, hash)| (hash, id)));
    }
    Ok(())
}

async fn insert_contexts(
    txn: &DatabaseTransaction,
    account: AccountId,
    all: &[HashedContext],
    rows: &[&HashedContext],
    ids: &HashMap<String, i64>,
) -> Result<(), DbErr> {
    use event_contexts::Column as C;
    let mut insert = Query::insert();
    insert.into_table(event_contexts::Entity).columns([
        C::AccountId,
        C::ParentId,
        C::Hash,
        C::Body,
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
                super::write::json_text(txn.get_database_backend(), Some(&row.body)),
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
