//! The count: the account's terms, its allowance, and the one statement that adds to the
//! period's usage only what fits.

use std::collections::{BTreeSet, HashMap};

use agentvista_quota::{Allowance, Period, Plans, UnknownPlan};
use sea_orm::sea_query::{
    CommonTableExpression, Expr, ExprTrait, LockType, OnConflict, Query, WithClause,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryResult, QuerySelect, Statement,
};

use super::batch::{HashedContext, ROWS_PER_INSERT};
use crate::AccountId;
use crate::entities::{OfAccount, accounts, event_contexts, usage_periods};

/// What the account's row says its allowance is.
#[derive(Clone, Debug)]
pub(super) struct Terms {
    pub(super) plan: String,
    pub(super) cap: Option<u64>,
}

impl Terms {
    /// The terms of a row's `plan` and `spend_cap_cents`.
    fn stored(plan: String, cap: Option<i64>) -> Result<Self, DbErr> {
        let cap = cap
            .map(u64::try_from)
            .transpose()
            .map_err(|_| DbErr::Custom("stored accounts.spend_cap_cents is negative".into()))?;
        Ok(Terms { plan, cap })
    }

    /// The allowance `plans` give these terms.
    pub(super) fn allowance(&self, plans: &Plans) -> Result<Allowance, UnknownPlan> {
        plans.allowance(&self.plan, self.cap)
    }
}

/// What [`count`] found.
pub(super) enum Counted {
    /// Counted, with the new total (`Some`), or refused: over the allowance (`None`).
    Confirmed(Option<u64>),
    /// Nothing done: over the allowance, or the account's terms are no longer those the
    /// allowance was computed from (only when asked to confirm them; one statement cannot
    /// tell which).
    TermsChanged,
}

/// The account's terms and the ids of those of `contexts` the account has already, in one
/// statement; `None` for the contexts when there were too many to look up here (then
/// [`store_contexts`](super::contexts::store_contexts) reads them in chunks).
pub(super) async fn opening_read(
    txn: &DatabaseTransaction,
    account: AccountId,
    contexts: &[HashedContext],
) -> Result<(Terms, Option<HashMap<String, i64>>), DbErr> {
    use accounts::Column as A;
    use event_contexts::Column as C;
    let mut read = Query::select();
    read.from(accounts::Entity)
        .column((accounts::Entity, A::Plan))
        .column((accounts::Entity, A::SpendCapCents))
        .and_where(Expr::col((accounts::Entity, A::Id)).eq(account.0));
    let hashes: BTreeSet<&str> = contexts.iter().map(|c| c.hash.as_str()).collect();
    // Beyond one statement's worth of parameters, the contexts are read in chunks later.
    let joined = !hashes.is_empty() && hashes.len() <= ROWS_PER_INSERT;
    if joined {
        read.expr_as(Expr::col((event_contexts::Entity, C::Id)), "context_id")
            .expr_as(Expr::col((event_contexts::Entity, C::Hash)), "context_hash")
            .left_join(
                event_contexts::Entity,
                Expr::col((event_contexts::Entity, C::AccountId))
                    .equals((accounts::Entity, A::Id))
                    .and(Expr::col((event_contexts::Entity, C::Hash)).is_in(hashes)),
            );
    }
    let rows = txn.query_all(&read).await?;
    let mut terms = None;
    let mut known = HashMap::new();
    for row in rows {
        if terms.is_none() {
            terms = Some(Terms::stored(
                row.try_get("", "plan")?,
                row.try_get("", "spend_cap_cents")?,
            )?);
        }
        if !joined {
            break;
        }
        // NULL when none of the contexts is stored yet (the join found nothing).
        let id: Option<i64> = row.try_get("", "context_id")?;
        let hash: Option<String> = row.try_get("", "context_hash")?;
        if let (Some(id), Some(hash)) = (id, hash) {
            known.insert(hash, id);
        }
    }
    let terms = terms.ok_or_else(|| DbErr::RecordNotFound(format!("account {}", account.0)))?;
    Ok((terms, (joined || contexts.is_empty()).then_some(known)))
}

/// What a count adds to: the account, the period, the allowance, and the terms the allowance
/// was computed from when they must be confirmed (PostgreSQL always, as the opening read is a
/// snapshot; both databases when the terms were remembered from an earlier transaction).
pub(super) struct Count<'a> {
    pub(super) account: AccountId,
    pub(super) period: Period,
    pub(super) allowance: Allowance,
    pub(super) confirm: Option<&'a Terms>,
}

/// Adds `n` to the period's usage if the total stays within the allowance; with terms to
/// confirm, only if the account's terms are still those (PostgreSQL: checked under the row's
/// lock; SQLite: under the write lock the transaction holds).
///
/// The whole of the accounting is this one statement (see [`count_statement`]).
pub(super) async fn count(
    txn: &DatabaseTransaction,
    what: &Count<'_>,
    n: u64,
) -> Result<Counted, DbErr> {
    if !what.allowance.admits(0, n) {
        return Ok(Counted::Confirmed(None));
    }
    let statement = count_statement(txn.get_database_backend(), what, n, None)?;
    // With terms to confirm, no row means a refusal or changed terms: the second statement
    // (rare) tells them apart.
    match txn.query_one_raw(statement).await? {
        Some(row) => Ok(Counted::Confirmed(Some(events_used(&row)?))),
        None if what.confirm.is_some() => Ok(Counted::TermsChanged),
        None => Ok(Counted::Confirmed(None)),
    }
}

