//! The account's usage as the API answers it and the dashboard draws it: this month's count
//! against the plan, and the month day by day and key by key. Both read it here, so that the
//! billing page and `GET /api/v1/me/usage/` cannot disagree.

use agentvista_quota::{Period, UsageSummary};
use agentvista_store::Account;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{ApiError, AppState};

/// The account's usage this month: what the API's usage object and the billing page both
/// render. An account on a plan the configuration lacks is an operator's error (500), as it is
/// for ingestion.
pub(crate) async fn summary(state: &AppState, account: &Account) -> Result<UsageSummary, ApiError> {
    let period = Period::containing(Utc::now());
    let used = state.store.used(account.id, period).await?;
    state
        .config
        .plans
        .usage(&account.plan, account.spend_cap_cents, used, period)
        .map_err(ApiError::internal)
}

/// The month's usage day by day and key by key.
#[derive(Serialize, ToSchema)]
pub(crate) struct DailyUsage {
    /// The first instant of the calendar month (UTC).
    period_start: DateTime<Utc>,
    /// The first instant of the next month.
    period_end: DateTime<Utc>,
    /// Every day of the month, in order (days to come included, at 0). They add up to the
    /// usage object's `events_used`.
    days: Vec<Day>,
    /// The account's keys that sent events this month, most events first. Events sent with a
    /// dashboard session count in `days` only.
    keys: Vec<KeyEvents>,
}

/// One day's events.
#[derive(Serialize, ToSchema)]
struct Day {
    /// The day (UTC), `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date)]
    date: chrono::NaiveDate,
    /// Events counted on it.
    events: u64,
}

/// One key's events this month.
#[derive(Serialize, ToSchema)]
struct KeyEvents {
    /// The key's `id`.
    #[schema(value_type = i64)]
    id: agentvista_keys::KeyId,
    /// Its prefix.
    #[schema(value_type = String, pattern = "^av_[0-9a-f]{8}$")]
    prefix: agentvista_keys::KeyPrefix,
    /// Its name.
    name: String,
    /// Events it sent that were counted this month.
    events: u64,
}

/// The month's usage per day and key, as the API answers it and the dashboard draws it.
pub(crate) async fn daily_usage(
    state: &AppState,
    account: agentvista_keys::AccountId,
    period: Period,
) -> Result<DailyUsage, ApiError> {
    let usage = state.store.usage_daily(account, period).await?;
    Ok(DailyUsage {
        period_start: period.start(),
        period_end: period.end(),
        days: usage
            .days
            .into_iter()
            .map(|(date, events)| Day { date, events })
            .collect(),
        keys: usage
            .keys
            .into_iter()
            .map(|k| KeyEvents {
                id: k.id,
                prefix: k.prefix,
                name: k.name,
                events: k.events,
            })
            .collect(),
    })
}

impl DailyUsage {
    /// Each day and its events.
    pub(crate) fn days(&self) -> impl Iterator<Item = (chrono::NaiveDate, u64)> + '_ {
        self.days.iter().map(|d| (d.date, d.events))
    }

    /// The events of key `id` this month (0 when it sent none).
    pub(crate) fn events_of(&self, id: agentvista_keys::KeyId) -> u64 {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .map_or(0, |k| k.events)
    }
}
