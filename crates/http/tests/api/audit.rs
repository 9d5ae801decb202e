//! The audit log: who did what, from where, newest first.

use super::*;

#[actix_web::test]
async fn the_audit_log_records_who_did_what_from_where_newest_first() {
    let f = fixture().await;
    let (admin, admin_record) = key(&f.store, f.account, "admin").await;
    let (reader, _) = key(&f.store, f.account, "read").await;
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let from = |req: test::TestRequest| {
        req.peer_addr("198.51.100.9:5000".parse().unwrap())
            .insert_header((header::USER_AGENT, "audit-test/1.0"))
    };

    let (status, _, created) = send(
        &app,
        from(bearer(test::TestRequest::post().uri(KEYS), &admin))
            .set_json(json!({"name": "ci", "scopes": ["write"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_i64().unwrap();
    let (status, _, rolled) =
        send(&app, from(roll(id, &admin, json!({"grace_seconds": 60})))).await;
    assert_eq!(status, StatusCode::CREATED);
    let new_id = rolled["id"].as_i64().unwrap();
    let (status, _, _) = send(
        &app,
        from(bearer(
            test::TestRequest::delete().uri(&format!("{KEYS}{new_id}/")),
            &admin,
        )),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = send(
        &app,
        from(bearer(
            test::TestRequest::put().uri("/api/v1/me/billing/spend-cap/"),
            &admin,
        ))
        .set_json(json!({"spend_cap_cents": 500})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for password in ["wrong password", PASSWORD] {
        send(
            &app,
            from(test::TestRequest::post().uri("/api/v1/auth/login/"))
                .set_json(json!({"email": "ada@example.com", "password": password})),
        )
        .await;
    }
    // An unknown address has no account whose log could hold it.
    send(
        &app,
        from(test::TestRequest::post().uri("/api/v1/auth/login/"))
            .set_json(json!({"email": "nobody@example.com", "password": "whatever it is"})),
    )
    .await;

    let log = "/api/v1/me/audit-log/";
    let (status, _, first) = send(&app, bearer(get(&format!("{log}?limit=3")), &admin)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let actions = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        actions(&first),
        [
            "login.succeeded",
            "login.failed",
            "billing.spend_cap_changed"
        ]
    );
    let failed = &first["data"][1];
    assert_eq!(
        (&failed["actor"], &failed["target"]),
        (&json!("anonymous"), &json!("ada@example.com"))
    );
    assert!(
        first["data"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("user:")
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, _, rest) = send(
        &app,
        bearer(get(&format!("{log}?limit=3&cursor={cursor}")), &admin),
    )
    .await;
    assert_eq!(actions(&rest), ["key.revoked", "key.rolled", "key.created"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let created_entry = &rest["data"][2];
    assert_eq!(
        created_entry["actor"],
        format!("key:{}", admin_record.prefix)
    );
    assert_eq!(created_entry["target"], created["prefix"]);
    assert_eq!(created_entry["client_address"], "198.51.100.9");
    assert_eq!(created_entry["user_agent"], "audit-test/1.0");
    assert_eq!(rest["data"][1]["detail"]["grace_seconds"], 60);
    assert_eq!(rest["data"][1]["detail"]["new_prefix"], rolled["prefix"]);
    // Never a key, a hash or a password in the log.
    let all = format!("{first}{rest}");
    assert!(!all.contains(rolled["key"].as_str().unwrap()));
    assert!(!all.contains("wrong password"));

    let (status, _, _) = send(&app, bearer(get(log), &reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for query in [
        "?cursor=abc",
        "?cursor=0",
        "?limit=0",
        "?limit=101",
        "?other=1",
    ] {
        let (status, _, body) = send(&app, bearer(get(&format!("{log}{query}")), &admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
}
