//! Teams end to end: a second person added from the command line works within their role on
//! one replica, is removed from the other, and is refused on their very next request; the
//! keys they made stay the account's. The last owner stays, on the command line too.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{self, Db, PASSWORD, Server, Session};

const OWNER: &str = "ada@example.com";
const MEMBER: &str = "mia@example.com";
/// The account `users create` names after the owner's e-mail.
const ACCOUNT: &str = OWNER;
const KEYS: &str = "/api/v1/me/api-keys/";

async fn create_key(
    http: &reqwest::Client,
    server: &Server,
    session: &Session,
    scopes: Value,
) -> (StatusCode, Value) {
    let res = http
        .post(server.url(KEYS))
        .header("Cookie", &session.cookie)
        .header("X-CSRF-Token", &session.csrf)
        .json(&json!({"name": "mine", "scopes": scopes}))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

async fn send_event(http: &reqwest::Client, server: &Server, key: &str) -> StatusCode {
    let event = json!({"type": "span", "trace_id": "t", "timestamp": "2026-11-27T12:00:00Z"});
    http.post(server.url("/api/v1/traces/batch/"))
        .bearer_auth(key)
        .json(&json!({"batch": [event]}))
        .send()
        .await
        .unwrap()
        .status()
}

pub(crate) async fn a_removed_member_is_refused_at_once_on_every_replica(db: Db) {
    db.create_user(OWNER);
    let args = [
        "users",
        "create",
        "--email",
        MEMBER,
        "--account",
        ACCOUNT,
        "--role",
        "member",
    ];
    db.cli_ok(&args, Some(PASSWORD));
    let listed: Value = serde_json::from_str(
        &db.cli_ok(&["members", "list", "--account", ACCOUNT, "--json"], None),
    )
    .unwrap();
    let roles: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [(OWNER, "owner"), (MEMBER, "member")]);
    // The command line keeps the last owner too: one line, non-zero.
    let out = db.cli(
        &[
            "members",
            "set-role",
            "--account",
            ACCOUNT,
            "--email",
            OWNER,
            "--role",
            "admin",
        ],
        &[],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("last owner") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );

    let (a, b) = (Server::start(&db).await, Server::start(&db).await);
    let http = harness::client();
    let mia = a.login(&http, MEMBER, PASSWORD).await;
    let (status, body) = create_key(&http, &a, &mia, json!(["admin"])).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &json!("insufficient_role"))
    );
    let (status, created) = create_key(&http, &a, &mia, json!(["write"])).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["created_by"]["email"], MEMBER);
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(send_event(&http, &a, &key).await, StatusCode::OK);

    // The owner removes her on the other replica.
    let ada = b.login(&http, OWNER, PASSWORD).await;
    let members: Value = http
        .get(b.url("/api/v1/me/members/"))
        .header("Cookie", &ada.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == MEMBER)
        .unwrap()["user_id"]
        .clone();
    let res = http
        .delete(b.url(&format!("/api/v1/me/members/{id}/")))
        .header("Cookie", &ada.cookie)
        .header("X-CSRF-Token", &ada.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Her very next request, on the first replica: refused.
    let res = http
        .get(a.url("/api/v1/traces/"))
        .header("Cookie", &mia.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The key she made is the account's: it keeps working until someone revokes it.
    assert_eq!(send_event(&http, &a, &key).await, StatusCode::OK);
    a.stop_and_check_logs(&[&key]).await;
    b.stop_and_check_logs(&[&key]).await;
}
