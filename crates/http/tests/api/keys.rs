//! The key list a page at a time, and the cap on an account's active keys.

use agentvista_store::StoreOptions;

use super::*;

/// A fixture whose store allows `max` active keys per account.
async fn capped(max: u32) -> Fixture {
    let store = Store::connect_with(
        "sqlite::memory:",
        StoreOptions {
            max_active_keys: max,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let account = store
        .accounts()
        .create(&"acme".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    Fixture { store, account }
}

fn create(key: &str, name: &str) -> test::TestRequest {
    bearer(test::TestRequest::post().uri(KEYS), key)
        .set_json(json!({"name": name, "scopes": ["read"]}))
}

#[actix_web::test]
async fn the_key_list_pages_newest_first_and_its_cursors_reach_every_key() {
    let f = capped(1000).await;
    let (admin, admin_record) = key(&f.store, f.account, "admin").await;
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let mut made = vec![admin_record.id.0];
    for i in 0..4 {
        let (status, _, body) = send(&app, create(&admin, &format!("k{i}"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        made.push(body["id"].as_i64().unwrap());
    }
    made.reverse();
    let mut seen = Vec::new();
    let mut uri = format!("{KEYS}?limit=2");
    loop {
        let (status, _, body) = send(&app, bearer(get(&uri), &admin)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body["data"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|k| k["id"].as_i64().unwrap()));
        match body["next_cursor"].as_str() {
            Some(cursor) => uri = format!("{KEYS}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, made);
    // Without a limit, one page of up to 100 and no cursor.
    let (_, _, body) = send(&app, bearer(get(KEYS), &admin)).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 5);
    assert_eq!(body["next_cursor"], Value::Null);
    for bad in [
        "?limit=0",
        "?limit=101",
        "?cursor=zz",
        "?cursor=6b65793a",
        "?page=2",
    ] {
        let (status, _, body) = send(&app, bearer(get(&format!("{KEYS}{bad}")), &admin)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{bad}"
        );
    }
}

#[actix_web::test]
async fn an_account_holds_at_most_max_active_keys_and_a_revoked_one_makes_room() {
    let f = capped(3).await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let app = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let mut ids = Vec::new();
    for i in 0..2 {
        let (status, _, body) = send(&app, create(&admin, &format!("k{i}"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_i64().unwrap());
    }
    let (status, _, body) = send(&app, create(&admin, "one too many")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "too_many_keys");
    assert_eq!(body["limit"], 3);
    // A roll with a grace keeps the old key active beside the new one: refused too.
    let (status, _, body) = send(&app, roll(ids[0], &admin, json!({"grace_seconds": 60}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("too_many_keys"))
    );
    // Without a grace the new key takes the old one's place.
    let (status, _, body) = send(&app, roll(ids[0], &admin, json!({"grace_seconds": 0}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A revoked key no longer counts.
    let revoke = bearer(
        test::TestRequest::delete().uri(&format!("{KEYS}{}/", ids[1])),
        &admin,
    );
    assert_eq!(send(&app, revoke).await.0, StatusCode::NO_CONTENT);
    let (status, _, body) = send(&app, create(&admin, "room again")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        send(&app, create(&admin, "full")).await.0,
        StatusCode::CONFLICT
    );
}
