//! Invitations through the API: made by an admin with a link shown once, accepted by a new
//! person with a password or by an existing one only with their own session, once.

use agentvista_store::StoreOptions;

use super::*;

const INVITATIONS: &str = "/api/v1/me/invitations/";
const ACCEPT: &str = "/api/v1/invitations/accept/";

/// Invites `email` as `role` from the account's owner's session: the answer.
async fn invite<S, B>(
    t: &TestApp<S>,
    owner: (&str, &str),
    email: &str,
    role: &str,
) -> (StatusCode, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = with_session(test::TestRequest::post().uri(INVITATIONS), owner)
        .set_json(json!({"email": email, "role": role}));
    let (status, _, body) = send(&t.app, req).await;
    (status, body)
}

fn token_of(created: &Value) -> String {
    let url = created["url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

#[actix_web::test]
async fn a_new_person_accepts_once_with_a_password_and_joins_with_the_role() {
    let t = test_app().await;
    let (cookie, csrf) = t.session().await;
    let (status, created) = invite(&t, (&cookie, &csrf), "New@Example.com", "member").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (&created["email"], &created["role"]),
        (&json!("new@example.com"), &json!("member"))
    );
    let url = created["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:8080/invite/avinv_"),
        "{url}"
    );
    let (_, _, pending) = send(&t.app, with_session(get(INVITATIONS), (&cookie, &csrf))).await;
    assert_eq!(pending["data"].as_array().unwrap().len(), 1);
    assert!(
        pending["data"][0].get("url").is_none(),
        "the link is shown once"
    );

    let accept = |password: &str| {
        test::TestRequest::post()
            .uri(ACCEPT)
            .set_json(json!({"token": token_of(&created), "password": password}))
    };
    let (status, _, body) = send(&t.app, accept("short")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let res = test::call_service(&t.app, accept(PASSWORD).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.response().cookies().any(|c| c.name() == "av_session"));
    let body: Value = test::read_body_json(res).await;
    assert_eq!(
        (&body["account"]["name"], &body["role"]),
        (&json!("acme"), &json!("member"))
    );
    // Once: a second use, like any unknown token, is a 404.
    for req in [
        accept(PASSWORD),
        test::TestRequest::post()
            .uri(ACCEPT)
            .set_json(json!({"token": "avinv_nothing", "password": PASSWORD})),
    ] {
        let (status, _, body) = send(&t.app, req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }
    login_as(&t.app, "new@example.com").await;
    let log = t.store.audit().page(t.account, None, 20).await.unwrap();
    let actions: Vec<&str> = log.entries.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"invitation.accepted") && actions.contains(&"invitation.created"),
        "{actions:?}"
    );
}

#[actix_web::test]
async fn an_existing_person_accepts_only_signed_in_as_themself() {
    let t = test_app().await;
    let (cookie, csrf) = t.session().await;
    let globex = t
        .store
        .accounts()
        .create(&"globex".parse().unwrap(), "free", Utc::now())
        .await
        .unwrap()
        .id;
    let bob = t
        .store
        .users()
        .create(
            globex,
            Role::Owner,
            &"bob@example.com".parse().unwrap(),
            &password_hash(),
            Utc::now(),
        )
        .await
        .unwrap();
    let (_, created) = invite(&t, (&cookie, &csrf), "bob@example.com", "viewer").await;
    let token = token_of(&created);
    let body = json!({"token": token, "password": "a password of the inviter's choosing"});
    // No session, or someone else's: refused, and Bob's password is not touched.
    for session in [None, Some((cookie.as_str(), csrf.as_str()))] {
        let mut req = test::TestRequest::post().uri(ACCEPT).set_json(body.clone());
        if let Some(session) = session {
            req = with_session(req, session);
        }
        let (status, _, answer) = send(&t.app, req).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("session_required"))
        );
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("bob@example.com"),
            "{answer}"
        );
    }
    login_as(&t.app, "bob@example.com").await;
    // Signed in as Bob: he joins, and the session answered acts in the new account.
    let (bob_cookie, bob_csrf) = login_as(&t.app, "bob@example.com").await;
    let req = with_session(
        test::TestRequest::post().uri(ACCEPT),
        (&bob_cookie, &bob_csrf),
    )
    .set_json(json!({"token": token}));
    let (status, _, answer) = send(&t.app, req).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (&answer["account"]["name"], &answer["role"]),
        (&json!("acme"), &json!("viewer"))
    );
    let roles = t.store.memberships().of_user(bob.id).await.unwrap();
    assert_eq!(roles.len(), 2);
}

#[actix_web::test]
async fn invitations_are_replaced_revoked_and_refused_as_the_rules_say() {
    let t = test_app().await;
    let (cookie, csrf) = t.session().await;
    let owner = (cookie.as_str(), csrf.as_str());
    let (_, first) = invite(&t, owner, "new@example.com", "member").await;
    let (_, second) = invite(&t, owner, "new@example.com", "admin").await;
    let accept = |created: &Value| {
        test::TestRequest::post()
            .uri(ACCEPT)
            .set_json(json!({"token": token_of(created), "password": PASSWORD}))
    };
    assert_eq!(
        send(&t.app, accept(&first)).await.0,
        StatusCode::NOT_FOUND,
        "replaced"
    );
    let revoke = with_session(
        test::TestRequest::delete().uri(&format!("{INVITATIONS}{}/", second["id"])),
        owner,
    );
    assert_eq!(send(&t.app, revoke).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        send(&t.app, accept(&second)).await.0,
        StatusCode::NOT_FOUND,
        "revoked"
    );
    // A member already: 400. An admin inviting an owner: 403 naming the owner role.
    let (status, body) = invite(&t, owner, "ada@example.com", "viewer").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (_, admin_cookie, admin_csrf) = t.member("ann", Role::Admin).await;
    let (status, body) = invite(
        &t,
        (&admin_cookie, &admin_csrf),
        "boss@example.com",
        "owner",
    )
    .await;
    assert_eq!(
        (status, body["required_role"].as_str()),
        (StatusCode::FORBIDDEN, Some("owner"))
    );
    let (status, _) = invite(
        &t,
        (&admin_cookie, &admin_csrf),
        "help@example.com",
        "admin",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn an_account_has_at_most_max_pending_invitations() {
    let options = StoreOptions {
        max_pending_invitations: 2,
        ..StoreOptions::default()
    };
    let t = test_app_over(config(), options).await;
    let (cookie, csrf) = t.session().await;
    let owner = (cookie.as_str(), csrf.as_str());
    let (_, first) = invite(&t, owner, "one@example.com", "member").await;
    let (status, _) = invite(&t, owner, "two@example.com", "member").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = invite(&t, owner, "three@example.com", "member").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (body["error"].as_str(), body["limit"].as_u64()),
        (Some("too_many_invitations"), Some(2))
    );
    // Re-inviting an e-mail replaces its invitation: still two pending.
    let (status, _) = invite(&t, owner, "two@example.com", "admin").await;
    assert_eq!(status, StatusCode::CREATED);
    // A withdrawn invitation makes room.
    let revoke = with_session(
        test::TestRequest::delete().uri(&format!("{INVITATIONS}{}/", first["id"])),
        owner,
    );
    assert_eq!(send(&t.app, revoke).await.0, StatusCode::NO_CONTENT);
    let (status, _) = invite(&t, owner, "three@example.com", "member").await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, pending) = send(&t.app, with_session(get(INVITATIONS), owner)).await;
    let emails: Vec<&str> = pending["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["three@example.com", "two@example.com"]);
}
