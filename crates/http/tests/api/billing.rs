//! Plans a session may choose: only those `billing.self_serve_plans` lists, and only from one
//! of them.

use super::*;

#[actix_web::test]
async fn only_listed_plans_are_offered_and_an_unlisted_account_stays_with_its_operator() {
    let f = fixture().await;
    // "pro" is configured but not offered.
    let config = HttpConfig {
        self_serve_plans: vec!["free".into()],
        ..config()
    };
    let app = app(AppState::new(f.store.clone(), config).unwrap()).await;
    let (cookie, csrf) = login(&app).await;
    let choose = |plan: &str| {
        test::TestRequest::put()
            .uri("/api/v1/me/billing/plan/")
            .set_json(json!({"plan": plan}))
            .insert_header((header::COOKIE, cookie.clone()))
            .insert_header(("X-CSRF-Token", csrf.clone()))
    };
    let (status, _, body) = send(&app, choose("pro")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("choose one of: free"),
        "{body}"
    );
    assert_eq!(
        f.store.accounts().get(f.account).await.unwrap().plan,
        "free"
    );
    // An account an operator put on "pro" cannot move itself, even to a listed plan.
    f.store.accounts().set_plan(f.account, "pro").await.unwrap();
    let (status, _, body) = send(&app, choose("free")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("by an operator"),
        "{body}"
    );
    assert_eq!(f.store.accounts().get(f.account).await.unwrap().plan, "pro");
    // The billing page offers no switch and says who changes the plan.
    let page = test::call_service(
        &app,
        get("/settings/billing")
            .insert_header((header::COOKIE, cookie.clone()))
            .to_request(),
    )
    .await;
    let html = String::from_utf8(test::read_body(page).await.to_vec()).unwrap();
    assert!(!html.contains("data-choose-plan"), "a switch is offered");
    assert!(
        html.contains("An operator changes this account"),
        "no word on who changes it"
    );
}

#[actix_web::test]
async fn the_spend_cap_moves_the_limit_only_on_plans_with_overage() {
    let t = test_app().await;
    let admin = t.key("read,admin").await;
    let writer = t.key("read,write").await;
    let TestApp {
        app,
        store,
        account,
    } = t;
    let put = |cap: Value, key: &str| {
        bearer(
            test::TestRequest::put().uri("/api/v1/me/billing/spend-cap/"),
            key,
        )
        .set_json(json!({"spend_cap_cents": cap}))
    };
    let (status, _, usage) = send(&app, put(json!(100), &admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (usage["plan"].as_str(), usage["events_limit"].as_u64()),
        (Some("free"), Some(50_000)),
        "a hard limit ignores the cap"
    );
    assert_eq!(usage["spend_cap_cents"], 100);

    store.accounts().set_plan(account, "pro").await.unwrap();
    let (_, _, usage) = send(&app, bearer(get("/api/v1/me/usage"), &writer)).await;
    assert_eq!(usage["events_limit"], 1_000_000 + 100 * 1000 / 50);
    let (_, _, usage) = send(&app, put(json!(99), &admin)).await;
    assert_eq!(usage["events_limit"], 1_000_000 + 1_980);
    let (_, _, usage) = send(&app, put(Value::Null, &admin)).await;
    assert_eq!(
        (
            usage["events_limit"].clone(),
            usage["spend_cap_cents"].clone()
        ),
        (Value::Null, Value::Null)
    );
    assert!(
        usage["period_start"]
            .as_str()
            .unwrap()
            .ends_with("-01T00:00:00Z")
    );

    let (status, _, body) = send(&app, put(json!(-5), &admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("spend_cap_cents:")
    );
    assert_eq!(
        send(&app, put(json!(5), &writer)).await.0,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn an_empty_spend_cap_body_is_a_400_and_null_removes_the_cap() {
    let t = test_app().await;
    let admin = t.key("admin,read").await;
    let TestApp { app, .. } = t;
    let put = |body: Value| {
        bearer(test::TestRequest::put(), &admin)
            .uri("/api/v1/me/billing/spend-cap/")
            .set_json(body)
    };
    let (status, _, body) = send(&app, put(json!({"spend_cap_cents": 500}))).await;
    assert_eq!(
        (status, &body["spend_cap_cents"]),
        (StatusCode::OK, &json!(500))
    );
    let (status, _, body) = send(&app, put(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spend_cap_cents"),
        "{body}"
    );
    let (_, _, usage) = send(&app, bearer(get("/api/v1/me/usage/"), &admin)).await;
    assert_eq!(
        usage["spend_cap_cents"], 500,
        "a refused body changed nothing"
    );
    let (status, _, body) = send(&app, put(json!({"spend_cap_cents": null}))).await;
    assert_eq!(
        (status, &body["spend_cap_cents"]),
        (StatusCode::OK, &Value::Null)
    );
}

#[actix_web::test]
async fn a_session_changes_the_plan_only_where_the_operator_allows_it() {
    let plan = |plan: &str| {
        test::TestRequest::put()
            .uri("/api/v1/me/billing/plan/")
            .set_json(json!({"plan": plan}))
    };
    // Off by default: the endpoint is as if it did not exist.
    let f = fixture().await;
    let app_off = app(AppState::new(f.store.clone(), config()).unwrap()).await;
    let (cookie, csrf) = login(&app_off).await;
    let session = |req: test::TestRequest| {
        req.insert_header((header::COOKIE, cookie.clone()))
            .insert_header(("X-CSRF-Token", csrf.clone()))
    };
    let (status, _, _) = send(&app_off, session(plan("pro"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let on = HttpConfig {
        self_serve_plans: vec!["free".into(), "pro".into()],
        ..config()
    };
    let app = app(AppState::new(f.store.clone(), on).unwrap()).await;
    let (status, _, body) = send(&app, session(plan("pro"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["plan"].as_str(), body["events_limit"].as_u64()),
        (Some("pro"), None)
    );
    let (status, _, body) = send(&app, session(plan("platinum"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("one of: free, pro"),
        "{body}"
    );
    // Without the CSRF token, or with a key (even admin): refused.
    let (status, _, _) = send(
        &app,
        plan("free").insert_header((header::COOKIE, cookie.clone())),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (admin, _) = key(&f.store, f.account, "admin").await;
    let (status, _, body) = send(&app, bearer(plan("free"), &admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_required"))
    );
    assert_eq!(f.store.accounts().get(f.account).await.unwrap().plan, "pro");
    // In the audit log, with the plan it left.
    let page = f.store.audit().page(f.account, None, 10).await.unwrap();
    let changed = page
        .entries
        .iter()
        .find(|e| e.action == "billing.plan_changed")
        .unwrap();
    assert_eq!(changed.detail, Some(json!({"plan": "pro", "was": "free"})));
}
