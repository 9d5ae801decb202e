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
