//! The dashboard pages as HTML: setup until the first user, words for bad names, strangers sent to the login, the billing page past the limit.

use super::*;

#[actix_web::test]
async fn setup_exists_only_until_the_first_user() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let app = app(AppState::new(store, config()).unwrap()).await;
    let res = test::call_service(&app, get("/").to_request()).await;
    assert_eq!(
        (
            res.status(),
            res.headers()
                .get(header::LOCATION)
                .unwrap()
                .to_str()
                .unwrap()
        ),
        (StatusCode::SEE_OTHER, "/setup")
    );
    let res = test::call_service(&app, get("/setup").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
    assert!(
        res.headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(
        html.contains("<label for=\"setup-email\">"),
        "form controls are labelled"
    );

    let setup = |password: &str| {
        test::TestRequest::post()
            .uri("/api/v1/setup/")
            .set_json(json!({"account": "Acme", "email": "ada@example.com", "password": password}))
    };
    let (status, _, body) = send(&app, setup("short")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let res = test::call_service(&app, setup(PASSWORD).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.response().cookies().any(|c| c.name() == "av_session"));

    let (status, _, _) = send(&app, setup(PASSWORD)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "setup cannot be replayed");
    assert_eq!(
        test::call_service(&app, get("/setup").to_request())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// The 400s of the name and e-mail rules, word for word, and which field a body wrong in
/// several is refused for: the shape of the body first, then the fields in the handler's order.
#[actix_web::test]
async fn names_and_emails_are_refused_with_the_same_messages_as_ever() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let app = app(AppState::new(store, config()).unwrap()).await;
    let html = String::from_utf8(
        test::read_body(test::call_service(&app, get("/setup").to_request()).await)
            .await
            .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains(r#"name="account" type="text" required maxlength="100""#),
        "{html}"
    );
    let long = "a".repeat(101);
    for (account, email, message) in [
        (
            "  ",
            "ada@example.com",
            "account: needs 1 to 100 characters.",
        ),
        (
            long.as_str(),
            "ada@example.com",
            "account: needs 1 to 100 characters.",
        ),
        ("Acme", "ada", "email: not an e-mail address."),
        ("Acme", "ada@localhost", "email: not an e-mail address."),
        ("", "ada", "account: needs 1 to 100 characters."),
    ] {
        let setup = test::TestRequest::post()
            .uri("/api/v1/setup/")
            .set_json(json!({"account": account, "email": email, "password": PASSWORD}));
        let (status, _, body) = send(&app, setup).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{account:?} {email:?}");
        assert_eq!(body["message"], message, "{account:?} {email:?}");
    }
    // Trimmed and lower-cased on the way in: the first user logs in in any case.
    let setup = test::TestRequest::post().uri("/api/v1/setup/").set_json(
        json!({"account": "  Acme ", "email": " Ada@Example.COM ", "password": PASSWORD}),
    );
    let (status, _, body) = send(&app, setup).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "ada@example.com");
    let (cookie, csrf) = login(&app).await;

    let create = |body: Value| {
        test::TestRequest::post()
            .uri(KEYS)
            .insert_header((header::COOKIE, cookie.clone()))
            .insert_header(("X-CSRF-Token", csrf.clone()))
            .set_json(body)
    };
    let html = String::from_utf8(
        test::read_body(
            test::call_service(
                &app,
                get("/settings/api-keys")
                    .insert_header((header::COOKIE, cookie.clone()))
                    .to_request(),
            )
            .await,
        )
        .await
        .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains(r#"name="name" type="text" required maxlength="100""#),
        "{html}"
    );
    let long = "n".repeat(101);
    for (body, message) in [
        (
            json!({"name": "", "scopes": ["read"]}),
            "name: needs 1 to 100 characters.",
        ),
        (
            json!({"name": " \t ", "scopes": ["read"]}),
            "name: needs 1 to 100 characters.",
        ),
        (
            json!({"name": long, "scopes": ["read"]}),
            "name: needs 1 to 100 characters.",
        ),
        (
            json!({"name": "", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "name: needs 1 to 100 characters.",
        ),
        (
            json!({"name": "", "scopes": []}),
            "scopes: a key needs at least one scope: read, write or admin.",
        ),
    ] {
        let (status, _, answer) = send(&app, create(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["message"], message, "{body}");
    }
    let longest = "n".repeat(100);
    for (name, kept) in [
        (longest.as_str(), longest.as_str()),
        ("  padded  ", "padded"),
    ] {
        let (status, _, answer) =
            send(&app, create(json!({"name": name, "scopes": ["read"]}))).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["name"], kept);
    }
}

#[actix_web::test]
async fn pages_send_strangers_to_the_login_and_never_show_a_key() {
    let t = test_app().await;
    let full = t.key("write").await;
    let TestApp { app, .. } = t;
    for page in ["/settings/api-keys", "/settings/billing", "/traces"] {
        let res = test::call_service(&app, get(page).to_request()).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(res.headers().get(header::LOCATION).unwrap(), "/login");
    }
    let (cookie, csrf) = login(&app).await;
    let res = test::call_service(
        &app,
        get("/settings/api-keys")
            .insert_header((header::COOKIE, cookie))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(html.contains(&full[..11]) && !html.contains(&full[12..]));
    assert!(html.contains(&format!("<meta name=\"csrf-token\" content=\"{csrf}\">")));
    let res = test::call_service(&app, get("/assets/app.js").to_request()).await;
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/javascript; charset=utf-8"
    );
}

#[actix_web::test]
async fn the_billing_page_names_both_ways_out_once_the_limit_is_reached() {
    let f = fixture().await;
    let (writer, _) = key(&f.store, f.account, "write").await;
    let app = app(AppState::new(f.store.clone(), plans(1)).unwrap()).await;
    let (cookie, _) = login(&app).await;
    let billing = || get("/settings/billing").insert_header((header::COOKIE, cookie.clone()));
    let page = |res: ServiceResponse<_>| async {
        String::from_utf8(test::read_body(res).await.to_vec()).unwrap()
    };
    let before = page(test::call_service(&app, billing().to_request()).await).await;
    assert!(!before.contains("over-limit"), "a banner before the limit");
    let event =
        json!({"batch": [{"type": "event", "trace_id": "t", "timestamp": "2026-11-27T12:00:00Z"}]});
    let req = bearer(
        test::TestRequest::post().uri("/api/v1/traces/batch/"),
        &writer,
    )
    .set_json(&event);
    let (status, _, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    let req = bearer(
        test::TestRequest::post().uri("/api/v1/traces/batch/"),
        &writer,
    )
    .set_json(&event);
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("larger plan or raise the spend cap"),
        "{body}"
    );
    let after = page(test::call_service(&app, billing().to_request()).await).await;
    assert!(after.contains("id=\"over-limit\""), "{after}");
    assert!(after.contains("move to a larger plan"), "{after}");
}

/// A page's status and HTML, read with a session's cookie (or none).
async fn html_of<S, B>(
    app: &S,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, header::HeaderMap, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut req = get(path);
    if let Some(cookie) = cookie {
        req = req.insert_header((header::COOKIE, cookie.to_owned()));
    }
    let res = test::call_service(app, req.to_request()).await;
    let (status, headers) = (res.status(), res.headers().clone());
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    (status, headers, html)
}

#[actix_web::test]
async fn pages_show_a_role_only_the_controls_it_may_use() {
    let t = test_app().await;
    let (_, viewer, _) = t.member("vic", Role::Viewer).await;
    let (_, member, _) = t.member("mia", Role::Member).await;
    let (owner, _) = t.session().await;
    let cases = [
        (
            "/settings/api-keys",
            "id=\"open-create-key\"",
            [false, true, true],
        ),
        (
            "/settings/members",
            "id=\"invite-form\"",
            [false, false, true],
        ),
        (
            "/settings/billing",
            "Admins and owners of this account set the spend cap",
            [true, true, false],
        ),
        (
            "/settings/audit-log",
            "id=\"audit-log\"",
            [false, false, true],
        ),
    ];
    for (path, control, shown) in cases {
        for (cookie, shown) in [&viewer, &member, &owner].into_iter().zip(shown) {
            let (status, _, html) = html_of(&t.app, path, Some(cookie)).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                html.contains(control),
                shown,
                "{path} {control} for {cookie}"
            );
        }
    }
    // The header names the account and the role.
    let (_, _, html) = html_of(&t.app, "/settings/sessions", Some(&viewer)).await;
    assert!(html.contains("acme · viewer"), "{html}");
}

#[actix_web::test]
async fn an_invitation_page_names_the_account_and_sends_no_referrer() {
    let t = test_app().await;
    let (cookie, csrf) = t.session().await;
    let req = with_session(
        test::TestRequest::post().uri("/api/v1/me/invitations/"),
        (&cookie, &csrf),
    )
    .set_json(json!({"email": "new@example.com", "role": "viewer"}));
    let (_, _, created) = send(&t.app, req).await;
    let url = created["url"].as_str().unwrap();
    let path = &url[url.find("/invite/").unwrap()..];
    let (status, headers, html) = html_of(&t.app, path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::REFERRER_POLICY).unwrap(), "no-referrer");
    assert!(
        html.contains("Join acme") && html.contains("new@example.com"),
        "{html}"
    );
    assert!(
        html.contains("autocomplete=\"new-password\""),
        "a new person chooses a password"
    );
    let (status, headers, html) = html_of(&t.app, "/invite/avinv_unknown", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers.get(header::REFERRER_POLICY).unwrap(), "no-referrer");
    assert!(html.contains("cannot be used"), "{html}");
}

#[actix_web::test]
async fn traces_whose_ids_are_dot_segments_open_from_the_list() {
    let t = test_app().await;
    let writer = t.key("write").await;
    let batch = json!({"batch": [
        {"type": "trace", "trace_id": "..", "name": "parent dir", "timestamp": "2026-11-27T12:00:00Z"},
        {"type": "trace", "trace_id": ".", "name": "this dir", "timestamp": "2026-11-27T12:00:01Z"},
        {"type": "trace", "trace_id": "...", "name": "three dots", "timestamp": "2026-11-27T12:00:02Z"},
    ]});
    let req = bearer(
        test::TestRequest::post().uri("/api/v1/traces/batch/"),
        &writer,
    )
    .set_json(&batch);
    assert_eq!(send(&t.app, req).await.0, StatusCode::OK);
    let (cookie, _) = t.session().await;
    let (status, _, list) = html_of(&t.app, "/traces", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    // Each link, as the browser would follow it, opens its own trace.
    for (href, name) in [
        ("/trace?id=..", "parent dir"),
        ("/trace?id=.", "this dir"),
        ("/traces/...", "three dots"),
    ] {
        assert!(list.contains(&format!("href=\"{href}\"")), "{href}: {list}");
        let (status, _, page) = html_of(&t.app, href, Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{href}");
        assert!(page.contains(name), "{href}: {page}");
    }
    for unknown in ["/trace?id=nothing", "/trace"] {
        let (status, _, _) = html_of(&t.app, unknown, Some(&cookie)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    }
    let (status, headers, _) = html_of(&t.app, "/trace?id=..", None).await;
    assert_eq!(
        (
            status,
            headers.get(header::LOCATION).unwrap().to_str().unwrap()
        ),
        (StatusCode::SEE_OTHER, "/login")
    );
    // The API reads the path as sent: a client that does not resolve `..` reaches the trace.
    let reader = t.key("read").await;
    let (status, _, body) = send(&t.app, bearer(get("/api/v1/traces/../"), &reader)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"][0]["name"], "parent dir", "{body}");
}
