//! Teams through the API: the session object's account and role, members and their roles,
//! keys a member may make and manage, switching accounts, and a person's own sessions.

use super::*;

const MEMBERS: &str = "/api/v1/me/members/";

fn member_path(id: agentvista_store::UserId) -> String {
    format!("{MEMBERS}{}/", id.0)
}

#[actix_web::test]
async fn the_session_object_names_the_account_and_the_role() {
    let t = test_app().await;
    let (_, cookie, csrf) = t.member("vic", Role::Viewer).await;
    let (status, _, body) = send(
        &t.app,
        with_session(get("/api/v1/auth/session/"), (&cookie, &csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["account"], json!({"id": t.account.0, "name": "acme"}));
    assert_eq!(body["role"], "viewer");
    assert_eq!(body["user"]["email"], "vic@example.com");
}

#[actix_web::test]
async fn members_are_listed_and_a_role_change_applies_from_the_next_request() {
    let t = test_app().await;
    let (_, admin_cookie, admin_csrf) = t.member("ann", Role::Admin).await;
    let admin = (admin_cookie.as_str(), admin_csrf.as_str());
    let (mia, cookie, csrf) = t.member("mia", Role::Member).await;
    let (status, _, body) = send(&t.app, with_session(get(MEMBERS), admin)).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<(&str, &str)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("ada@example.com", "owner"),
            ("ann@example.com", "admin"),
            ("mia@example.com", "member")
        ]
    );
    // Mia may send events as a member; once a viewer, her very next request may not.
    let ingest = || {
        with_session(test::TestRequest::post().uri(BATCH), (&cookie, &csrf))
            .set_json(json!({"batch": [item(None, "t")]}))
    };
    assert_eq!(send(&t.app, ingest()).await.0, StatusCode::OK);
    let demote = with_session(test::TestRequest::patch().uri(&member_path(mia)), admin)
        .set_json(json!({"role": "viewer"}));
    let (status, _, body) = send(&t.app, demote).await;
    assert_eq!(
        (status, &body["role"]),
        (StatusCode::OK, &json!("viewer")),
        "{body}"
    );
    let (status, _, body) = send(&t.app, ingest()).await;
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["required_role"].as_str()
        ),
        (
            StatusCode::FORBIDDEN,
            Some("insufficient_role"),
            Some("member")
        )
    );
}

