//! The team's pages: Settings → Members (members, roles, invitations), Settings → Sessions
//! (where the person is signed in), and the page an invitation link opens.

use actix_web::http::header::REFERRER_POLICY;
use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_keys::{InvitationToken, Role};
use chrono::Utc;
use maud::html;

use super::format::moment;
use super::{Viewer, page, redirect, viewer};
use crate::{ApiError, AppState};

/// The roles a viewer may grant: below owner for admins, every one for owners.
fn grantable(viewer: &Viewer) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|role| {
            viewer
                .account
                .role
                .may_change(Role::Viewer, Some(*role))
                .is_ok()
        })
        .collect()
}

pub(crate) async fn members(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(viewer) = viewer(&req).await? else {
        return Ok(redirect("/login"));
    };
    let members = state
        .store
        .memberships()
        .of_account(viewer.account.id)
        .await?;
    let admin = viewer.account.role >= Role::Admin;
    let pending = if admin {
        state
            .store
            .invitations()
            .pending(viewer.account.id, Utc::now())
            .await?
    } else {
        Vec::new()
    };
    let roles = grantable(&viewer);
    Ok(page(
        "Members",
        Some(&viewer),
        "members",
        html! {
            h1 { "Members" }
            p { "The people of " strong { (viewer.account.name) } " and their roles. Viewers read; members also send events and make " code { "read" } "/" code { "write" } " keys; admins also run every key, the spend cap, the audit log and the members who are not owners; owners also the plan and the owners." }
            p.error id="members-error" role="alert" hidden {}
            div.table-wrap {
                table id="members" {
                    thead { tr { th { "E-mail" } th { "Role" } th { "Joined" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for member in &members {
                            @let me = member.user_id == viewer.user.id;
                            @let manageable = !me && viewer.account.role.may_change(member.role, None).is_ok();
                            tr data-member=(member.user_id.0) {
                                td { (member.email) @if me { " " span.hint { "(you)" } } }
                                td {
                                    @if manageable {
                                        label.visually-hidden for=(format!("role-{}", member.user_id.0)) { "Role of " (member.email) }
                                        select id=(format!("role-{}", member.user_id.0)) data-set-role=(member.user_id.0) {
                                            @for role in &roles {
                                                option value=(role) selected[*role == member.role] { (role) }
                                            }
                                        }
                                    } @else {
                                        (member.role)
                                    }
                                }
                                td.date { (moment(&member.joined_at)) }
                                td.actions-cell {
                                    @if me {
                                        button.danger type="button" data-remove-member=(member.user_id.0) data-leave { "Leave" }
                                    } @else if manageable {
                                        button.danger type="button" data-remove-member=(member.user_id.0) data-email=(member.email) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if admin {
                section.card {
                    h2 { "Invite someone" }
                    p { "The link works once, for 7 days, for this e-mail address only. Nothing is sent: copy the link and hand it on." }
                    form id="invite-form" novalidate {
                        label for="invite-email" { "E-mail" }
                        input id="invite-email" name="email" type="email" required autocomplete="off";
                        label for="invite-role" { "Role" }
                        select id="invite-role" name="role" {
                            @for role in &roles {
                                option value=(role) selected[*role == Role::Member] { (role) }
                            }
                        }
                        p.error id="invite-error" role="alert" hidden {}
                        button.primary type="submit" { "Invite" }
                    }
                    div id="invite-link" hidden {
                        p { "Invitation link for " strong id="invite-link-email" {} ":" }
                        pre { code id="invite-link-url" {} }
                        button type="button" id="copy-invite-link" { "Copy" }
                    }
                }
                section.card {
                    h2 { "Pending invitations" }
                    @if pending.is_empty() {
                        p.empty id="no-invitations" { "No pending invitations." }
                    } @else {
                        div.table-wrap {
                            table id="invitations" {
                                thead { tr { th { "E-mail" } th { "Role" } th { "Expires" } th { span.visually-hidden { "Actions" } } } }
                                tbody {
                                    @for invitation in &pending {
                                        tr {
                                            td { (invitation.email) }
                                            td { (invitation.role) }
                                            td.date { (moment(&invitation.expires_at)) }
                                            td.actions-cell { button.danger type="button" data-revoke-invitation=(invitation.id) { "Revoke" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

pub(crate) async fn sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(viewer) = viewer(&req).await? else {
        return Ok(redirect("/login"));
    };
    let mut listed = state
        .store
        .sessions()
        .of_user(viewer.user.id, &viewer.token_hash, Utc::now())
        .await?;
    listed.sort_by_key(|s| !s.current);
    Ok(page(
        "Sessions",
        Some(&viewer),
        "sessions",
        html! {
            h1 { "Sessions" }
            p { "Where you are signed in. Last seen is updated at most once a minute. Ending a session signs that browser out at once." }
            p.error id="sessions-error" role="alert" hidden {}
            div.table-wrap {
                table id="sessions" {
                    thead { tr { th { "Started" } th { "Last seen" } th { "Address" } th { "Browser" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for session in &listed {
                            tr {
                                td.date { (moment(&session.created_at)) }
                                td.date { (moment(&session.last_seen_at)) }
                                td { (session.client_address.as_deref().unwrap_or("unknown")) }
                                td.user-agent { (session.user_agent.as_deref().unwrap_or("unknown")) }
                                td.actions-cell {
                                    @if session.current {
                                        span.status.active { "this session" }
                                    } @else {
                                        button.danger type="button" data-end-session=(session.id) { "End" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if listed.len() > 1 {
                button.danger type="button" id="end-other-sessions" { "End all other sessions" }
            }
        },
    ))
}

/// The page an invitation link opens. Sent with `Referrer-Policy: no-referrer`, so that the
/// link in its address never leaves in a `Referer` header.
pub(crate) async fn invitation(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = InvitationToken::presented(&path);
    let found = state
        .store
        .invitations()
        .find_pending(&token.hash(), Utc::now())
        .await?;
    let mut response = match found {
        None => {
            let mut response = page(
                "Invitation",
                None,
                "",
                html! {
                    section.card.narrow {
                        h1 { "This invitation cannot be used" }
                        p { "It may have been used already, revoked, or it expired (an invitation works for 7 days). Ask whoever invited you for a new one." }
                    }
                },
            );
            *response.status_mut() = actix_web::http::StatusCode::NOT_FOUND;
            response
        }
        Some(pending) => {
            let email = pending.invitation.email.clone();
            let known = state
                .store
                .users()
                .find_by_email(&email.parse().map_err(ApiError::internal)?)
                .await?
                .is_some();
            page(
                "Invitation",
                None,
                "",
                html! {
                    section.card.narrow id="invitation" data-email=(email) data-existing[known] {
                        h1 { "Join " (pending.account_name) }
                        p { "You are invited to " strong { (pending.account_name) } " as " strong { (pending.invitation.role) } ", as " strong { (email) } "." }
                        @if known {
                            p id="invite-sign-in" { "You have an account here: sign in as " (email) " to accept." }
                            form id="accept-form" novalidate {
                                input type="email" name="username" autocomplete="username" value=(email) hidden;
                                div id="accept-password-field" {
                                    label for="accept-password" { "Your password" }
                                    input id="accept-password" name="password" type="password" autocomplete="current-password";
                                }
                                p.error id="accept-error" role="alert" hidden {}
                                button.primary type="submit" { "Accept" }
                            }
                        } @else {
                            form id="accept-form" novalidate {
                                input type="email" name="username" autocomplete="username" value=(email) hidden;
                                label for="accept-password" { "Choose a password " span.hint { "(at least 8 characters)" } }
                                input id="accept-password" name="password" type="password" required minlength="8" autocomplete="new-password";
                                p.error id="accept-error" role="alert" hidden {}
                                button.primary type="submit" { "Accept and sign in" }
                            }
                        }
                    }
                },
            )
        }
    };
    response.headers_mut().insert(
        REFERRER_POLICY,
        actix_web::http::header::HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}
