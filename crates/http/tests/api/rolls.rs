//! Rolling a key: the new key takes over, the old one stops after its grace.

use super::*;

#[actix_web::test]
async fn a_rolled_key_hands_over_and_the_old_one_stops_after_its_grace() {
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let (old, record) = key(&f.store, f.account, "read,write").await;
    let (reader, _) = key(&f.store, f.account, "read").await;
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;

    let (status, headers, body) = send(
        &app,
        roll(record.id.0, &admin, json!({"grace_seconds": 3600})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let new = body["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(body["name"], "test");
    assert_eq!(body["scopes"], json!(["read", "write"]));
    assert_eq!(body["rolled"]["id"], record.id.0);
    assert!(
        body["rolled"].get("key").is_none(),
        "the old key is never shown"
    );
    let ends: DateTime<Utc> = body["rolled"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let grace = ends - Utc::now();
    assert!(
        grace > TimeDelta::minutes(59) && grace <= TimeDelta::hours(1),
        "{ends}"
    );
    for key in [&old, &new] {
        let (status, _, _) = send(&app, bearer(get(PING), key)).await;
        assert_eq!(status, StatusCode::OK, "within the grace both keys work");
    }

    // Rolled again without grace: the old key fails on the next request.
    let new_id = body["id"].as_i64().unwrap();
    let (status, _, body) = send(&app, roll(new_id, &admin, json!({"grace_seconds": 0}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = send(&app, bearer(get(PING), &new)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let newest = body["key"].as_str().unwrap();
    let (status, _, _) = send(&app, bearer(get(PING), newest)).await;
    assert_eq!(status, StatusCode::OK);

    // Refusals: a key rolled already (revoked too, but that it rolled comes first), a grace
    // past 7 days, no grace given, another account's or no key, a key without admin.
    let cases = [
        (
            roll(new_id, &admin, json!({"grace_seconds": 0})),
            StatusCode::CONFLICT,
            "already_rolled",
        ),
        (
            roll(record.id.0, &admin, json!({"grace_seconds": 604_801})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            roll(record.id.0, &admin, json!({})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            roll(9_999, &admin, json!({"grace_seconds": 0})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            roll("x", &admin, json!({"grace_seconds": 0})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            roll(record.id.0, &reader, json!({"grace_seconds": 0})),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
    ];
    for (req, want, code) in cases {
        let (status, _, body) = send(&app, req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (want, Some(code)),
            "{body}"
        );
    }
    let (_, _, body) = send(&app, roll(new_id, &admin, json!({"grace_seconds": 0}))).await;
    assert!(
        body["message"].as_str().unwrap().contains("rolled already"),
        "{body}"
    );
    // Nothing was created by the refusals: admin, reader, and the three generations.
    assert_eq!(f.store.keys().list(f.account).await.unwrap().len(), 5);
}
