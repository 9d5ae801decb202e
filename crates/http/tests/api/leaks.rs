//! Leaked-key reports: each reported key revoked and logged, every report the same answer.

use super::*;

#[actix_web::test]
async fn a_reported_key_is_revoked_and_logged_and_every_report_gets_the_same_answer() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let (leaked, leaked_record) = key(&f.store, f.account, "write").await;
    let (revoked, revoked_record) = key(&f.store, f.account, "read").await;
    let config = HttpConfig {
        throttle: agentvista_http::ThrottleConfig {
            leak_reports_per_address: agentvista_http::Bucket {
                burst: std::num::NonZeroU32::new(4).unwrap(),
                every: std::time::Duration::from_secs(3600),
            },
            ..agentvista_http::ThrottleConfig::default()
        },
        ..config()
    };
    let app = app(AppState::new(f.store.clone(), config).unwrap()).await;
    let (status, _, _) = send(
        &app,
        bearer(
            test::TestRequest::delete().uri(&format!("{KEYS}{}/", revoked_record.id)),
            &admin,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let report = |body: Value| {
        test::TestRequest::post()
            .uri("/api/v1/keys/report-leak/")
            .peer_addr("203.0.113.7:4000".parse().unwrap())
            .insert_header((header::USER_AGENT, "scanner/2.0"))
            .set_json(body)
    };
    let unknown = ApiKey::generate().unwrap();
    let source = "https://github.com/acme/app/blob/3f2a1c/config.py#L7";

    // Garbage, an unknown key, a revoked key and a live one (twice): all the same answer.
    let (status, _, garbage) = send(
        &app,
        report(json!({"keys": ["hello", "av_12345678_short", unknown.expose_secret()]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, live) = send(
        &app,
        report(json!({"keys": [revoked, leaked, format!(" {leaked}\n")], "source": source})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(garbage, json!({"status": "received"}));
    assert_eq!(live, garbage, "the answer says nothing of the strings");

    // The live key fails on the very next request; the others are as they were.
    let (status, _, _) = send(&app, bearer(get("/api/v1/me/api-keys/ping/"), &leaked)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let record = f
        .store
        .keys()
        .get(f.account, leaked_record.id)
        .await
        .unwrap();
    assert!(record.revoked_at.is_some());
    let (_, _, log) = send(&app, bearer(get("/api/v1/me/audit-log/"), &admin)).await;
    let reported: Vec<&Value> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "key.reported_leaked")
        .collect();
    assert_eq!(reported.len(), 2, "one entry per key found: {log}");
    let of = |record: &agentvista_keys::KeyRecord| {
        let prefix = record.prefix.to_string();
        *reported.iter().find(|e| e["target"] == prefix).unwrap()
    };
    assert_eq!(of(&revoked_record)["detail"]["already_revoked"], true);
    let entry = of(&leaked_record);
    assert_eq!(entry["detail"]["already_revoked"], false);
    assert_eq!(entry["actor"], "leak_report");
    assert_eq!(entry["detail"]["source"], source);
    assert_eq!(entry["client_address"], "203.0.113.7");
    assert_eq!(entry["user_agent"], "scanner/2.0");
    assert!(!log.to_string().contains(&leaked[12..]));

    // A key sent where a list belongs: a 400 that does not repeat it.
    let (status, _, body) = send(&app, report(json!({ "keys": admin }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.to_string().contains(&admin[12..]), "{body}");
    // Too many strings: a 400 naming them.
    let many: Vec<String> = (0..101).map(|n| format!("s{n}")).collect();
    let (status, _, body) = send(&app, report(json!({ "keys": many }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("keys"), "{body}");
    // The address's bucket (4 here) is spent: the fifth report is a 429 before any lookup.
    let (status, headers, body) = send(&app, report(json!({"keys": [admin]}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_attempts");
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (status, _, _) = send(&app, bearer(get(KEYS), &admin)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the throttled report revoked nothing"
    );
}
