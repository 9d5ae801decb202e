//! Accounts, users and sessions: plan and spend cap kept, e-mail addresses unique in any case, sessions ending at expiry and logout, one first run among racing ones.

use super::*;

async fn accounts_keep_plan_and_spend_cap(db: &TestDb) {
    let accounts = db.store.accounts();
    let id = account(&db.store, "acme").await;
    assert_eq!(accounts.get(id).await.unwrap().plan, "free");
    assert_eq!(accounts.set_plan(id, "pro").await.unwrap().plan, "pro");
    let capped = accounts.set_spend_cap(id, Some(1_234)).await.unwrap();
    assert_eq!(capped.spend_cap_cents, Some(1_234));
    assert_eq!(accounts.get(id).await.unwrap().spend_cap_cents, Some(1_234));
    assert_eq!(
        accounts
            .set_spend_cap(id, None)
            .await
            .unwrap()
            .spend_cap_cents,
        None
    );
    let named = |name: &str| AccountName::parse(name).unwrap();
    assert_eq!(
        accounts
            .find_by_name(&named("acme"))
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
    assert!(
        accounts
            .find_by_name(&named("nobody"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        accounts.get(AccountId(id.0 + 100)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        accounts.set_plan(AccountId(id.0 + 100), "pro").await,
        Err(StoreError::NotFound)
    ));
}
on_both!(accounts_keep_plan_and_spend_cap);

async fn user_emails_are_unique_whatever_their_case(db: &TestDb) {
    let users = db.store.users();
    let email = |text: &str| Email::parse(text).unwrap();
    assert_eq!(users.count().await.unwrap(), 0);
    let acme = account(&db.store, "acme").await;
    let ada = users
        .create(
            acme,
            Role::Owner,
            &email("Ada@Example.com"),
            &phc("$argon2id$fake"),
            noon(),
        )
        .await
        .unwrap();
    assert_eq!(ada.email, "ada@example.com");
    assert!(matches!(
        users
            .create(
                acme,
                Role::Owner,
                &email(" ADA@example.COM"),
                &phc("x"),
                noon(),
            )
            .await,
        Err(StoreError::EmailTaken)
    ));
    let found = users
        .find_by_email(&email("ADA@EXAMPLE.COM"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user, ada);
    assert_eq!(found.password_hash.as_str(), "$argon2id$fake");
    assert!(!format!("{found:?}").contains("argon2id"));
    assert!(
        users
            .find_by_email(&email("bob@example.com"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(users.count().await.unwrap(), 1);
    assert_eq!(users.get(ada.id).await.unwrap(), ada);
}
on_both!(user_emails_are_unique_whatever_their_case);

async fn sessions_end_at_expiry_and_logout(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let ada = db
        .store
        .users()
        .create(
            acme,
            Role::Owner,
            &Email::parse("ada@example.com").unwrap(),
            &phc("h"),
            noon(),
        )
        .await
        .unwrap();
    let sessions = db.store.sessions();
    let hash = |token: &str| SessionToken::presented(token).hash();
    let (token, other) = (hash("one"), hash("two"));
    let expires = noon() + TimeDelta::hours(12);
    let csrf = CsrfToken::from_stored("csrf-1".to_owned());
    let created = open_session(&db.store, &ada, &token, &csrf, expires).await;
    assert!(!format!("{created:?}").contains("csrf-1"), "{created:?}");
    open_session(
        &db.store,
        &ada,
        &other,
        &CsrfToken::from_stored("csrf-2".to_owned()),
        noon() + TimeDelta::hours(1),
    )
    .await;

    let found = sessions.find(&token, noon()).await.unwrap().unwrap();
    assert_eq!(
        (found.user.id, found.csrf_token.expose_secret()),
        (ada.id, "csrf-1")
    );
    assert!(
        sessions.find(&token, expires).await.unwrap().is_none(),
        "expired at its expiry"
    );
    assert!(
        sessions
            .find(&hash("three"), noon())
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(
        sessions
            .delete_expired(noon() + TimeDelta::hours(2))
            .await
            .unwrap(),
        1
    );
    assert!(sessions.find(&other, noon()).await.unwrap().is_none());
    sessions.delete(&token).await.unwrap();
    assert!(sessions.find(&token, noon()).await.unwrap().is_none());
    sessions.delete(&token).await.unwrap();
}
on_both!(sessions_end_at_expiry_and_logout);

async fn only_one_of_racing_first_runs_creates_a_user(db: &TestDb) {
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(async move {
                let email = Email::parse(&format!("admin{i}@example.com")).unwrap();
                let name = AccountName::parse(&format!("account {i}")).unwrap();
                let first = FirstUser {
                    account_name: &name,
                    plan: "free",
                    email: &email,
                    password_hash: &phc("h"),
                };
                store.create_first_user(first, noon()).await
            })
        })
        .collect();
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::AlreadySetUp) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(db.store.users().count().await.unwrap(), 1);
}
on_both!(only_one_of_racing_first_runs_creates_a_user);