/// The period's new total from the row [`count_statement`] returns.
pub(super) fn events_used(row: &QueryResult) -> Result<u64, DbErr> {
    let used: i64 = row.try_get("", "events_used")?;
    Ok(u64::try_from(used).unwrap_or(0))
}

/// The statement that adds `n` to the period's usage, returning the new total (`events_used`)
/// only if it counted. A new month's row is inserted with `n`; an existing row gains `n` only
/// if the total stays within the limit, else the statement changes and returns nothing.
/// Concurrent transactions queue on the row (PostgreSQL re-checks the condition against the
/// committed value; SQLite has one writer at a time), so the count can never pass the limit.
/// The caller checks first that `n` alone fits (`Allowance::admits(0, n)`).
///
/// With `only_after_inserting: Some(k)` (SQLite), the statement counts only if the statement
/// before it in the same call changed exactly `k` rows: the events insert, when none of its
/// `k` events was a duplicate.
///
/// The account row is locked here, not at the opening read, so that an account's concurrent
/// requests insert their events in parallel and queue only for the count. `FOR NO KEY UPDATE`
/// makes a change of plan or cap wait for the accounting that holds the row, and accounting
/// that comes later wait for the change and then see its values. Not `FOR SHARE`: share
/// lockers that overlap without pause starve an `UPDATE`. The lock does not conflict with the
/// `FOR KEY SHARE` of the events' foreign-key checks.
pub(super) fn count_statement(
    backend: DbBackend,
    what: &Count<'_>,
    n: u64,
    only_after_inserting: Option<u64>,
) -> Result<Statement, DbErr> {
    use usage_periods::Column as U;
    let Count {
        account,
        period,
        allowance,
        confirm,
    } = *what;
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let current = Expr::col((usage_periods::Entity, U::EventsUsed));
    let mut on_conflict = OnConflict::columns([U::AccountId, U::PeriodStart]);
    on_conflict.value(U::EventsUsed, current.clone().add(n));
    if let Some(limit) = allowance.limit() {
        on_conflict.action_and_where(current.add(n).lte(i64::try_from(limit).unwrap_or(i64::MAX)));
    }
    let mut insert = Query::insert();
    insert
        .into_table(usage_periods::Entity)
        .columns([U::AccountId, U::PeriodStart, U::EventsUsed])
        .on_conflict(on_conflict)
        .returning_col(U::EventsUsed);
    let mut source = Query::select();
    source.exprs([
        Expr::val(account.0),
        Expr::val(period.first_day()),
        Expr::val(n),
    ]);
    if let Some(k) = only_after_inserting {
        source.and_where(Expr::cust("changes()").eq(i64::try_from(k).unwrap_or(i64::MAX)));
    }
    let Some(terms) = confirm else {
        match only_after_inserting {
            None => insert.values([account.0.into(), period.first_day().into(), n.into()]),
            Some(_) => insert.select_from(source),
        }
        .map_err(|e| DbErr::Custom(e.to_string()))?;
        return Ok(backend.build(&insert));
    };
    use accounts::Column as A;
    let cap = terms.cap.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
    source
        .from("terms")
        .and_where(Expr::col(A::Plan).eq(terms.plan.as_str()))
        .and_where(match cap {
            Some(cap) => Expr::col(A::SpendCapCents).eq(cap),
            None => Expr::col(A::SpendCapCents).is_null(),
        });
    insert
        .select_from(source)
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let mut locked = Query::select();
    locked
        .columns([A::Plan, A::SpendCapCents])
        .from(accounts::Entity)
        .and_where(Expr::col(A::Id).eq(account.0))
        .lock(LockType::NoKeyUpdate);
    let with = WithClause::new()
        .cte(
            CommonTableExpression::new()
                .query(locked)
                .table_name("terms")
                .to_owned(),
        )
        .to_owned();
    Ok(backend.build(&with.query(insert)))
}

/// The account's terms as of now, read under the lock [`count`] describes (PostgreSQL;
/// SQLite's transaction holds the database's write lock already).
pub(super) async fn locked_terms(
    txn: &DatabaseTransaction,
    account: AccountId,
) -> Result<Terms, DbErr> {
    let row = accounts::Entity::find_by_id(account.0)
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("account {}", account.0)))?;
    Terms::stored(row.plan, row.spend_cap_cents)
}

/// Events counted for `account` in `period`, as `db` (a pool or a transaction) sees them.
pub(crate) async fn used_in(
    db: &impl ConnectionTrait,
    account: AccountId,
    period: Period,
) -> Result<u64, DbErr> {
    let row = usage_periods::Entity::of_account(account)
        .filter(usage_periods::Column::PeriodStart.eq(period.first_day()))
        .one(db)
        .await?;
    Ok(row.map_or(0, |r| u64::try_from(r.events_used).unwrap_or(0)))
}
