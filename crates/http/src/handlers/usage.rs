//! `GET /api/v1/me/usage/` and `PUT /api/v1/me/billing/spend-cap/`.

use actix_web::{HttpResponse, web};
use agentvista_quota::{Period, UsageLedger};
use agentvista_store::Account;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Admin, Auth, Read};
use crate::handlers::rfc3339;
use crate::{ApiError, AppState, Body};

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
    Ok(HttpResponse::Ok().json(usage_json(&state, &account).await?))
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
    Ok(HttpResponse::Ok().json(usage_json(&state, &account).await?))
}

async fn usage_json(state: &AppState, account: &Account) -> Result<Value, ApiError> {
    let period = Period::containing(Utc::now());
    let used = state.store.used(account.id, period).await?;
    // A plan missing from the configuration shows no limit rather than failing the page.
    let limit = state
        .plans
        .allowance(&account.plan, account.spend_cap_cents)
        .ok()
        .and_then(|allowance| allowance.limit());
    Ok(json!({
        "plan": account.plan,
        "period_start": rfc3339(&period.start()),
        "period_end": rfc3339(&period.end()),
        "events_used": used,
        "events_limit": limit,
        "spend_cap_cents": account.spend_cap_cents,
    }))
}
