//! Usage per day and per key: what the accounting transaction adds to `usage_daily` alongside
//! the month's count (`ledger/usage.rs`), read back for a period.

use agentvista_keys::{KeyId, KeyPrefix};
use agentvista_quota::Period;
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, QueryResult};

use crate::sql::statement;
use crate::{AccountId, Store, StoreError};

/// A period's usage, day by day and key by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyUsage {
    /// Every day of the period, in order, with the events counted on it (0 for none, and for
    /// days still to come).
    pub days: Vec<(NaiveDate, u64)>,
    /// The keys of the account that sent events in the period, most events first.
    pub keys: Vec<KeyUsage>,
    /// Events sent with a dashboard session rather than a key.
    pub without_key: u64,
}

/// One key's events in a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    /// The key.
    pub id: KeyId,
    /// Its prefix.
    pub prefix: KeyPrefix,
    /// Its name.
    pub name: String,
    /// Events it sent that were counted in the period.
    pub events: u64,
}

impl Store {
    /// `account`'s usage in `period`, per day and per key. The days add up to the period's
    /// count ([`Store::used`]): both are written by the same transaction.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn usage_daily(
        &self,
        account: AccountId,
        period: Period,
    ) -> Result<DailyUsage, StoreError> {
        let db = self.reader();
        let backend = db.get_database_backend();
        let (first, next) = (period.first_day(), period.next().first_day());
        let per_day = db
            .query_all_raw(statement(
                backend,
                "SELECT day, CAST(SUM(events) AS BIGINT) AS events FROM usage_daily \
                 WHERE account_id = $1 AND day >= $2 AND day < $3 GROUP BY day",
                [account.0.into(), first.into(), next.into()],
            ))
            .await?;
        let mut counted = std::collections::HashMap::new();
        for row in &per_day {
            let day: NaiveDate = row.try_get("", "day")?;
            counted.insert(day, events(row)?);
        }
        let days = first
            .iter_days()
            .take_while(|day| *day < next)
            .map(|day| (day, counted.get(&day).copied().unwrap_or(0)))
            .collect();
        let per_key = db
            .query_all_raw(statement(
                backend,
                "SELECT d.key_id, k.prefix, k.name, CAST(SUM(d.events) AS BIGINT) AS events \
                 FROM usage_daily d LEFT JOIN api_keys k ON k.id = d.key_id \
                 WHERE d.account_id = $1 AND d.day >= $2 AND d.day < $3 \
                 GROUP BY d.key_id, k.prefix, k.name \
                 ORDER BY SUM(d.events) DESC, d.key_id DESC",
                [account.0.into(), first.into(), next.into()],
            ))
            .await?;
        let mut keys = Vec::new();
        let mut without_key = 0;
        for row in &per_key {
            let prefix: Option<String> = row.try_get("", "prefix")?;
            let name: Option<String> = row.try_get("", "name")?;
            match (prefix, name) {
                (Some(prefix), Some(name)) => keys.push(KeyUsage {
                    id: KeyId(row.try_get("", "key_id")?),
                    prefix: KeyPrefix::parse(&prefix).map_err(|_| StoreError::Corrupt {
                        what: "api_keys.prefix",
                    })?,
                    name,
                    events: events(row)?,
                }),
                // Key 0: a session's events.
                _ => without_key += events(row)?,
            }
        }
        Ok(DailyUsage {
            days,
            keys,
            without_key,
        })
    }
}

/// A `SUM(events)`, cast to `BIGINT` (PostgreSQL would sum into `NUMERIC`).
fn events(row: &QueryResult) -> Result<u64, StoreError> {
    let sum: i64 = row.try_get("", "events")?;
    Ok(u64::try_from(sum).unwrap_or(0))
}
