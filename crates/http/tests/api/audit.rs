//! The audit log: who did what, from where, newest first.

use super::*;

const LOG: &str = "/api/v1/me/audit-log/";

/// `req` as sent from one client: its address and user agent.
fn from_client(req: test::TestRequest) -> test::TestRequest {
    req.peer_addr("198.51.100.9:5000".parse().unwrap())
        .insert_header((header::USER_AGENT, "audit-test/1.0"))
}

/// A login attempt from the client.
fn login_as(email: &str, password: &str) -> test::TestRequest {
    from_client(test::TestRequest::post().uri("/api/v1/auth/login/"))
        .set_json(json!({"email": email, "password": password}))
}

/// A page of the log, read with `key`.
async fn page<S, B>(app: &S, key: &str, query: &str) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, _, page) = send(app, bearer(get(&format!("{LOG}{query}")), key)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

fn actions(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn key_changes_say_who_on_what_from_where_and_how() {
    let t = test_app().await;
    let (admin, admin_record) = key(&t.store, t.account, "admin").await;
    let TestApp { app, .. } = t;
    let create = bearer(test::TestRequest::post().uri(KEYS), &admin)
        .set_json(json!({"name": "ci", "scopes": ["write"]}));
    let (status, _, created) = send(&app, from_client(create)).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_i64().unwrap();
    let (status, _, rolled) = send(
        &app,
        from_client(roll(id, &admin, json!({"grace_seconds": 60}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let revoke = test::TestRequest::delete().uri(&format!("{KEYS}{}/", rolled["id"]));
    let (status, _, _) = send(&app, from_client(bearer(revoke, &admin))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let log = page(&app, &admin, "").await;
    assert_eq!(actions(&log), ["key.revoked", "key.rolled", "key.created"]);
    let created_entry = &log["data"][2];
    assert_eq!(
        created_entry["actor"],
        format!("key:{}", admin_record.prefix)
    );
    assert_eq!(created_entry["target"], created["prefix"]);
    assert_eq!(created_entry["client_address"], "198.51.100.9");
    assert_eq!(created_entry["user_agent"], "audit-test/1.0");
    assert_eq!(log["data"][1]["detail"]["grace_seconds"], 60);
    assert_eq!(log["data"][1]["detail"]["new_prefix"], rolled["prefix"]);
    // Never a key in the log.
    assert!(!log.to_string().contains(rolled["key"].as_str().unwrap()));
}

#[actix_web::test]
async fn logins_are_recorded_for_known_addresses_only_and_never_with_a_password() {
    let t = test_app().await;
    let admin = t.key("admin").await;
    let TestApp { app, .. } = t;
    for password in ["wrong password", PASSWORD] {
        send(&app, login_as("ada@example.com", password)).await;
    }
    // An unknown address has no account whose log could hold it.
    send(&app, login_as("nobody@example.com", "whatever it is")).await;

    let log = page(&app, &admin, "").await;
    assert_eq!(actions(&log), ["login.succeeded", "login.failed"]);
    let (succeeded, failed) = (&log["data"][0], &log["data"][1]);
    assert!(succeeded["actor"].as_str().unwrap().starts_with("user:"));
    assert_eq!(
        (&failed["actor"], &failed["target"]),
        (&json!("anonymous"), &json!("ada@example.com"))
    );
    assert!(!log.to_string().contains("wrong password"));
}

#[actix_web::test]
async fn the_log_pages_newest_first_to_its_end() {
    let t = test_app().await;
    let admin = t.key("admin").await;
    let TestApp { app, .. } = t;
    for cents in [100, 200, 300, 400] {
        let cap = bearer(
            test::TestRequest::put().uri("/api/v1/me/billing/spend-cap/"),
            &admin,
        )
        .set_json(json!({"spend_cap_cents": cents}));
        assert_eq!(send(&app, cap).await.0, StatusCode::OK);
    }

    let first = page(&app, &admin, "?limit=3").await;
    let caps = |page: &Value| -> Vec<i64> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["detail"]["spend_cap_cents"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(caps(&first), [400, 300, 200]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = page(&app, &admin, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(caps(&rest), [100]);
    assert_eq!(rest["next_cursor"], Value::Null);
}

#[actix_web::test]
async fn the_log_needs_admin_and_refuses_queries_it_does_not_know() {
    let t = test_app().await;
    let (admin, reader) = (t.key("admin").await, t.key("read").await);
    let TestApp { app, .. } = t;
    assert_eq!(
        send(&app, bearer(get(LOG), &reader)).await.0,
        StatusCode::FORBIDDEN
    );
    for query in [
        "?cursor=abc",
        "?cursor=0",
        "?limit=0",
        "?limit=101",
        "?other=1",
    ] {
        let (status, _, body) = send(&app, bearer(get(&format!("{LOG}{query}")), &admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
}
