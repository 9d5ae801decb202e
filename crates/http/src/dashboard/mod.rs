//! The dashboard: server-rendered pages (maud, checked at compile time) with a little plain
//! JavaScript that calls the JSON API with the session's CSRF token. No build step, no CDN:
//! the CSS and JavaScript are compiled into the binary.

mod chart;
mod format;
mod pages;
mod team;
mod traces;
mod tree;

use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::session::CsrfToken;
use agentvista_store::{CurrentAccount, User};
use maud::{DOCTYPE, Markup, html};

use crate::ApiError;
use crate::auth::{Authenticated, Credential, authorize};

pub(crate) use pages::{audit_log, billing, index, keys, login, profile, setup};
pub(crate) use traces::{trace, traces};

const APP_CSS: &str = include_str!("assets/app.css");
const APP_JS: &str = include_str!("assets/app.js");
const FAVICON: &str = include_str!("assets/favicon.svg");

pub(crate) async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", APP_CSS)
}

pub(crate) async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub(crate) async fn favicon() -> HttpResponse {
    asset("image/svg+xml", FAVICON)
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// The logged-in user of a page, with the CSRF token its scripts must send.
pub(crate) struct Viewer {
    pub(crate) user: User,
    /// The account the session acts in, with the person's role there.
    pub(crate) account: CurrentAccount,
    /// Every account the person belongs to, for the switcher.
    pub(crate) accounts: Vec<agentvista_store::Membership>,
    pub(crate) csrf_token: CsrfToken,
    /// The session's cookie hash, to tell it from the person's other sessions.
    pub(crate) token_hash: agentvista_keys::session::SessionTokenHash,
}

/// The page's session, or `None` (the page then redirects to the login): a page shows an
/// account, so a session without one has nothing to see.
pub(crate) async fn viewer(req: &HttpRequest) -> Result<Option<Viewer>, ApiError> {
    match authorize::<Authenticated>(req).await {
        Ok(principal) => match principal.credential {
            Credential::Session {
                user,
                csrf_token,
                token_hash,
                ..
            } => {
                let Some(store) = req.app_data::<actix_web::web::Data<agentvista_store::Store>>()
                else {
                    return Ok(None);
                };
                let accounts = store.memberships().of_user(user.id).await?;
                let Some(name) = accounts
                    .iter()
                    .find(|m| m.account_id == principal.account_id)
                    .map(|m| m.account_name.clone())
                else {
                    return Ok(None);
                };
                Ok(Some(Viewer {
                    accounts,
                    token_hash,
                    user,
                    account: CurrentAccount {
                        id: principal.account_id,
                        name,
                        role: principal.role,
                    },
                    csrf_token,
                }))
            }
            Credential::Key { .. } => Ok(None),
        },
        Err(ApiError::Unavailable(source)) => Err(ApiError::Unavailable(source)),
        Err(ApiError::Internal(source)) => Err(ApiError::Internal(source)),
        Err(_) => Ok(None),
    }
}

pub(crate) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to))
        .finish()
}

pub(crate) fn page(
    title: &str,
    viewer: Option<&Viewer>,
    active: &str,
    body: Markup,
) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(viewer) = viewer {
                    meta name="csrf-token" content=(viewer.csrf_token.expose_secret());
                }
                title { (title) " · AgentVista" }
                link rel="icon" type="image/svg+xml" href="/assets/favicon.svg";
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "AgentVista" }
                    @if let Some(viewer) = viewer {
                        nav aria-label="Main" {
                            a href="/traces" aria-current=[(active == "traces").then_some("page")] { "Traces" }
                            span.section { "Settings" }
                            a href="/settings/api-keys" aria-current=[(active == "keys").then_some("page")] { "API Keys" }
                            a href="/settings/billing" aria-current=[(active == "billing").then_some("page")] { "Billing" }
                            a href="/settings/audit-log" aria-current=[(active == "audit").then_some("page")] { "Audit log" }
                            a href="/settings/members" aria-current=[(active == "members").then_some("page")] { "Members" }
                            a href="/settings/sessions" aria-current=[(active == "sessions").then_some("page")] { "Sessions" }
                            a href="/settings/profile" aria-current=[(active == "profile").then_some("page")] { "Profile" }
                        }
                        div.who {
                            @if viewer.accounts.len() > 1 {
                                label.visually-hidden for="account-switch" { "Account" }
                                select id="account-switch" title="The account you act in, and your role in it" {
                                    @for membership in &viewer.accounts {
                                        option value=(membership.account_id.0) selected[membership.account_id == viewer.account.id] {
                                            (membership.account_name) " · " (membership.role)
                                        }
                                    }
                                }
                            } @else {
                                span.account title="The account you act in, and your role in it" {
                                    (viewer.account.name) " · " (viewer.account.role)
                                }
                            }
                            span { (viewer.user.email) }
                            button type="button" id="logout" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        // Only this server's own script and style; never framed (no clickjacking of Revoke).
        .insert_header((
            CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
        .insert_header((X_FRAME_OPTIONS, "DENY"))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((REFERRER_POLICY, "same-origin"))
        .body(markup.into_string())
}

/// Mounts the pages and assets.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/setup", web::get().to(setup))
        .route("/login", web::get().to(login))
        .route("/settings/api-keys", web::get().to(keys))
        .route("/settings/billing", web::get().to(billing))
        .route("/settings/audit-log", web::get().to(audit_log))
        .route("/settings/profile", web::get().to(profile))
        .route("/settings/members", web::get().to(team::members))
        .route("/settings/sessions", web::get().to(team::sessions))
        .route("/invite/{token}", web::get().to(team::invitation))
        .route("/traces", web::get().to(traces))
        .route("/traces/{trace_id}", web::get().to(trace))
        .route("/trace", web::get().to(traces::trace_by_id))
        .route("/assets/app.css", web::get().to(css))
        .route("/assets/app.js", web::get().to(js))
        .route("/assets/favicon.svg", web::get().to(favicon));
}
