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
    create_key(key, json!({"name": name, "scopes": ["read"]}))
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

#[actix_web::test]
async fn the_full_key_is_returned_once_and_never_listed() {
    let t = test_app().await;
    let admin = t.key("admin").await;
    let TestApp { app, .. } = t;
    let create = bearer(test::TestRequest::post().uri(KEYS), &admin).set_json(
        json!({"name": "production", "scopes": ["write"], "expires_at": "2099-01-01T00:00:00Z"}),
    );
    let (status, _, created) = send(&app, create).await;
    assert_eq!(status, StatusCode::CREATED);
    let full = created["key"].as_str().unwrap();
    assert!(ApiKey::parse(full).is_ok());
    assert_eq!(created["prefix"], full[..11]);
    assert_eq!(created["scopes"], json!(["write"]));
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00Z");

    let (_, _, listed) = send(&app, bearer(get(KEYS), &admin)).await;
    let first = &listed["data"][0];
    let mut fields: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "created_by",
            "expires_at",
            "id",
            "last_used_at",
            "name",
            "prefix",
            "rate_limit",
            "revoked_at",
            "scopes"
        ]
    );
    assert_eq!(first["rate_limit"], Value::Null);
    assert_eq!(first["id"], created["id"], "newest first");
    assert!(!listed.to_string().contains(&full[12..]));
    let hash = ApiKey::parse(full).unwrap().hash().to_hex();
    assert!(!listed.to_string().contains(&hash) && !created.to_string().contains(&hash));
}

#[actix_web::test]
async fn bad_create_bodies_get_a_400_naming_the_field() {
    let t = test_app().await;
    let admin = t.key("admin").await;
    let TestApp { app, .. } = t;
    let post = |body: Value| bearer(test::TestRequest::post().uri(KEYS), &admin).set_json(body);
    for (body, field) in [
        (
            json!({"name": "x", "scopes": ["write", "owner"]}),
            "scopes[1]",
        ),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x"}), "missing field `scopes`"),
        (json!({"name": "", "scopes": ["read"]}), "name"),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": "tomorrow"}),
            "expires_at",
        ),
    ] {
        let (status, _, answer) = send(&app, post(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"], "bad_request");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{answer} lacks {field}"
        );
    }
    let malformed = bearer(test::TestRequest::post().uri(KEYS), &admin)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload("{\"name\":");
    assert_eq!(send(&app, malformed).await.0, StatusCode::BAD_REQUEST);
    let form = bearer(test::TestRequest::post().uri(KEYS), &admin)
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload("name=x");
    let (status, _, answer) = send(&app, form).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let huge = bearer(test::TestRequest::post().uri(KEYS), &admin)
        .set_json(json!({"name": "x".repeat(5000), "scopes": ["read"]}));
    let (status, _, answer) = send(&app, huge).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
}

