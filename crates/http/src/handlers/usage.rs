//! `GET /api/v1/me/usage/` and `PUT /api/v1/me/billing/spend-cap/`.

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_quota::{Period, UsageSummary};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use agentvista_store::AuditAction;

use crate::auth::{Auth, Declared};
use crate::handlers::audit;
use crate::usage::{DailyUsage, daily_usage, summary};
use crate::{ApiError, AppState, Body};

/// The usage object: the account's plan and this month's count against its limit.
#[derive(Serialize, ToSchema)]
struct Usage<'a> {
    /// The account's plan.
    plan: &'a str,
    /// The first instant of the calendar month (UTC).
    period_start: DateTime<Utc>,
    /// The first instant of the next month.
    period_end: DateTime<Utc>,
    /// Events counted this month.
    events_used: u64,
    /// `null` where the plan and spend cap set no limit.
    #[schema(required)]
    events_limit: Option<u64>,
    /// The spend cap in cents; `null`: none.
    #[schema(required)]
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

/// This month's usage per day and per key: what the billing page's chart and the keys page's
/// event counts show. Scope `read` or a session.
#[utoipa::path(
    get,
    path = "/api/v1/me/usage/daily/",
    tag = "usage",
    security(("bearer_key" = ["read"]), ("session" = [])),
    responses(
        (status = 200, description = "Events per day of the month and per key.", body = DailyUsage),
        crate::schema::KeyErrors,
    ),
)]
pub(crate) async fn get_daily_usage(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
) -> Result<HttpResponse, ApiError> {
    let period = Period::containing(Utc::now());
    Ok(HttpResponse::Ok().json(daily_usage(&state, auth.principal.account_id, period).await?))
}

/// The body of `PUT /api/v1/me/billing/spend-cap/`: cents, or `null` for no cap. The field
/// is required: `{}` is a 400, never a silent removal of the cap.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"spend_cap_cents": 2500}))]
pub(crate) struct SpendCap {
    /// Cents, or `null` for no cap. Required. A cap above 9223372036854775807 cents is kept
    /// as that (the database's largest integer).
    // `deserialize_with` takes away serde's "a missing Option is None" rule.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(required)]
    spend_cap_cents: Option<u64>,
}

/// This month's usage: the plan, the events counted and the limit.
///
/// Scope `read` or a session. The calendar month in UTC; `events_limit` is `null` where
/// unlimited (a plan with overage and no spend cap).
#[utoipa::path(
    get,
    path = "/api/v1/me/usage/",
    tag = "usage",
    security(("bearer_key" = ["read"]), ("session" = [])),
    responses(
        (status = 200, description = "The usage object.", body = Usage),
        crate::schema::KeyErrors,
    ),
)]
pub(crate) async fn get_usage(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
) -> Result<HttpResponse, ApiError> {
    let account = state
        .store
        .accounts()
        .get(auth.principal.account_id)
        .await?;
    Ok(HttpResponse::Ok().json(Usage::from(&summary(&state, &account).await?)))
}

/// Sets or removes the account's spend cap. An admin's session, or `admin`.
///
/// On a plan with overage the month's allowance becomes `monthly_events +
/// floor(spend_cap_cents × 1000 / overage_cents_per_1000_events)`; on a hard-limit plan the cap
/// is kept but changes nothing.
#[utoipa::path(
    put,
    path = "/api/v1/me/billing/spend-cap/",
    tag = "usage",
    security(("bearer_key" = ["admin"]), ("session" = [], "csrf_token" = [])),
    request_body(content = SpendCap, content_type = "application/json"),
    responses(
        (status = 200, description = "The usage object, with the new cap.", body = Usage),
        crate::schema::KeyErrors,
        crate::schema::BodyErrors,
    ),
)]
pub(crate) async fn set_spend_cap(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let body: SpendCap = body.json().await?;
    let account = state
        .store
        .accounts()
        .set_spend_cap(auth.principal.account_id, body.spend_cap_cents)
        .await?;
    audit::record(
        &state,
        &req,
        account.id,
        AuditAction::SpendCapChanged,
        auth.principal.actor().to_string(),
        None,
        Some(serde_json::json!({"spend_cap_cents": account.spend_cap_cents})),
    )
    .await;
    Ok(HttpResponse::Ok().json(Usage::from(&summary(&state, &account).await?)))
}

/// The body of `PUT /api/v1/me/billing/plan/`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChoosePlan {
    /// The name of a plan of the server's configuration.
    #[schema(min_length = 1)]
    plan: String,
}

/// Moves the account to another plan of `billing.self_serve_plans`. An owner's session only,
/// and only when the operator listed plans there (404 otherwise, as if the endpoint did not
/// exist); an account on a plan outside the list, or a plan outside it, is a 400: an operator
/// changes those. Keys never change plans.
#[utoipa::path(
    put,
    path = "/api/v1/me/billing/plan/",
    tag = "usage",
    security(("session" = [], "csrf_token" = [])),
    request_body(content = ChoosePlan, content_type = "application/json"),
    responses(
        (status = 200, description = "The usage object, on the new plan.", body = Usage),
        crate::schema::SessionErrors,
        crate::schema::BodyErrors,
        (status = 404, response = crate::schema::NotFound),
    ),
)]
pub(crate) async fn set_plan(
    state: web::Data<AppState>,
    auth: Auth<Declared>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    if state.config.self_serve_plans.is_empty() {
        return Err(ApiError::NotFound);
    }
    let body: ChoosePlan = body.json().await?;
    if !state.config.self_serve_plans.contains(&body.plan) {
        return Err(ApiError::BadRequest(format!(
            "plan: {:?} is not a plan this account may choose (choose one of: {})",
            body.plan,
            state.config.self_serve_plans.join(", ")
        )));
    }
    let account_id = auth.principal.account_id;
    let was = state.store.accounts().get(account_id).await?.plan;
    if !state.config.may_switch(&was, &body.plan) {
        return Err(ApiError::BadRequest(format!(
            "plan: the account's plan, {was:?}, is changed by an operator, not from the dashboard"
        )));
    }
    let account = state
        .store
        .accounts()
        .set_plan(account_id, &body.plan)
        .await?;
    audit::record(
        &state,
        &req,
        account.id,
        AuditAction::PlanChanged,
        auth.principal.actor().to_string(),
        None,
        Some(serde_json::json!({"plan": account.plan, "was": was})),
    )
    .await;
    Ok(HttpResponse::Ok().json(Usage::from(&summary(&state, &account).await?)))
}
