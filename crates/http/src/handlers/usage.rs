//! `GET /api/v1/me/usage/` and `PUT /api/v1/me/billing/spend-cap/`.

use actix_web::{HttpResponse, web};
use agentvista_quota::{Period, UsageSummary};
use agentvista_store::Account;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{Admin, Auth, Read};
use crate::{ApiError, AppState, Body};

/// The usage object: the account's plan and this month's count against its limit.
#[derive(Serialize)]
struct Usage<'a> {
    plan: &'a str,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    events_used: u64,
    /// `null` where the plan and spend cap set no limit.
    events_limit: Option<u64>,
    spend_cap_cents: Option<u64>,
}

impl<'a> From<&'a UsageSummary> for Usage<'a> {
    fn from(summary: &'a UsageSummary) -> Self {
        Usage {
            plan: &summary.plan,
            period_start: summary.period.start(),
            period_end: summary.period.end(),
            events_used: summary.used,
            events_limit: summary.limit,
            spend_cap_cents: summary.spend_cap_cents,
        }
    }
}

/// The body of `PUT /api/v1/me/billing/spend-cap/`: cents, or `null` for no cap. The field
/// is required: `{}` is a 400, never a silent removal of the cap.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpendCap {
    // `deserialize_with` takes away serde's "a missing Option is None" rule.
    #[serde(deserialize_with = "Option::deserialize")]
    spend_cap_cents: Option<u64>,
}

pub(crate) async fn usage(
    state: web::Data<AppState>,
    auth: Auth<Read>,
) -> Result<HttpResponse, ApiError> {
    let account = state
        .store
        .accounts()
        .get(auth.principal.account_id)
        .await?;
    Ok(HttpResponse::Ok().json(Usage::from(&summary(&state, &account).await?)))
}

pub(crate) async fn set_spend_cap(
    state: web::Data<AppState>,
    auth: Auth<Admin>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let body: SpendCap = body.json().await?;
    let account = state
        .store
        .accounts()
        .set_spend_cap(auth.principal.account_id, body.spend_cap_cents)
        .await?;
    Ok(HttpResponse::Ok().json(Usage::from(&summary(&state, &account).await?)))
}

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
