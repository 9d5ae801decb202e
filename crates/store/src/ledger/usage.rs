//! The count: the account's terms, its allowance, and the one statement that adds to the
//! period's usage only what fits.

use std::collections::BTreeSet;

use agentvista_quota::{Allowance, Period, Plans, UnknownPlan};
use sea_orm::sea_query::{
    CommonTableExpression, Expr, ExprTrait, LockType, OnConflict, Query, WithClause,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryResult, QuerySelect, Statement,
};

use chrono::{DateTime, NaiveDate, Utc};

use super::batch::{HashedContext, ROWS_PER_INSERT};
use super::contexts::Found;
use crate::db::db_time;
use crate::entities::{OfAccount, accounts, api_keys, event_contexts, usage_periods};
use crate::{AccountId, KeyId};

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
    day: NaiveDate,
) -> Result<(Terms, Option<Found>), DbErr> {
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
            .expr_as(
                Expr::col((event_contexts::Entity, C::OrphanedAt)),
                "context_orphaned_at",
            )
            .expr_as(
                Expr::col((event_contexts::Entity, C::LastSeen)),
                "context_last_seen",
            )
            .left_join(
                event_contexts::Entity,
                Expr::col((event_contexts::Entity, C::AccountId))
                    .equals((accounts::Entity, A::Id))
                    .and(Expr::col((event_contexts::Entity, C::Hash)).is_in(hashes)),
            );
    }
    let rows = txn.query_all(&read).await?;
    let mut terms = None;
    let mut known = Found::default();
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
        let orphaned_at: Option<i64> = row.try_get("", "context_orphaned_at")?;
        let last_seen: Option<NaiveDate> = row.try_get("", "context_last_seen")?;
        if let (Some(id), Some(hash)) = (id, hash) {
            known.found(hash, id, Found::stale(orphaned_at, last_seen, day));
        }
    }
    let terms = terms.ok_or_else(|| DbErr::RecordNotFound(format!("account {}", account.0)))?;
    Ok((terms, (joined || contexts.is_empty()).then_some(known)))
}

/// What a count adds to: the account, the period, the allowance, and the terms the allowance
/// was computed from when they must be confirmed (PostgreSQL always, as the opening read is a
/// snapshot; both databases when the terms were remembered from an earlier transaction); and
/// the day and key whose row of `usage_daily` gains the same events.
pub(super) struct Count<'a> {
    pub(super) account: AccountId,
    /// The key the events came with, re-checked by the count on PostgreSQL: see
    /// [`count_statement`].
    pub(super) key: Option<KeyId>,
    pub(super) period: Period,
    pub(super) allowance: Allowance,
    pub(super) confirm: Option<&'a Terms>,
    pub(super) daily: Daily,
}

/// The row of `usage_daily` a count adds to: the day the events were received (UTC), and the
/// key they came with (0: a dashboard session).
#[derive(Clone, Copy, Debug)]
pub(super) struct Daily {
    pub(super) day: NaiveDate,
    pub(super) key_id: i64,
}

impl Daily {
    /// The row for events received at `received_at` with key `key` (none: a session).
    pub(super) fn of(received_at: DateTime<Utc>, key: Option<KeyId>) -> Self {
        Daily {
            day: received_at.date_naive(),
            key_id: key.map_or(0, |k| k.0),
        }
    }
}

/// Adds `n` events to a row of `usage_daily`, in SQLite's dialect (PostgreSQL's count adds them
/// in its own statement); with `after_count`, only if the statement before it in the same call
/// changed one row — the count, when it counted.
pub(super) fn daily_statement_sqlite(
    account: AccountId,
    daily: Daily,
    n: u64,
    after_count: bool,
) -> Statement {
    let sql = format!(
        "INSERT INTO usage_daily (account_id, day, key_id, events) SELECT ?, ?, ?, ? \
         WHERE {} {DAILY_CONFLICT}",
        if after_count { "changes() = 1" } else { "true" }
    );
    Statement::from_sql_and_values(
        DbBackend::Sqlite,
        sql,
        [
            account.0.into(),
            daily.day.into(),
            daily.key_id.into(),
            i64::try_from(n).unwrap_or(i64::MAX).into(),
        ],
    )
}

