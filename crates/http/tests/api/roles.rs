//! What each role may do: every operation of the route table × every kind of caller (a
//! viewer's, member's, admin's and owner's session; an `admin`, `read` and `write` key), held
//! to the teams table written out here independently of the server's declaration. An
//! operation this table does not know fails the test: a new endpoint needs its rule.

use agentvista_http::declared_operations;
use agentvista_keys::Scope;

use super::*;

/// What a key may do with an operation.
#[derive(Clone, Copy, Debug)]
enum KeyRule {
    /// 403 `session_required` for every key.
    Refused,
    /// A key with this scope; others get 403 `insufficient_scope`.
    Needs(Scope),
    /// Any key reaches the handler (which judges).
    Any,
}

/// The least role a session needs (`None`: any session), and what a key may do; `None` for
/// the operations that take no credential.
fn rule(operation_id: &str) -> Option<(Option<Role>, KeyRule)> {
    use KeyRule::{Any, Needs, Refused};
    use Role::{Admin, Member, Owner, Viewer};
    Some(match operation_id {
        "healthz" | "readyz" | "openapi" | "setup" | "login" | "report_leaked_keys"
        | "accept_invitation" => {
            return None;
        }
        "logout" | "current_session" | "change_password" | "list_accounts" | "switch_account"
        | "list_sessions" | "end_session" | "end_other_sessions" => (None, Refused),
        "ping" | "list_traces" | "get_trace" | "get_trace_batch" | "get_usage"
        | "get_daily_usage" => (Some(Viewer), Needs(Scope::Read)),
        "list_api_keys" | "list_members" => (Some(Viewer), Needs(Scope::Admin)),
        "create_api_key" | "roll_api_key" => (Some(Member), Needs(Scope::Admin)),
        "revoke_api_key" => (Some(Member), Any),
        "ingest_batch" | "otlp_traces" | "otlp_logs" | "otlp_metrics" => {
            (Some(Member), Needs(Scope::Write))
        }
        "audit_log" | "set_spend_cap" => (Some(Admin), Needs(Scope::Admin)),
        "set_member_role" | "create_invitation" | "list_invitations" | "revoke_invitation" => {
            (Some(Admin), Refused)
        }
        // Leaving needs no role; removing someone else is judged with the target in hand.
        "remove_member" => (Some(Viewer), Refused),
        "set_plan" | "delete_account" => (Some(Owner), Refused),
        other => panic!("{other}: no rule in the teams table of this test"),
    })
}

/// Who calls.
enum Caller {
    Session(Role, String, String),
    Key(Scope, String),
}

#[actix_web::test]
async fn every_operation_admits_exactly_the_roles_and_scopes_of_the_teams_table() {
    let t = test_app().await;
    let mut callers = Vec::new();
    for role in Role::ALL {
        let (_, cookie, csrf) = t.member(role.as_str(), role).await;
        callers.push(Caller::Session(role, cookie, csrf));
    }
    for scope in Scope::ALL {
        callers.push(Caller::Key(scope, t.key(scope.as_str()).await));
    }
    let mut operations = declared_operations();
    assert!(operations.len() > 30, "{}", operations.len());
    // Logging out ends the session the rest of the walk uses: last.
    operations.sort_by_key(|op| op.operation_id == "logout");
    let mut checked = 0;
    let mut ruled = 0;
    for operation in &operations {
        let Some((least, keys)) = rule(operation.operation_id) else {
            continue;
        };
        ruled += 1;
        // Ids no row has: an admitted caller reaches the handler and gets a 400 or 404, never
        // changes a thing.
        let path = operation
            .path
            .replace("{key_id}", "999999")
            .replace("{user_id}", "999999")
            .replace("{session_id}", "999999")
            .replace("{invitation_id}", "999999")
            .replace("{trace_id}", "t");
        for caller in &callers {
            let mut req = test::TestRequest::default()
                .method(operation.method.clone())
                .uri(&path)
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload("{}");
            let (who, refusal) = match caller {
                Caller::Session(role, cookie, csrf) => {
                    req = with_session(req, (cookie, csrf));
                    let refusal = least
                        .filter(|least| role < least)
                        .map(|least| ("insufficient_role", Some(least.as_str())));
                    (format!("{role} session"), refusal)
                }
                Caller::Key(scope, key) => {
                    req = bearer(req, key);
                    let refusal = match keys {
                        KeyRule::Refused => Some(("session_required", None)),
                        KeyRule::Needs(needed) if needed != *scope => {
                            Some(("insufficient_scope", None))
                        }
                        KeyRule::Needs(_) | KeyRule::Any => None,
                    };
                    (format!("{scope} key"), refusal)
                }
            };
            let res = test::call_service(&t.app, req.to_request()).await;
            let status = res.status();
            let bytes = test::read_body(res).await;
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let at = format!("{} {path} by a {who}: {status} {body}", operation.method);
            match refusal {
                Some((code, role)) => {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{at}");
                    // OTLP answers in google.rpc.Status, whose code 7 is the 403.
                    if !path.starts_with("/otlp/") {
                        assert_eq!(body["error"], code, "{at}");
                        if let Some(role) = role {
                            assert_eq!(body["required_role"], role, "{at}");
                        }
                    }
                }
                None => assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{at}"
                ),
            }
            checked += 1;
        }
    }
    // Not vacuous: every credentialed operation with every caller.
    assert!(ruled >= 25, "{ruled}");
    assert_eq!(checked, ruled * callers.len());
}

#[actix_web::test]
async fn a_person_without_an_account_is_refused_everything_but_their_own_things() {
    let t = test_app().await;
    let (eve, cookie, csrf) = t.member("eve", Role::Admin).await;
    let (_, owner_cookie, owner_csrf) = t.member("owner", Role::Owner).await;
    let remove = test::TestRequest::delete().uri(&format!("/api/v1/me/members/{}/", eve.0));
    let (status, _, body) = send(&t.app, with_session(remove, (&owner_cookie, &owner_csrf))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Her session in the account ended with her membership: a new login has no account.
    let (status, _, _) = send(&t.app, with_session(get(KEYS), (&cookie, &csrf))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let session = login_as(&t.app, "eve@example.com").await;
    let (status, _, body) = send(
        &t.app,
        with_session(get("/api/v1/auth/session/"), (&session.0, &session.1)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["account"], &body["role"]),
        (&Value::Null, &Value::Null),
        "{body}"
    );
    let (status, _, body) = send(
        &t.app,
        with_session(get("/api/v1/traces/"), (&session.0, &session.1)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_role"))
    );
    let (status, _, body) = send(
        &t.app,
        with_session(get("/api/v1/me/accounts/"), (&session.0, &session.1)),
    )
    .await;
    assert_eq!((status, body["data"].clone()), (StatusCode::OK, json!([])));
}
