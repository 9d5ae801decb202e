//! The pages: setup, login, API keys, billing, audit log, profile.

use actix_web::{HttpRequest, HttpResponse, web};
use std::collections::HashMap;

use agentvista_keys::{AccountName, KeyName, KeyRecord, KeyStatus, Role, Scope, UserId};
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};

use super::format::{moment, thousands};
use super::{Viewer, page, redirect, viewer};
use crate::{ApiError, AppState};

/// [`moment`] to the second, for the audit log.
fn moment_to_the_second(t: &DateTime<Utc>) -> Markup {
    let utc = t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! {
        time datetime=(t.to_rfc3339_opts(SecondsFormat::Secs, true)) data-seconds title=(utc) { (utc) }
    }
}

/// How far `at` is from `now`, in words: "in 59 min", "in 23 h", "in 6 d"; "now" once past.
fn from_now(at: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = *at - now;
    if left <= chrono::TimeDelta::zero() {
        "now".to_owned()
    } else if left < chrono::TimeDelta::hours(2) {
        format!("in {} min", left.num_minutes().max(1))
    } else if left < chrono::TimeDelta::days(2) {
        format!("in {} h", left.num_hours())
    } else {
        format!("in {} d", left.num_days())
    }
}

/// A plan's configured name as a person reads it: `free` → `Free`, `pro` → `Pro`.
fn plan_label(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The value the usage bar draws: the usage, but at least 1% of the limit once anything is
/// used, and never past the limit.
fn shown_usage(used: u64, limit: u64) -> u64 {
    if used == 0 {
        0
    } else {
        used.max(limit.div_ceil(100)).min(limit)
    }
}

fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

pub(crate) async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if state.store.users().count().await? == 0 {
        return Ok(redirect("/setup"));
    }
    Ok(match viewer(&req).await? {
        Some(_) => redirect("/settings/api-keys"),
        None => redirect("/login"),
    })
}

/// First-run setup: only while no user exists; afterwards a 404.
pub(crate) async fn setup(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.store.users().count().await? > 0 {
        return Err(ApiError::NotFound);
    }
    Ok(page(
        "Set up",
        None,
        "",
        html! {
            section.card.narrow {
                h1 { "Welcome to AgentVista" }
                p { "Create your account and its first user. You will use this e-mail address and password to log in." }
                form id="setup-form" novalidate {
                    label for="setup-account" { "Account name" }
                    input id="setup-account" name="account" type="text" required maxlength=(AccountName::MAX_CHARS) autocomplete="organization" placeholder="Acme" aria-describedby="setup-account-error";
                    p.error.field-error id="setup-account-error" hidden {}
                    label for="setup-email" { "E-mail" }
                    input id="setup-email" name="email" type="email" required autocomplete="email" aria-describedby="setup-email-error";
                    p.error.field-error id="setup-email-error" hidden {}
                    label for="setup-password" { "Password " span.hint { "(at least 8 characters)" } }
                    input id="setup-password" name="password" type="password" required minlength="8" autocomplete="new-password" aria-describedby="setup-password-error";
                    p.error.field-error id="setup-password-error" hidden {}
                    p.error id="setup-error" role="alert" hidden {}
                    button.primary type="submit" { "Create account" }
                }
            }
        },
    ))
}

pub(crate) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if state.store.users().count().await? == 0 {
        return Ok(redirect("/setup"));
    }
    if viewer(&req).await?.is_some() {
        return Ok(redirect("/settings/api-keys"));
    }
    Ok(page(
        "Log in",
        None,
        "",
        html! {
            section.card.narrow {
                h1 { "Log in" }
                form id="login-form" novalidate {
                    label for="login-email" { "E-mail" }
                    input id="login-email" name="email" type="email" required autocomplete="username";
                    label for="login-password" { "Password" }
                    input id="login-password" name="password" type="password" required autocomplete="current-password";
                    p.error id="login-error" role="alert" hidden {}
                    button.primary type="submit" { "Log in" }
                }
            }
        },
    ))
}