/// How a day's row gains the events of another request.
const DAILY_CONFLICT: &str = "ON CONFLICT (account_id, day, key_id) \
     DO UPDATE SET events = usage_daily.events + excluded.events";

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
    let backend = txn.get_database_backend();
    let statement = count_statement(backend, what, n, None)?;
    // With terms to confirm, no row means a refusal or changed terms: the second statement
    // (rare) tells them apart.
    match txn.query_one_raw(statement).await? {
        Some(row) => {
            if backend == DbBackend::Sqlite {
                // PostgreSQL's count statement added them already.
                txn.execute_raw(daily_statement_sqlite(what.account, what.daily, n, false))
                    .await?;
            }
            Ok(Counted::Confirmed(Some(events_used(&row)?)))
        }
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
/// only if it counted; on PostgreSQL it adds them to the day's and key's row of `usage_daily`
/// too, in the same statement (that row is locked after the period's, in every transaction,
/// so the two locks cannot deadlock). A new month's row is inserted with `n`; an existing row gains `n` only
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
        key,
        period,
        allowance,
        confirm,
        daily,
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
        return Ok(with_daily(backend.build(&insert), account, daily, n));
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
    let mut with = WithClause::new();
    if let (Some(key), DbBackend::Postgres) = (key, backend) {
        // The key row first (the lock order), the account row only if the key still works.
        with.cte(
            CommonTableExpression::new()
                .query(live_key(backend, key))
                .table_name("live_key")
                .to_owned(),
        );
        locked.and_where(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from("live_key")
                .to_owned(),
        ));
    }
    with.cte(
        CommonTableExpression::new()
            .query(locked)
            .table_name("terms")
            .to_owned(),
    );
    Ok(with_daily(
        backend.build(&with.query(insert)),
        account,
        daily,
        n,
    ))
}

/// On PostgreSQL, `count` wrapped so that the same statement adds the events it counted to
/// `usage_daily`: the daily insert reads the count's returned row, so it runs only when the
/// count did, and after it. SQLite has no data-modifying CTEs; its callers add the daily
/// statement themselves ([`daily_statement_sqlite`]).
fn with_daily(count: Statement, account: AccountId, daily: Daily, n: i64) -> Statement {
    if count.db_backend != DbBackend::Postgres {
        return count;
    }
    let Statement { sql, values, .. } = count;
    let mut values = values.map(|v| v.0).unwrap_or_default();
    let first = values.len() + 1;
    let sql = format!(
        "WITH counted AS ({sql}), daily AS (\
         INSERT INTO usage_daily (account_id, day, key_id, events) \
         SELECT ${}, ${}, ${}, ${} FROM counted {DAILY_CONFLICT}) \
         SELECT events_used FROM counted",
        first,
        first + 1,
        first + 2,
        first + 3,
    );
    values.extend([
        account.0.into(),
        daily.day.into(),
        daily.key_id.into(),
        n.into(),
    ]);
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The row of `key` if it still works — neither revoked nor expired — locked `FOR NO KEY
/// UPDATE` on PostgreSQL, where expiry is judged on the database's clock; SQLite's transaction
/// holds the write lock already, and every process on the file shares the host's clock.
///
/// Why a lock: a revocation's `UPDATE` of the row then waits for the accounting that holds
/// it, and accounting that comes later waits for the revocation and sees it — so the events
/// commit before the revocation does, or not at all. Not `FOR SHARE`: a busy key's
/// overlapping share lockers would starve its revocation.
pub(super) fn live_key(backend: DbBackend, key: KeyId) -> sea_orm::sea_query::SelectStatement {
    use api_keys::Column as K;
    let now = match backend {
        DbBackend::Postgres => Expr::cust("clock_timestamp()"),
        _ => Expr::val(db_time(Utc::now())),
    };
    Query::select()
        .column(K::Id)
        .from(api_keys::Entity)
        .and_where(Expr::col(K::Id).eq(key.0))
        .and_where(Expr::col(K::RevokedAt).is_null())
        .and_where(
            Expr::col(K::ExpiresAt)
                .is_null()
                .or(Expr::col(K::ExpiresAt).gt(now)),
        )
        .lock(LockType::NoKeyUpdate)
        .to_owned()
}

/// Whether `key` still works, as [`live_key`] judges and locks it.
pub(super) async fn key_is_live(txn: &DatabaseTransaction, key: KeyId) -> Result<bool, DbErr> {
    let backend = txn.get_database_backend();
    Ok(txn.query_one(&live_key(backend, key)).await?.is_some())
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
