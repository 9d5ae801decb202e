//! Rolling a key: the new key takes over, the old one stops after its grace, and a roll that
//! cannot be made is refused without creating anything.

use super::*;

/// An admin key, and a `read,write` key of the account to roll: the full keys and the record.
async fn admin_and_rollable<S, B>(t: &TestApp<S>) -> (String, String, KeyRecord)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let admin = t.key("admin").await;
    let (old, record) = key(&t.store, t.account, "read,write").await;
    (admin, old, record)
}

#[actix_web::test]
async fn a_roll_answers_with_the_new_key_once_and_when_the_old_one_ends() {
    let t = test_app().await;
    let (admin, old, record) = admin_and_rollable(&t).await;

    let (status, headers, body) = send(
        &t.app,
        roll(record.id.0, &admin, json!({"grace_seconds": 3600})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_ne!(body["key"].as_str().unwrap(), old);
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
}

#[actix_web::test]
async fn within_the_grace_both_keys_work_and_without_one_the_old_stops_at_once() {
    let t = test_app().await;
    let (admin, old, record) = admin_and_rollable(&t).await;
    let (_, _, body) = send(
        &t.app,
        roll(record.id.0, &admin, json!({"grace_seconds": 3600})),
    )
    .await;
    let new = body["key"].as_str().unwrap().to_owned();
    for key in [&old, &new] {
        let (status, _, _) = send(&t.app, bearer(get(PING), key)).await;
        assert_eq!(status, StatusCode::OK, "within the grace both keys work");
    }

    let new_id = body["id"].as_i64().unwrap();
    let (status, _, body) = send(&t.app, roll(new_id, &admin, json!({"grace_seconds": 0}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = send(&t.app, bearer(get(PING), &new)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "rolled without grace");
    let newest = body["key"].as_str().unwrap();
    let (status, _, _) = send(&t.app, bearer(get(PING), newest)).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn a_roll_that_cannot_be_made_is_refused_and_creates_nothing() {
    let t = test_app().await;
    let (admin, _, record) = admin_and_rollable(&t).await;
    let reader = t.key("read").await;
    let (_, _, body) = send(
        &t.app,
        roll(record.id.0, &admin, json!({"grace_seconds": 0})),
    )
    .await;
    let new_id = body["id"].as_i64().unwrap();

    // A key rolled already (revoked too, but that it rolled comes first), a grace past 7 days,
    // no grace given, another account's or no key, a key without admin.
    let cases = [
        (
            roll(record.id.0, &admin, json!({"grace_seconds": 0})),
            StatusCode::CONFLICT,
            "already_rolled",
        ),
        (
            roll(new_id, &admin, json!({"grace_seconds": 604_801})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            roll(new_id, &admin, json!({})),
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
            roll(new_id, &reader, json!({"grace_seconds": 0})),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
    ];
    for (req, want, code) in cases {
        let (status, _, body) = send(&t.app, req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (want, Some(code)),
            "{body}"
        );
    }
    let (_, _, body) = send(
        &t.app,
        roll(record.id.0, &admin, json!({"grace_seconds": 0})),
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("rolled already"),
        "{body}"
    );
    // Admin, reader, the rolled key and its successor.
    assert_eq!(t.store.keys().list(t.account).await.unwrap().len(), 4);
}