#[actix_web::test]
async fn revocation_rules_and_tenant_isolation() {
    let f = fixture().await;
    let globex = f
        .store
        .accounts()
        .create(&"globex".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let (writer, writer_record) = key(&f.store, f.account, "write").await;
    let (_, other_record) = key(&f.store, f.account, "read").await;
    let (_, theirs) = key(&f.store, globex, "read").await;
    let app = app(AppState::new(f.store, config()).unwrap()).await;
    let delete = |id: KeyId, key: &str| {
        bearer(
            test::TestRequest::delete().uri(&format!("{KEYS}{}/", id.0)),
            key,
        )
    };

    let (status, _, body) = send(&app, delete(theirs.id, &admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _, body) = send(&app, delete(other_record.id, &writer)).await;
    assert_eq!(
        (status, body["required_scope"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin"))
    );
    let garbage = bearer(
        test::TestRequest::delete().uri(&format!("{KEYS}abc/")),
        &admin,
    );
    assert_eq!(send(&app, garbage).await.0, StatusCode::NOT_FOUND);

    assert_eq!(
        send(&app, delete(other_record.id, &admin)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, delete(other_record.id, &admin)).await.0,
        StatusCode::NO_CONTENT
    );
    // A key may revoke itself, and fails on the very next request.
    let own = bearer(
        test::TestRequest::delete().uri(&format!("/api/v1/me/api-keys/{}", writer_record.id.0)),
        &writer,
    );
    assert_eq!(send(&app, own).await.0, StatusCode::NO_CONTENT);
    let (status, _, body) = send(&app, bearer(get(PING), &writer)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
    );
}

/// The app as the server mounts it (with `request_log`, which adds the `RateLimit-*` headers
/// to the answers that pass), and an admin key.
async fn app_with_request_log() -> (
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    String,
) {
    use actix_web::middleware::from_fn;
    let f = fixture().await;
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let state = web::Data::new(AppState::new(f.store, plans(1_000)).unwrap());
    let app = test::init_service(
        App::new()
            .wrap(from_fn(agentvista_http::request_log))
            .configure(move |cfg| configure(cfg, state)),
    )
    .await;
    (app, admin)
}

fn create_key(admin: &str, body: Value) -> test::TestRequest {
    bearer(test::TestRequest::post().uri(KEYS), admin).set_json(body)
}

/// A `read,write` key of one request a second, three at once: the creation's answer.
async fn slow_key<S, B>(app: &S, admin: &str) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let body = json!({"name": "slow", "scopes": ["read", "write"], "rate_limit": {"per_second": 1, "burst": 3}});
    let (status, _, created) = send(app, create_key(admin, body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

#[actix_web::test]
async fn a_rate_limit_out_of_bounds_or_misspelt_is_a_400_naming_it() {
    let (app, admin) = app_with_request_log().await;
    for (body, field) in [
        (
            json!({"per_second": 0, "burst": 1}),
            "rate_limit.per_second",
        ),
        (
            json!({"per_second": 1, "burst": 1_000_001}),
            "rate_limit.burst",
        ),
        (json!({"per_second": 1, "bust": 1}), "bust"),
    ] {
        let body = json!({"name": "x", "scopes": ["read"], "rate_limit": body});
        let (status, _, answer) = send(&app, create_key(&admin, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
}

#[actix_web::test]
async fn a_keys_rate_limit_is_shown_and_past_it_the_key_gets_429_with_its_headers() {
    let (app, admin) = app_with_request_log().await;
    let created = slow_key(&app, &admin).await;
    assert_eq!(created["rate_limit"], json!({"per_second": 1, "burst": 3}));
    let (_, _, listed) = send(&app, bearer(get(KEYS), &admin)).await;
    assert_eq!(
        listed["data"][0]["rate_limit"],
        json!({"per_second": 1, "burst": 3})
    );
    // Three at once: the fourth ping in a row is refused.
    let slow = created["key"].as_str().unwrap();
    let ping = || bearer(get(PING), slow);
    for remaining in ["2", "1", "0"] {
        let (status, headers, _) = send(&app, ping()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get("ratelimit-limit").unwrap(), "3");
        assert_eq!(headers.get("ratelimit-remaining").unwrap(), remaining);
    }
    let (status, headers, body) = send(&app, ping()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(headers.get("ratelimit-remaining").unwrap(), "0");
    let reset: u64 = headers
        .get("ratelimit-reset")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&reset), "RateLimit-Reset {reset}");
    // Distinct from the month's limit: no `limit`, `used`, `resets_at`.
    assert!(body.get("used").is_none());
    // OTLP answers it as the specification's retryable 429: code 8, Retry-After.
    let (status, headers, answer) = raw(
        &app,
        otlp("/otlp/v1/traces", slow, "application/json", b"{}".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert!(headers.contains_key("ratelimit-limit"));
    let rpc: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(rpc["code"], 8);
    assert_eq!(rpc["details"][0]["reason"], "rate_limited");
}

#[actix_web::test]
async fn a_key_without_a_rate_limit_answers_without_its_headers() {
    let (app, admin) = app_with_request_log().await;
    slow_key(&app, &admin).await;
    let (status, headers, _) = send(&app, bearer(get(KEYS), &admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("ratelimit-limit"));
}

#[actix_web::test]
async fn a_roll_keeps_the_rate_limit_changes_it_or_with_null_removes_it() {
    let (app, admin) = app_with_request_log().await;
    let created = slow_key(&app, &admin).await;
    let roll_with = |id: &Value, body: Value| roll(id.as_i64().unwrap(), &admin, body);
    let (status, _, kept) = send(
        &app,
        roll_with(&created["id"], json!({"grace_seconds": 60})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{kept}");
    assert_eq!(kept["rate_limit"], json!({"per_second": 1, "burst": 3}));
    let (_, _, changed) = send(
        &app,
        roll_with(
            &kept["id"],
            json!({"grace_seconds": 60, "rate_limit": {"per_second": 7}}),
        ),
    )
    .await;
    assert_eq!(changed["rate_limit"], json!({"per_second": 7, "burst": 7}));
    let (_, _, removed) = send(
        &app,
        roll_with(
            &changed["id"],
            json!({"grace_seconds": 60, "rate_limit": null}),
        ),
    )
    .await;
    assert_eq!(removed["rate_limit"], Value::Null);
}
