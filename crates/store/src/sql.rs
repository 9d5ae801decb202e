//! Raw SQL helpers every module may use: statements bound by position on both databases, the
//! database's own clock, integer columns, JSON values. This module uses none of the others.

use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{DbBackend, DbErr, QueryResult, Statement, Value};
use serde_json::value::RawValue;

/// A statement in `$n` placeholders, which both drivers bind by position.
pub(crate) fn statement<I>(backend: DbBackend, sql: &str, values: I) -> Statement
where
    I: IntoIterator<Item = Value>,
{
    Statement::from_sql_and_values(backend, sql, values)
}

/// The database's own clock in milliseconds since the epoch — the clock leases are kept in,
/// so that replicas' clocks never need to agree. PostgreSQL's `clock_timestamp()` moves
/// within a transaction (`now()` would not).
pub(crate) fn now_ms_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        _ => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

/// Reads column `name` of `row` as `i64`.
pub(crate) fn int(row: &QueryResult, name: &str) -> Result<i64, DbErr> {
    row.try_get("", name)
}

/// A JSON column's value from its text: cast to `jsonb` on PostgreSQL (which parses it there),
/// stored as the text itself on SQLite, where JSON columns are text.
pub(crate) fn json_text(backend: DbBackend, json: Option<&RawValue>) -> SimpleExpr {
    let text = Value::String(json.map(|json| json.get().to_owned()));
    match backend {
        DbBackend::Postgres => Expr::cust_with_values("CAST($1 AS jsonb)", [text]),
        _ => text.into(),
    }
}
