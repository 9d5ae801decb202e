//! Teams end to end: people invited on one replica accept on the other — a new person with a
//! password, an existing one only signed in as himself —, work within their role, are removed
//! on one replica and refused on their very next request on the other; the keys they made stay
//! the account's. The last owner stays, on the command line too. Then the
//! owner deletes the account, and its keys fail at once on the other replica.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{self, Db, PASSWORD, Server, Session};

const OWNER: &str = "ada@example.com";
const MEMBER: &str = "mia@example.com";
const BOB: &str = "bob@example.com";
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

/// Invites `email` as `role` from `session` on `server`: the link.
async fn invite(
    http: &reqwest::Client,
    server: &Server,
    session: &Session,
    email: &str,
    role: &str,
) -> String {
    let res = http
        .post(server.url("/api/v1/me/invitations/"))
        .header("Cookie", &session.cookie)
        .header("X-CSRF-Token", &session.csrf)
        .json(&json!({"email": email, "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    created["url"].as_str().unwrap().to_owned()
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
    // Bob has a login already, in an account of his own.
    db.cli_ok(
        &["users", "create", "--email", BOB, "--account", "Globex"],
        Some(PASSWORD),
    );
    let (a, b) = (Server::start(&db).await, Server::start(&db).await);
    let http = harness::client();
    let ada = b.login(&http, OWNER, PASSWORD).await;

    // Mia is new: invited on one replica, she accepts on the other with a password of her own.
    let mia_link = invite(&http, &b, &ada, MEMBER, "member").await;
    let token = mia_link.rsplit('/').next().unwrap().to_owned();
    a.secret(&token);
    b.secret(&token);
    assert!(mia_link.starts_with(b.base()), "{mia_link}");
    let res = http
        .post(a.url("/api/v1/invitations/accept/"))
        .json(&json!({"token": token, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Bob accepts only signed in as himself; a password sent instead changes nothing.
    let bob_link = invite(&http, &b, &ada, BOB, "viewer").await;
    let bob_token = bob_link.rsplit('/').next().unwrap().to_owned();
    a.secret(&bob_token);
    b.secret(&bob_token);
    let res = http
        .post(a.url("/api/v1/invitations/accept/"))
        .json(&json!({"token": bob_token, "password": "an inviter's guess at a password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let bob = a.login(&http, BOB, PASSWORD).await;
    let res = http
        .post(a.url("/api/v1/invitations/accept/"))
        .header("Cookie", &bob.cookie)
        .header("X-CSRF-Token", &bob.csrf)
        .json(&json!({"token": bob_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

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
    assert_eq!(
        roles,
        [(OWNER, "owner"), (MEMBER, "member"), (BOB, "viewer")]
    );
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

    // The owner deletes the account on one replica: the key fails at once on the other.
    let res = http
        .delete(b.url("/api/v1/me/account/"))
        .header("Cookie", &ada.cookie)
        .header("X-CSRF-Token", &ada.csrf)
        .json(&json!({"confirm": ACCOUNT}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(send_event(&http, &a, &key).await, StatusCode::UNAUTHORIZED);
    // Her login outlives the account; the command line no longer finds it.
    let again = a.login(&http, OWNER, PASSWORD).await;
    let session: Value = http
        .get(a.url("/api/v1/auth/session/"))
        .header("Cookie", &again.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["account"], Value::Null);
    let out = db.cli(&["members", "list", "--account", ACCOUNT], &[], None);
    assert!(!out.status.success());
    a.stop_and_check_logs(&[&key]).await;
    b.stop_and_check_logs(&[&key]).await;
}

/// Runs `script` in the page and returns its value.
async fn js(client: &fantoccini::Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

/// Waits until the page's address ends with `path`.
async fn wait_path(client: &fantoccini::Client, path: &str) {
    for _ in 0..150 {
        if client.current_url().await.unwrap().path() == path {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the page never reached {path}");
}

/// In Chromium: the owner invites a viewer from Settings → Members; the viewer accepts the
/// link with a new password, lands on a keys page without a Create Key button; made a member
/// from the role select, she makes a key, which her removal's offer revokes; the owner, in
/// two accounts, switches between them from the header, and ends another session of theirs
/// from Settings → Sessions. The browser logs no error.
pub(crate) async fn a_team_is_built_and_run_from_the_dashboard() {
    use crate::browser::{
        Driver, browser_with, chromium_or_skip, click, fill, severe_logs, shot, wait_css,
    };
    if !chromium_or_skip() {
        return;
    }
    let db = Db::sqlite();
    db.cli_ok(
        &["users", "create", "--email", OWNER, "--account", "Acme"],
        Some(PASSWORD),
    );
    db.cli_ok(
        &[
            "users",
            "create",
            "--email",
            "bob@example.com",
            "--account",
            "Globex",
        ],
        Some(PASSWORD),
    );
    db.cli_ok(
        &[
            "users",
            "create",
            "--email",
            OWNER,
            "--account",
            "Globex",
            "--role",
            "member",
        ],
        None,
    );
    let server = crate::browser::dashboard_server(&db).await;
    let driver = Driver::start();
    let owner = browser_with(&driver, &[]).await;

    owner.goto(&server.url("/login")).await.unwrap();
    fill(&owner, "#login-form input[name=email]", OWNER).await;
    fill(&owner, "#login-form input[name=password]", PASSWORD).await;
    click(&owner, "#login-form button[type=submit]").await;
    wait_path(&owner, "/settings/api-keys").await;
    owner.goto(&server.url("/settings/members")).await.unwrap();
    fill(&owner, "#invite-email", "vic@example.com").await;
    js(
        &owner,
        "document.getElementById('invite-role').value = 'viewer'",
    )
    .await;
    click(&owner, "#invite-form button[type=submit]").await;
    wait_css(&owner, "#invite-link:not([hidden])").await;
    let url = js(
        &owner,
        "return document.getElementById('invite-link-url').textContent",
    )
    .await;
    let url = url.as_str().unwrap().to_owned();
    server.secret(url.rsplit('/').next().unwrap());
    shot(&owner, "teams-01-invited").await;

    let vic = browser_with(&driver, &[]).await;
    vic.goto(&url).await.unwrap();
    fill(&vic, "#accept-password", PASSWORD).await;
    click(&vic, "#accept-form button[type=submit]").await;
    wait_path(&vic, "/settings/api-keys").await;
    let header = wait_css(&vic, ".who .account").await.text().await.unwrap();
    assert_eq!(header, "Acme · viewer");
    let create = js(
        &vic,
        "return document.getElementById('open-create-key') === null",
    )
    .await;
    assert_eq!(create, json!(true), "a viewer sees no Create Key button");
    shot(&vic, "teams-02-viewer-keys").await;

    // The owner makes Vic a member from the members page; on her next page she may make keys.
    owner.goto(&server.url("/settings/members")).await.unwrap();
    wait_css(&owner, "select[data-set-role]").await;
    js(
        &owner,
        "const s = document.querySelector('select[data-set-role]'); \
         s.value = 'member'; s.dispatchEvent(new Event('change'));",
    )
    .await;
    let mut can_create = json!(false);
    for _ in 0..150 {
        vic.goto(&server.url("/settings/api-keys")).await.unwrap();
        can_create = js(
            &vic,
            "return document.getElementById('open-create-key') !== null",
        )
        .await;
        if can_create == json!(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        can_create,
        json!(true),
        "a member sees the Create Key button"
    );
    let made = vic
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch('/api/v1/me/api-keys/', {method: 'POST', credentials: 'same-origin', \
               headers: {'Content-Type': 'application/json', \
                 'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}, \
               body: JSON.stringify({name: 'vic', scopes: ['write']})}) \
             .then((r) => r.json()).then((b) => done(b.key));",
            vec![],
        )
        .await
        .unwrap();
    let vics_key = made.as_str().unwrap().to_owned();
    server.secret(&vics_key);
    let http = harness::client();
    assert_eq!(send_event(&http, &server, &vics_key).await, StatusCode::OK);
    // Removed, with the offer to revoke the key she made taken: the key fails at once. The
    // owner's 100 newer keys put hers on the key list's second page.
    owner.goto(&server.url("/settings/members")).await.unwrap();
    let made = owner
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             const csrf = document.querySelector('meta[name=csrf-token]').content; \
             Promise.all(Array.from({length: 100}, (_, i) => \
               fetch('/api/v1/me/api-keys/', {method: 'POST', credentials: 'same-origin', \
                 headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf}, \
                 body: JSON.stringify({name: `owner-${i}`, scopes: ['read']})}) \
               .then((r) => r.text().then((text) => r.status === 201 \
                 ? JSON.parse(text).key : `HTTP ${r.status}: ${text}`)))) \
             .then(done, (err) => done([String(err)]));",
            vec![],
        )
        .await
        .unwrap();
    let made: Vec<&str> = made
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for key in &made {
        assert!(key.starts_with("av_"), "a key was not made: {key}");
        server.secret(key);
    }
    assert_eq!(made.len(), 100);
    js(&owner, "window.beforeRemoval = true").await;
    click(
        &owner,
        "button[data-remove-member][data-email='vic@example.com']",
    )
    .await;
    for _ in 0..2 {
        let mut accepted = false;
        for _ in 0..150 {
            if owner.accept_alert().await.is_ok() {
                accepted = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(accepted, "the page asked to confirm");
    }
    let mut status = StatusCode::OK;
    for _ in 0..150 {
        status = send_event(&http, &server, &vics_key).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "her key was revoked with her removal"
    );
    // The page reloads itself once the revocations are done: wait for it, or that navigation
    // could land after the next one.
    let mut reloaded = json!(false);
    for _ in 0..150 {
        reloaded = js(
            &owner,
            "return document.readyState === 'complete' && !window.beforeRemoval",
        )
        .await;
        if reloaded == json!(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reloaded, json!(true), "the members page reloaded");

    // The owner is in two accounts: the header switches between them.
    owner.goto(&server.url("/settings/api-keys")).await.unwrap();
    wait_css(&owner, "#account-switch").await;
    js(
        &owner,
        "window.beforeSwitch = true; \
         const s = document.getElementById('account-switch'); \
         s.value = [...s.options].find(o => o.text.startsWith('Globex')).value; \
         s.dispatchEvent(new Event('change'));",
    )
    .await;
    // Read from the page the switch reloads, not the one that asked (whose select shows the
    // new choice already): a new document has no `beforeSwitch`.
    let mut switched = String::new();
    for _ in 0..150 {
        let shown = js(
            &owner,
            "const s = document.getElementById('account-switch'); \
             return document.readyState === 'complete' && !window.beforeSwitch && s \
               ? s.options[s.selectedIndex].text : ''",
        )
        .await;
        switched = shown.as_str().unwrap_or_default().to_owned();
        if switched.starts_with("Globex") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(switched, "Globex · member");
    let create = js(
        &owner,
        "return document.getElementById('open-create-key') !== null",
    )
    .await;
    assert_eq!(create, json!(true), "a member may create keys");

    // Another session of the owner's, ended from Settings → Sessions.
    let other = server.login(&http, OWNER, PASSWORD).await;
    owner.goto(&server.url("/settings/sessions")).await.unwrap();
    click(&owner, "button[data-end-session]").await;
    let mut refused = StatusCode::OK;
    for _ in 0..150 {
        refused = http
            .get(server.url("/api/v1/me/sessions/"))
            .header("Cookie", &other.cookie)
            .send()
            .await
            .unwrap()
            .status();
        if refused == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(refused, StatusCode::UNAUTHORIZED);
    shot(&owner, "teams-03-sessions").await;
    for client in [&owner, &vic] {
        let severe = severe_logs(&driver, client).await;
        assert!(severe.is_empty(), "{severe:?}");
    }
    owner.close().await.unwrap();
    vic.close().await.unwrap();
    server.stop_and_check_logs(&[]).await;
}