#[actix_web::test]
async fn admins_leave_owners_alone_and_the_last_owner_stays() {
    let t = test_app().await;
    let owner = t.session().await;
    let owner = (owner.0.as_str(), owner.1.as_str());
    let (_, cookie, csrf) = t.member("ann", Role::Admin).await;
    let admin = (cookie.as_str(), csrf.as_str());
    let ada = t
        .store
        .users()
        .find_by_email(&"ada@example.com".parse().unwrap())
        .await;
    let ada = ada.unwrap().unwrap().user.id;
    let cases = [
        (
            with_session(test::TestRequest::patch().uri(&member_path(ada)), admin)
                .set_json(json!({"role": "viewer"})),
            StatusCode::FORBIDDEN,
            "insufficient_role",
        ),
        (
            with_session(test::TestRequest::delete().uri(&member_path(ada)), admin),
            StatusCode::FORBIDDEN,
            "insufficient_role",
        ),
        (
            with_session(test::TestRequest::delete().uri(&member_path(ada)), owner),
            StatusCode::CONFLICT,
            "last_owner",
        ),
        (
            with_session(test::TestRequest::patch().uri(&member_path(ada)), owner)
                .set_json(json!({"role": "admin"})),
            StatusCode::CONFLICT,
            "last_owner",
        ),
        (
            with_session(test::TestRequest::patch().uri(&member_path(ada)), owner)
                .set_json(json!({"role": "root"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (req, status, code) in cases {
        let (got, _, body) = send(&t.app, req).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        if code == "insufficient_role" {
            assert_eq!(body["required_role"], "owner", "{body}");
        }
    }
    // An admin key manages keys, never people.
    let key = t.key("admin").await;
    let req = bearer(test::TestRequest::patch().uri(&member_path(ada)), &key)
        .set_json(json!({"role": "viewer"}));
    let (status, _, body) = send(&t.app, req).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_required"))
    );
}

#[actix_web::test]
async fn members_make_read_and_write_keys_and_manage_only_their_own() {
    let t = test_app().await;
    let (mia, cookie, csrf) = t.member("mia", Role::Member).await;
    let mia_session = (cookie.as_str(), csrf.as_str());
    let create = |scopes: Value| {
        with_session(test::TestRequest::post().uri(KEYS), mia_session)
            .set_json(json!({"name": "mine", "scopes": scopes}))
    };
    let (status, _, body) = send(&t.app, create(json!(["admin"]))).await;
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["required_role"].as_str()
        ),
        (
            StatusCode::FORBIDDEN,
            Some("insufficient_role"),
            Some("admin")
        )
    );
    let (status, _, mine) = send(&t.app, create(json!(["read", "write"]))).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(
        mine["created_by"],
        json!({"user_id": mia.0, "email": "mia@example.com"})
    );
    // Someone else's key: hers to see, not to revoke or roll.
    let (theirs, record) = key(&t.store, t.account, "read").await;
    let revoke = |id: i64| {
        with_session(
            test::TestRequest::delete().uri(&format!("{KEYS}{id}/")),
            mia_session,
        )
    };
    let (status, _, body) = send(&t.app, revoke(record.id.0)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_role"))
    );
    let roll = with_session(
        test::TestRequest::post().uri(&format!("{KEYS}{}/roll/", record.id.0)),
        mia_session,
    )
    .set_json(json!({"grace_seconds": 0}));
    let (status, _, _) = send(&t.app, roll).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&t.app, bearer(get(PING), &theirs)).await.0,
        StatusCode::OK
    );
    // Her own: rolled, the successor still hers, then revoked.
    let roll = with_session(
        test::TestRequest::post().uri(&format!("{KEYS}{}/roll/", mine["id"])),
        mia_session,
    )
    .set_json(json!({"grace_seconds": 0}));
    let (status, _, rolled) = send(&t.app, roll).await;
    assert_eq!(status, StatusCode::CREATED, "{rolled}");
    assert_eq!(rolled["created_by"]["user_id"], mia.0);
    let (status, _, _) = send(&t.app, revoke(rolled["id"].as_i64().unwrap())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[actix_web::test]
async fn a_person_switches_between_their_accounts_with_a_new_csrf_token() {
    let t = test_app().await;
    let globex = t
        .store
        .accounts()
        .create(&"globex".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    let (mia, cookie, csrf) = t.member("mia", Role::Member).await;
    t.store
        .memberships()
        .add(globex, mia, Role::Viewer, Utc::now())
        .await
        .unwrap();
    let (status, _, body) = send(
        &t.app,
        with_session(get("/api/v1/me/accounts/"), (&cookie, &csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"],
        json!([
            {"id": t.account.0, "name": "acme", "role": "member", "current": true},
            {"id": globex.0, "name": "globex", "role": "viewer", "current": false},
        ])
    );
    let switch = |csrf: &str, account: i64| {
        with_session(
            test::TestRequest::post().uri("/api/v1/auth/switch-account/"),
            (&cookie, csrf),
        )
        .set_json(json!({"account_id": account}))
    };
    let (status, _, body) = send(&t.app, switch(&csrf, globex.0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["account"]["name"], &body["role"]),
        (&json!("globex"), &json!("viewer"))
    );
    let new_csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert_ne!(new_csrf, csrf);
    // The old token writes no more; an account she is not in is 404.
    let (status, _, body) = send(&t.app, switch(&csrf, t.account.0)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_failed"))
    );
    let (status, _, _) = send(&t.app, switch(&new_csrf, 999_999)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Reads now come from globex, as a viewer.
    let (status, _, body) = send(&t.app, with_session(get(KEYS), (&cookie, &new_csrf))).await;
    assert_eq!((status, body["data"].clone()), (StatusCode::OK, json!([])));
    // Her next login starts where she switched to.
    let (again, _) = login_as(&t.app, "mia@example.com").await;
    let (_, _, body) = send(
        &t.app,
        get("/api/v1/auth/session/").insert_header((header::COOKIE, again)),
    )
    .await;
    assert_eq!(body["account"]["id"], globex.0);
}

#[actix_web::test]
async fn a_person_sees_their_sessions_and_ends_one_or_all_others() {
    let t = test_app().await;
    let here = t.session().await;
    let phone = t.session().await;
    let laptop = t.session().await;
    let here = (here.0.as_str(), here.1.as_str());
    let (status, _, body) = send(&t.app, with_session(get("/api/v1/me/sessions/"), here)).await;
    assert_eq!(status, StatusCode::OK);
    let listed = body["data"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{body}");
    assert_eq!(listed.iter().filter(|s| s["current"] == true).count(), 1);
    let other = listed.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_i64()
        .unwrap();
    let end = |id: i64| {
        with_session(
            test::TestRequest::delete().uri(&format!("/api/v1/me/sessions/{id}/")),
            here,
        )
    };
    assert_eq!(send(&t.app, end(other)).await.0, StatusCode::NO_CONTENT);
    assert_eq!(send(&t.app, end(other)).await.0, StatusCode::NOT_FOUND);
    let end_others = with_session(
        test::TestRequest::post().uri("/api/v1/me/sessions/end-others/"),
        here,
    );
    let (status, _, body) = send(&t.app, end_others).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ended": 1})));
    for (cookie, csrf) in [&phone, &laptop] {
        let (status, _, _) = send(&t.app, with_session(get(KEYS), (cookie, csrf))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = send(&t.app, with_session(get(KEYS), here)).await;
    assert_eq!(status, StatusCode::OK);
    let log = t.store.audit().page(t.account, None, 20).await.unwrap();
    let actions: Vec<&str> = log.entries.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.starts_with(&["sessions.ended_others", "session.ended"]),
        "{actions:?}"
    );
}

#[actix_web::test]
async fn an_owner_deletes_the_account_by_its_name_and_everyone_is_out_at_once() {
    let t = test_app().await;
    let admin_key = t.key("admin").await;
    let (_, admin_cookie, admin_csrf) = t.member("ann", Role::Admin).await;
    let (cookie, csrf) = t.session().await;
    let delete = |session: (&str, &str), confirm: &str| {
        with_session(
            test::TestRequest::delete().uri("/api/v1/me/account/"),
            session,
        )
        .set_json(json!({"confirm": confirm}))
    };
    let (status, _, body) = send(&t.app, delete((&admin_cookie, &admin_csrf), "acme")).await;
    assert_eq!(
        (status, body["required_role"].as_str()),
        (StatusCode::FORBIDDEN, Some("owner"))
    );
    let req = bearer(
        test::TestRequest::delete().uri("/api/v1/me/account/"),
        &admin_key,
    )
    .set_json(json!({"confirm": "acme"}));
    assert_eq!(send(&t.app, req).await.2["error"], "session_required");
    let (status, _, body) = send(&t.app, delete((&cookie, &csrf), "Acme")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("confirm:"),
        "{body}"
    );

    let (status, _, _) = send(&t.app, delete((&cookie, &csrf), "acme")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Every key and every session of it, on the very next request.
    assert_eq!(
        send(&t.app, bearer(get(PING), &admin_key)).await.0,
        StatusCode::UNAUTHORIZED
    );
    for session in [(&cookie, &csrf), (&admin_cookie, &admin_csrf)] {
        let (status, _, _) = send(&t.app, with_session(get(KEYS), (session.0, session.1))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Her login stays; she belongs to no account now.
    let (again, _) = login_as(&t.app, "ada@example.com").await;
    let (_, _, body) = send(
        &t.app,
        get("/api/v1/auth/session/").insert_header((header::COOKIE, again)),
    )
    .await;
    assert_eq!(
        (&body["account"], &body["role"]),
        (&Value::Null, &Value::Null)
    );
}