pub(crate) async fn keys(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(viewer) = viewer(&req).await? else {
        return Ok(redirect("/login"));
    };
    // The newest keys; the API pages through the rest (revoked keys accumulate).
    let (keys, more) = state
        .store
        .keys()
        .page(viewer.account.id, None, KEYS_SHOWN)
        .await?;
    let now = Utc::now();
    let usage = crate::usage::daily_usage(
        &state,
        viewer.account.id,
        agentvista_quota::Period::containing(now),
    )
    .await?;
    let base = base_url(&req);
    Ok(page(
        "API Keys",
        Some(&viewer),
        "keys",
        html! {
            div.heading {
                h1 { "API Keys" }
                // Controls a role may not use are not shown (the server refuses them anyway).
                @if viewer.account.role >= Role::Member {
                    button.primary type="button" id="open-create-key" { "Create Key" }
                }
            }
            p { "Keys authenticate SDKs and API calls. Each key is shown in full once, when it is created; afterwards only its prefix is shown." }
            div id="keys-list" {
                @if keys.is_empty() {
                    p.empty id="no-keys" { "No keys yet — create one to send traces." }
                } @else {
                    div.table-wrap {
                        table id="keys" {
                            thead { tr { th { "Prefix" } th { "Name" } th { "Scopes" } th { "Rate limit" } th { "Created" } th { "Last used" } th { "Events this month" } th { "Expires" } th { "Status" } th { span.visually-hidden { "Actions" } } } }
                            tbody {
                                @for key in &keys {
                                    @let status = key.status(now);
                                    tr data-prefix=(key.prefix) {
                                        td { code { (key.prefix) } }
                                        td { (key.name) }
                                        td { (key.scopes.iter().map(Scope::as_str).collect::<Vec<_>>().join(", ")) }
                                        td.rate-limit {
                                            @match key.rate_limit {
                                                Some(limit) => { (thousands(limit.per_second().get().into())) "/s" br; span.hint { "burst " (thousands(limit.burst().get().into())) } }
                                                None => span.hint { "none" },
                                            }
                                        }
                                        td.date { (moment(&key.created_at)) }
                                        td.date { @match &key.last_used_at { Some(t) => (moment(t)), None => "never" } }
                                        td.events-count { (thousands(usage.events_of(key.id))) }
                                        td.date.expires {
                                            @match key.expiry.expires_at() {
                                                Some(at) if status == KeyStatus::Active => { (moment(&at)) br; span.hint { "(" (from_now(&at, now)) ")" } }
                                                Some(at) => (moment(&at)),
                                                None => "never",
                                            }
                                        }
                                        td.date {
                                            span class=(format!("status {}", status_name(status))) { (status_name(status)) }
                                            @if let Some(at) = &key.revoked_at { br; span.hint { "since " (moment(at)) } }
                                        }
                                        td.actions-cell {
                                            @if status == KeyStatus::Active && may_manage(&viewer, key) {
                                                button type="button" data-roll=(key.id) data-roll-prefix=(key.prefix) { "Roll" }
                                                " "
                                                button.danger type="button" data-revoke=(key.id) data-prefix=(key.prefix) { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if more.is_some() { p.hint { "Showing the " (KEYS_SHOWN) " newest keys; the API pages through all of them." } }
                }
            }
            section.card id="quick-start" {
                h2 { "Quick start" }
                p id="quick-start-key" hidden { "These snippets hold the key you just created. It is not stored in this page: it is gone when you leave or reload it." }
                p { "Check a key with the ping endpoint (it needs a key with the " strong { "read" } " scope):" }
                (snippet("snippet-curl",
                    &format!("curl {base}/api/v1/me/api-keys/ping/ \\\n  -H \"Authorization: Bearer {PLACEHOLDER_KEY}\""),
                    &format!("curl {base}/api/v1/me/api-keys/ping/ \\\n  -H \"Authorization: Bearer {{key}}\"")))
                p { "Send traces from the Python SDK (a key with the " strong { "write" } " scope):" }
                (snippet("snippet-sdk",
                    &format!("{SDK_INSTALL}\n\n# in your application:\nimport os, agentvista\nagentvista.init(api_key=os.environ[\"AGENTVISTA_API_KEY\"], host=\"{base}\")"),
                    &format!("{SDK_INSTALL}\n\n# in your application:\nimport agentvista\nagentvista.init(api_key=\"{{key}}\", host=\"{base}\")")))
                p { "Or from any OpenTelemetry SDK:" }
                (snippet("snippet-otel",
                    &format!("OTEL_EXPORTER_OTLP_ENDPOINT={base}/otlp\nOTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer%20{PLACEHOLDER_KEY}\""),
                    &format!("OTEL_EXPORTER_OTLP_ENDPOINT={base}/otlp\nOTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer%20{{key}}\"")))
            }

            dialog id="create-key" aria-labelledby="create-key-title" {
                form id="create-key-form" method="dialog" novalidate {
                    h2 id="create-key-title" { "Create Key" }
                    label for="key-name" { "Name" }
                    input id="key-name" name="name" type="text" required maxlength=(KeyName::MAX_CHARS) placeholder="production";
                    fieldset {
                        legend { "Scopes" }
                        div.choice { input id="scope-write" type="checkbox" name="scopes" value="write" checked; label for="scope-write" { strong { "write" } " — for SDKs sending traces" } }
                        div.choice { input id="scope-read" type="checkbox" name="scopes" value="read"; label for="scope-read" { strong { "read" } " — for dashboards, the traces API and the ping endpoint" } }
                        div.choice { input id="scope-admin" type="checkbox" name="scopes" value="admin"; label for="scope-admin" { strong { "admin" } " — for managing keys and billing through the API" } }
                    }
                    label for="key-expiry" { "Expires " span.hint { "(optional; the key stops working at the end of that day, UTC)" } }
                    input id="key-expiry" name="expires" type="text" inputmode="numeric" placeholder="YYYY-MM-DD" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}" autocomplete="off";
                    label for="key-rate" { "Rate limit " span.hint { "(optional; requests a second on each server, and as many at once)" } }
                    input id="key-rate" name="rate" type="text" inputmode="numeric" placeholder="none" autocomplete="off";
                    p.error id="create-key-error" role="alert" hidden {}
                    div.actions {
                        button type="button" data-close { "Cancel" }
                        button.primary type="submit" id="create-key-submit" { "Create" }
                    }
                }
            }
            dialog id="key-created" aria-labelledby="key-created-title" {
                h2 id="key-created-title" { "Your new key" }
                p.warning { "Copy it now. You cannot retrieve the full key after closing this dialog; if you lose it, revoke the key and create a new one." }
                div.secret {
                    code id="new-key" {}
                    button type="button" id="copy-key" { "Copy" }
                }
                p.status id="copy-status" role="status" {}
                div.actions { button.primary type="button" id="close-key-created" { "I have stored it" } }
            }
            dialog id="roll-key" aria-labelledby="roll-key-title" {
                form id="roll-key-form" method="dialog" novalidate {
                    h2 id="roll-key-title" { "Roll key" }
                    p { "A new key replaces " code id="roll-prefix" {} ", with its name, scopes and expiry. Deploy the new key, then let the old one go." }
                    label for="roll-grace" { "The old key keeps working for" }
                    select id="roll-grace" name="grace" {
                        option value="0" { "no time: it stops now" }
                        option value="3600" selected { "1 hour" }
                        option value="86400" { "24 hours" }
                        option value="604800" { "7 days" }
                    }
                    p.error id="roll-error" role="alert" hidden {}
                    div.actions {
                        button type="button" data-close { "Cancel" }
                        button.primary type="submit" id="confirm-roll" { "Roll" }
                    }
                }
            }
            dialog id="revoke-key" aria-labelledby="revoke-key-title" {
                h2 id="revoke-key-title" { "Revoke key" }
                p { "Revoke " code id="revoke-prefix" {} "? Requests with this key will fail immediately. This cannot be undone." }
                p.error id="revoke-error" role="alert" hidden {}
                div.actions {
                    button type="button" data-close { "Cancel" }
                    button.danger type="button" id="confirm-revoke" { "Revoke" }
                }
            }
        },
    ))
}

/// Settings → Profile: who is signed in, and a change of password.
pub(crate) async fn profile(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(viewer) = viewer(&req).await? else {
        return Ok(redirect("/login"));
    };
    let email = viewer.user.email.clone();
    Ok(page(
        "Profile",
        Some(&viewer),
        "profile",
        html! {
            h1 { "Profile" }
            section.card {
                h2 { "Signed in as" }
                p { strong id="profile-email" { (email) } }
            }
            section.card {
                h2 { "Change password" }
                p { "Every other session of yours ends: other browsers must sign in again with the new password. This one stays signed in." }
                form id="password-form" novalidate {
                    // For password managers: the account the new password belongs to.
                    input type="email" name="username" autocomplete="username" value=(viewer.user.email) hidden;
                    label for="current-password" { "Current password" }
                    input id="current-password" name="current_password" type="password" required autocomplete="current-password" aria-describedby="current-password-error";
                    p.error.field-error id="current-password-error" hidden {}
                    label for="new-password" { "New password " span.hint { "(at least 8 characters)" } }
                    input id="new-password" name="new_password" type="password" required minlength="8" autocomplete="new-password" aria-describedby="new-password-error";
                    p.error.field-error id="new-password-error" hidden {}
                    label for="confirm-password" { "New password, again" }
                    input id="confirm-password" name="confirm_password" type="password" required autocomplete="new-password" aria-describedby="confirm-password-error";
                    p.error.field-error id="confirm-password-error" hidden {}
                    p.error id="password-error" role="alert" hidden {}
                    p.success id="password-changed" role="status" hidden { "Password changed. Every other session has been signed out." }
                    button.primary type="submit" { "Change password" }
                }
            }
        },
    ))
}

fn status_name(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        KeyStatus::Expired => "expired",
        KeyStatus::Revoked => "revoked",
    }
}

/// Entries per page of the audit log page.
const AUDIT_PAGE: u64 = 50;

/// Whether the viewer may revoke or roll `key`: admins and owners any key, members the keys
/// they created.
fn may_manage(viewer: &Viewer, key: &KeyRecord) -> bool {
    viewer.account.role >= Role::Admin || key.created_by == Some(viewer.user.id)
}

pub(crate) async fn audit_log(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(viewer) = viewer(&req).await? else {
        return Ok(redirect("/login"));
    };
    if viewer.account.role < Role::Admin {
        return Ok(page(
            "Audit log",
            Some(&viewer),
            "audit",
            html! {
                h1 { "Audit log" }
                p { "The audit log is for the admins and owners of " (viewer.account.name) "." }
            },
        ));
    }
    // `?before=<id>` from the "Older" link; anything else starts at the newest.
    let before =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("before").and_then(|b| b.parse::<i64>().ok()));
    let entries = state
        .store
        .audit()
        .page(viewer.account.id, before, AUDIT_PAGE)
        .await?;
    // The people the page names, by e-mail: one read for the page, whatever its length.
    let mut ids: Vec<UserId> = entries
        .entries
        .iter()
        .filter_map(|entry| user_of(&entry.actor))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let people: HashMap<UserId, String> = state
        .store
        .users()
        .of_account(viewer.account.id, &ids)
        .await?
        .into_iter()
        .map(|user| (user.id, user.email))
        .collect();
    Ok(page(
        "Audit log",
        Some(&viewer),
        "audit",
        html! {
            h1 { "Audit log" }
            p { "Who created, rolled and revoked keys (and which were reported as leaked), who logged in (and which logins failed), who changed their password, and when the spend cap or the plan changed — newest first, with the client's address and user agent." }
            @if entries.entries.is_empty() {
                p.empty id="no-audit" { "Nothing recorded yet." }
            } @else {
                div.table-wrap {
                    table id="audit-log" {
                        thead { tr { th { "When" } th { "Action" } th { "By" } th { "On" } th { "From" } th { "Details" } } }
                        tbody {
                            @for entry in &entries.entries {
                                tr data-action=(entry.action) {
                                    td.date { (moment_to_the_second(&entry.at)) }
                                    td { code { (entry.action) } }
                                    td.actor title=(entry.actor) { (actor_name(&entry.actor, &people)) }
                                    td { @if let Some(target) = &entry.target { code { (target) } } }
                                    td.wraps {
                                        @if let Some(address) = &entry.client_address { (address) }
                                        @if let Some(agent) = &entry.user_agent { br; span.hint { (agent) } }
                                    }
                                    td.wraps { @if let Some(detail) = &entry.detail { code { (detail.to_string()) } } }
                                }
                            }
                        }
                    }
                }
                @if let Some(cursor) = entries.next_cursor {
                    p { a id="audit-older" href=(format!("/settings/audit-log?before={cursor}")) { "Older entries" } }
                }
            }
        },
    ))
}

/// The user an audit entry's actor names (`user:<id>`), if any.
fn user_of(actor: &str) -> Option<UserId> {
    actor
        .strip_prefix("user:")
        .and_then(|id| id.parse().ok())
        .map(UserId)
}

/// An audit entry's actor as a person reads it: a user by e-mail, a key by its prefix. The
/// API's form (`user:<id>`, `key:<prefix>`) stays in the cell's tooltip.
fn actor_name(actor: &str, people: &HashMap<UserId, String>) -> Markup {
    if let Some(id) = user_of(actor) {
        return match people.get(&id) {
            Some(email) => html! { (email) },
            None => html! { "a removed user" },
        };
    }
    if let Some(prefix) = actor.strip_prefix("key:") {
        return html! { "key " code { (prefix) } };
    }
    match actor {
        "cli" => html! { "the command line" },
        "leak_report" => html! { "a leaked-key report" },
        "anonymous" => html! { "someone not signed in" },
        other => html! { (other) },
    }
}

pub(crate) async fn billing(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(viewer) = viewer(&req).await? else {
        return Ok(redirect("/login"));
    };
    let account = state.store.accounts().get(viewer.account.id).await?;
    let usage = crate::usage::summary(&state, &account).await?;
    let (plan, used, limit, period) = (usage.terms, usage.used, usage.limit, usage.period);
    let daily = crate::usage::daily_usage(&state, account.id, period).await?;
    let days: Vec<_> = daily.days().collect();
    let has_overage = plan.has_overage();
    Ok(page(
        "Billing",
        Some(&viewer),
        "billing",
        html! {
            h1 { "Billing" }
            @if limit.is_some_and(|limit| used >= limit) {
                p.banner id="over-limit" role="alert" {
                    "This month's limit is reached: ingestion answers 429 until "
                    (period.resets_at().format("%B %-d, %Y")) ". To send more now, move to a larger plan"
                    @if has_overage { " or raise the spend cap" } @else { " (a plan with overage can also take a spend cap)" }
                    "."
                }
            }
            section.card {
                h2 { span id="plan" { (plan_label(&account.plan)) } " plan" }
                p { (thousands(plan.monthly_events)) " events included per month"
                    @if has_overage { ", then " (plan.overage_cents_per_1000_events) "¢ per 1,000 events" } @else { "; a hard limit" }
                    ". Events are kept " (plan.retention_days) " days after they arrive; their counts stay." }
                h3 { "This month" }
                @match limit {
                    Some(limit) => {
                        label for="usage-bar" { span id="events-used" { (thousands(used)) } " of " span id="events-limit" { (thousands(limit)) } " events used" }
                        // A bar shows at least 1% once anything is used: 3 of 50,000 would
                        // otherwise be an empty line. The exact figures are in the label.
                        progress id="usage-bar" max=(limit.max(1)) value=(shown_usage(used, limit))
                            aria-valuetext=(format!("{} of {} events", thousands(used), thousands(limit))) { (used) " of " (limit) }
                    }
                    None => { p { span id="events-used" { (thousands(used)) } " events used — no limit (no spend cap is set)." } }
                }
                p { "Usage resets on " strong id="resets-at" { (period.resets_at().format("%B %-d, %Y")) } " at 00:00 UTC." }
                h3 { "Events per day" }
                (super::chart::daily_chart(&days, Utc::now().date_naive()))
            }
            section.card {
                h2 { "Spend cap" }
                @if viewer.account.role < Role::Admin {
                    p { "Admins and owners of this account set the spend cap." }
                } @else if has_overage {
                    p { "Cap what overage may cost each month. At the cap, ingestion answers 429 until the month resets." }
                    form id="spend-cap-form" novalidate {
                        label for="spend-cap" { "Spend cap in dollars " span.hint { "(empty for no cap)" } }
                        input id="spend-cap" name="spend_cap" type="number" min="0" step="0.01"
                            value=[account.spend_cap_cents.map(|c| format!("{}.{:02}", c / 100, c % 100))];
                        p.error id="spend-cap-error" role="alert" hidden {}
                        button.primary type="submit" { "Save" }
                    }
                } @else {
                    p { "The " (plan_label(&account.plan)) " plan has a hard limit, so there is no overage to cap. Move the account to a plan with overage to set one." }
                }
            }
            section.card {
                h2 { "Plans" }
                div.table-wrap { table id="plans" {
                    thead { tr { th { "Plan" } th { "Included events per month" } th { "Beyond them" } th { "Events kept" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for name in state.config.plans.names() {
                            @if let Some(offer) = state.config.plans.get(name) {
                                tr data-plan=(name) {
                                    td { (plan_label(name)) @if name == account.plan { " " span.status.active { "current" } } }
                                    td { (thousands(offer.monthly_events)) }
                                    td { (beyond(offer)) }
                                    td.retention { (offer.retention_days) " days" }
                                    td {
                                        @if name != account.plan && viewer.account.role == Role::Owner && state.config.may_switch(&account.plan, name) {
                                            button type="button" data-choose-plan=(name)
                                                data-label=(plan_label(name))
                                                data-events=(thousands(offer.monthly_events))
                                                data-beyond=(beyond(offer))
                                                data-overage[offer.has_overage()]
                                                { "Switch to " (plan_label(name)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
                p.error id="plan-error" role="alert" hidden {}
                dialog id="switch-plan" aria-labelledby="switch-plan-title" {
                    form id="switch-plan-form" method="dialog" novalidate {
                        h2 id="switch-plan-title" { "Switch to " span id="switch-plan-name" {} "?" }
                        p { "The change applies at once, to this month too." }
                        table.compare {
                            thead { tr { th {} th { "Now: " (plan_label(&account.plan)) } th { "After" } } }
                            tbody {
                                tr { th scope="row" { "Events included per month" } td { (thousands(plan.monthly_events)) } td id="switch-plan-events" {} }
                                tr { th scope="row" { "Beyond them" } td { (beyond(&plan)) } td id="switch-plan-beyond" {} }
                            }
                        }
                        @if account.spend_cap_cents.is_none() {
                            div id="switch-plan-cap" hidden {
                                p.warning { "The new plan bills events beyond the included ones, and this account has no spend cap: overage would be unlimited." }
                                label for="switch-plan-cap-input" { "Spend cap in dollars " span.hint { "(optional; empty for no cap)" } }
                                input id="switch-plan-cap-input" name="spend_cap" type="number" min="0" step="0.01";
                            }
                        }
                        p.error id="switch-plan-error" role="alert" hidden {}
                        div.actions {
                            button type="button" data-close { "Cancel" }
                            button.primary type="submit" id="confirm-switch-plan" { "Switch plan" }
                        }
                    }
                }
                @if !state.config.self_serve_plans.contains(&account.plan) {
                    p.hint { "An operator changes this account's plan (" code { "agentvista accounts set-plan" } "); the plans an account may choose by itself are listed in " code { "billing.self_serve_plans" } "." }
                }
            }
        },
    ))
}

/// What a plan charges beyond its included events, in words.
fn beyond(plan: &agentvista_quota::Plan) -> String {
    if plan.has_overage() {
        format!("{}¢ per 1,000 events", plan.overage_cents_per_1000_events)
    } else {
        "a hard limit".to_owned()
    }
}

/// What a snippet shows where no key is at hand.
const PLACEHOLDER_KEY: &str = "av_a1b2c3d4...";

/// How the Python SDK is installed: from a checkout of this repository.
const SDK_INSTALL: &str = "pip install ./sdk/python   # from a checkout of AgentVista Keys";

/// A code snippet with a Copy button. `with_key` is the same text with `{key}` where a key
/// goes: the page's script fills it in with a key just created, which is never stored.
fn snippet(id: &str, text: &str, with_key: &str) -> Markup {
    html! {
        div.snippet {
            pre { code id=(id) data-with-key=(with_key) { (text) } }
            button.copy type="button" data-copy=(id) { "Copy" }
        }
    }
}

/// Keys shown on the keys page; the API pages through the rest.
const KEYS_SHOWN: u64 = 100;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use agentvista_keys::UserId;

    use super::actor_name;

    #[test]
    fn audit_actors_are_named_as_people_read_them() {
        let people = HashMap::from([(UserId(7), "ada@example.com".to_owned())]);
        let name = |actor: &str| actor_name(actor, &people).into_string();
        assert_eq!(name("user:7"), "ada@example.com");
        assert_eq!(name("user:8"), "a removed user");
        assert_eq!(name("key:av_1a2b3c4d"), "key <code>av_1a2b3c4d</code>");
        assert_eq!(name("cli"), "the command line");
        assert_eq!(name("leak_report"), "a leaked-key report");
        assert_eq!(name("anonymous"), "someone not signed in");
        assert_eq!(name("<b>"), "&lt;b&gt;");
    }
}
