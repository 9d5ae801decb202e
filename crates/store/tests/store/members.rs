//! Memberships: people in several accounts with a role in each, changes judged by the role of
//! whoever asks, an account that always keeps an owner even under racing demotions, removal
//! that ends the member's sessions there, and the migration that made every existing user the
//! owner of their account.

use agentvista_keys::Origin;
use agentvista_keys::session::SessionToken;
use agentvista_store::{ChangedBy, MemberChange, User};

use super::*;

/// `by` changes `target`'s role in `account` to `next` (`None`: removes them).
async fn change(
    db: &TestDb,
    account: AccountId,
    by: ChangedBy,
    target: &User,
    next: Option<Role>,
) -> Result<Option<agentvista_store::Member>, StoreError> {
    db.store
        .memberships()
        .change(MemberChange {
            account,
            target: target.id,
            next,
            by,
            actor: "user:test",
            origin: &Origin::default(),
            at: noon(),
        })
        .await
}

async fn role_of(db: &TestDb, account: AccountId, user: &User) -> Option<Role> {
    db.store.memberships().role(account, user.id).await.unwrap()
}

async fn a_person_belongs_to_several_accounts_with_a_role_in_each(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let ada = person(db, acme, "ada@example.com", Role::Owner).await;
    db.store
        .memberships()
        .add(globex, ada.id, Role::Viewer, noon() + TimeDelta::hours(1))
        .await
        .unwrap();
    let theirs: Vec<(String, Role)> = db
        .store
        .memberships()
        .of_user(ada.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.account_name, m.role))
        .collect();
    assert_eq!(
        theirs,
        [
            ("acme".to_owned(), Role::Owner),
            ("globex".to_owned(), Role::Viewer)
        ]
    );
    assert!(matches!(
        db.store
            .memberships()
            .add(globex, ada.id, Role::Admin, noon())
            .await,
        Err(StoreError::AlreadyMember)
    ));
    // A login starts in the account the person was created in while they belong to it.
    let start = db
        .store
        .memberships()
        .starting_account(ada.id)
        .await
        .unwrap();
    assert_eq!(start.map(|m| m.account_id), Some(acme));
}
on_both!(a_person_belongs_to_several_accounts_with_a_role_in_each);

async fn a_change_needs_the_role_it_touches_and_leaving_needs_none(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let owner = person(db, acme, "owner@example.com", Role::Owner).await;
    let admin = person(db, acme, "admin@example.com", Role::Admin).await;
    let member = person(db, acme, "member@example.com", Role::Member).await;
    let viewer = person(db, acme, "viewer@example.com", Role::Viewer).await;
    let by = |user: &User| ChangedBy::Member(user.id);

    // Admins change anyone but owners, and make no owner.
    let done = change(db, acme, by(&admin), &member, Some(Role::Admin)).await;
    assert_eq!(done.unwrap().map(|m| m.role), Some(Role::Admin));
    for (target, next) in [
        (&owner, Some(Role::Admin)),
        (&owner, None),
        (&viewer, Some(Role::Owner)),
    ] {
        let refused = change(db, acme, by(&admin), target, next).await;
        assert!(
            matches!(refused, Err(StoreError::InsufficientRole(Role::Owner))),
            "{refused:?}"
        );
    }
    // Below admin, no one changes anyone.
    let refused = change(db, acme, by(&viewer), &member, Some(Role::Viewer)).await;
    assert!(
        matches!(refused, Err(StoreError::InsufficientRole(Role::Admin))),
        "{refused:?}"
    );
    // Anyone may leave.
    assert!(
        change(db, acme, by(&viewer), &viewer, None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(role_of(db, acme, &viewer).await, None);
    // Not a member (any more): 404.
    let gone = change(db, acme, by(&owner), &viewer, Some(Role::Member)).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    // Owners make owners.
    change(db, acme, by(&owner), &admin, Some(Role::Owner))
        .await
        .unwrap();
    assert_eq!(role_of(db, acme, &admin).await, Some(Role::Owner));
    // Every change is in the log with its actor.
    let log = db.store.audit().page(acme, None, 10).await.unwrap();
    let actions: Vec<&str> = log.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["member.role_changed", "member.left", "member.role_changed"]
    );
}
on_both!(a_change_needs_the_role_it_touches_and_leaving_needs_none);

async fn the_last_owner_can_neither_leave_nor_be_demoted_nor_removed(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let owner = person(db, acme, "owner@example.com", Role::Owner).await;
    let attempts = [
        (ChangedBy::Member(owner.id), None),
        (ChangedBy::Member(owner.id), Some(Role::Admin)),
        (ChangedBy::Operator, None),
        (ChangedBy::Operator, Some(Role::Viewer)),
    ];
    for (by, next) in attempts {
        let refused = change(db, acme, by, &owner, next).await;
        assert!(
            matches!(refused, Err(StoreError::LastOwner)),
            "{by:?} {next:?}: {refused:?}"
        );
    }
    assert_eq!(role_of(db, acme, &owner).await, Some(Role::Owner));
    // Nothing of the refusals reached the log.
    assert!(
        db.store
            .audit()
            .page(acme, None, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}
on_both!(the_last_owner_can_neither_leave_nor_be_demoted_nor_removed);

/// Two owners demoting each other at once: one change waits for the other's lock on the
/// owners and then finds itself the last one, so exactly one owner is left.
async fn two_owners_demoting_each_other_at_once_leave_one(db: &TestDb) {
    for round in 0..5 {
        let acme = account(&db.store, &format!("acme-{round}")).await;
        let ada = person(db, acme, &format!("ada{round}@example.com"), Role::Owner).await;
        let bob = person(db, acme, &format!("bob{round}@example.com"), Role::Owner).await;
        let (a, b) = tokio::join!(
            change(db, acme, ChangedBy::Member(ada.id), &bob, Some(Role::Admin)),
            change(db, acme, ChangedBy::Member(bob.id), &ada, Some(Role::Admin)),
        );
        let outcomes = [&a, &b];
        let applied = outcomes.iter().filter(|r| r.is_ok()).count();
        // The loser either found itself the last owner, or (demoted first) no longer an owner.
        assert_eq!(applied, 1, "round {round}: {a:?} {b:?}");
        assert!(
            outcomes.iter().any(|r| matches!(
                r,
                Err(StoreError::LastOwner | StoreError::InsufficientRole(Role::Owner))
            )),
            "round {round}: {a:?} {b:?}"
        );
        let owners = db
            .store
            .memberships()
            .of_account(acme)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.role == Role::Owner)
            .count();
        assert_eq!(owners, 1, "round {round}");
    }
}
on_both!(two_owners_demoting_each_other_at_once_leave_one);

async fn removing_a_member_ends_their_sessions_in_that_account_only(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let owner = person(db, acme, "owner@example.com", Role::Owner).await;
    let bob = person(db, globex, "bob@example.com", Role::Owner).await;
    db.store
        .memberships()
        .add(acme, bob.id, Role::Member, noon())
        .await
        .unwrap();
    let hash = |token: &str| SessionToken::presented(token).hash();
    let csrf = CsrfToken::from_stored("c".to_owned());
    let later = noon() + TimeDelta::hours(12);
    // Bob's session in globex (where his login starts), and one switched to acme.
    open_session(&db.store, &bob, &hash("in-globex"), &csrf, later).await;
    open_session(&db.store, &bob, &hash("in-acme"), &csrf, later).await;
    let in_acme = db
        .store
        .sessions()
        .switch(&hash("in-acme"), &bob, acme, &csrf)
        .await
        .unwrap();
    assert_eq!((in_acme.id, in_acme.role), (acme, Role::Member));

    change(db, acme, ChangedBy::Member(owner.id), &bob, None)
        .await
        .unwrap();
    let sessions = db.store.sessions();
    assert!(
        sessions
            .find(&hash("in-acme"), noon())
            .await
            .unwrap()
            .is_none()
    );
    let kept = sessions
        .find(&hash("in-globex"), noon())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.account.map(|a| a.id), Some(globex));
    // Switching to an account one is not in finds nothing.
    let refused = sessions.switch(&hash("in-globex"), &bob, acme, &csrf).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
}
on_both!(removing_a_member_ends_their_sessions_in_that_account_only);

/// The role a session acts with is read on every find: a change applies to the next request.
async fn a_sessions_role_is_read_afresh_on_every_find(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let owner = person(db, acme, "owner@example.com", Role::Owner).await;
    let eve = person(db, acme, "eve@example.com", Role::Admin).await;
    let token = SessionToken::presented("eve").hash();
    let csrf = CsrfToken::from_stored("c".to_owned());
    open_session(&db.store, &eve, &token, &csrf, noon() + TimeDelta::hours(1)).await;
    let role = || async {
        let found = db
            .store
            .sessions()
            .find(&token, noon())
            .await
            .unwrap()
            .unwrap();
        found.account.map(|a| a.role)
    };
    assert_eq!(role().await, Some(Role::Admin));
    change(
        db,
        acme,
        ChangedBy::Member(owner.id),
        &eve,
        Some(Role::Viewer),
    )
    .await
    .unwrap();
    assert_eq!(role().await, Some(Role::Viewer));
}
on_both!(a_sessions_role_is_read_afresh_on_every_find);

/// The migration that brought memberships, run over data written by the one before it: every
/// user owns the account they were in, and their sessions act there; run down and up again
/// with memberships in place, it keeps them owners.
async fn the_membership_migration_makes_every_existing_user_an_owner(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    // Rows of every table the later migrations made, so that their `down` runs over data.
    let first = person(db, acme, "first@example.com", Role::Owner).await;
    let token = agentvista_keys::InvitationToken::generate().unwrap();
    db.store
        .invitations()
        .create(agentvista_store::NewInvitation {
            account: acme,
            email: &Email::parse("invited@example.com").unwrap(),
            role: Role::Viewer,
            token_hash: &token.hash(),
            invited_by: Some(first.id),
            acting: Role::Owner,
            actor: "cli",
            origin: &Origin::default(),
            now: noon(),
            expires_at: noon() + TimeDelta::days(7),
        })
        .await
        .unwrap();
    let conn = Database::connect(&db.url).await.unwrap();
    // Back to just before the membership migration, whatever came after it.
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let from = names
        .iter()
        .position(|n| n == "m20261206_000012_memberships")
        .unwrap();
    let steps = u32::try_from(names.len() - from).unwrap();
    Migrator::down(&conn, Some(steps)).await.unwrap();
    let backend = conn.get_database_backend();
    let token = SessionToken::presented("old-session").hash();
    let expires = noon() + TimeDelta::hours(1);
    let writes = [
        Statement::from_sql_and_values(
            backend,
            "INSERT INTO users (account_id, email, password_hash, created_at) \
             VALUES ($1, 'old@example.com', 'h', $2)",
            [acme.0.into(), noon().into()],
        ),
        Statement::from_sql_and_values(
            backend,
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
             SELECT $1, id, 'c', $2, $3 FROM users WHERE email = 'old@example.com'",
            [
                hex::encode(token.as_bytes()).into(),
                noon().into(),
                expires.into(),
            ],
        ),
    ];
    for write in writes {
        conn.execute_raw(write).await.unwrap();
    }
    Migrator::up(&conn, None).await.unwrap();
    let email = Email::parse("old@example.com").unwrap();
    let old = db
        .store
        .users()
        .find_by_email(&email)
        .await
        .unwrap()
        .unwrap()
        .user;
    assert_eq!(role_of(db, acme, &old).await, Some(Role::Owner));
    let session = db
        .store
        .sessions()
        .find(&token, noon())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        session.account.map(|a| (a.id, a.role)),
        Some((acme, Role::Owner))
    );

    // Down and up again with data: still the owner.
    Migrator::down(&conn, Some(steps)).await.unwrap();
    Migrator::up(&conn, None).await.unwrap();
    conn.close().await.unwrap();
    assert_eq!(role_of(db, acme, &old).await, Some(Role::Owner));
    assert_eq!(role_of(db, acme, &first).await, Some(Role::Owner));
}
on_both!(the_membership_migration_makes_every_existing_user_an_owner);

/// The account's deletion holds the account row and then deletes its memberships; a member's
/// removal that came in between must wait for the account row before it takes any membership
/// row, or each would wait for the other. PostgreSQL only: SQLite runs one write at a time.
async fn a_removal_during_the_accounts_deletion_waits_for_it(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let owner = person(db, acme, "owner@example.com", Role::Owner).await;
    let ann = person(db, acme, "ann@example.com", Role::Member).await;
    let conn = Database::connect(&db.url).await.unwrap();
    let deletion = locking_transaction(&conn).await;
    let backend = conn.get_database_backend();
    let run = |sql: String| Statement::from_string(backend, sql);
    deletion
        .execute_raw(run(format!(
            "SELECT id FROM accounts WHERE id = {} FOR UPDATE",
            acme.0
        )))
        .await
        .unwrap();

    let store = db.store.clone();
    let removal = tokio::spawn(async move {
        store
            .memberships()
            .change(agentvista_store::MemberChange {
                account: acme,
                target: ann.id,
                next: None,
                by: agentvista_store::ChangedBy::Member(owner.id),
                actor: "user:1",
                origin: &Origin::default(),
                at: noon(),
            })
            .await
    });
    // Observed, not assumed: the removal is blocked before the deletion goes on.
    assert!(
        a_transaction_waits_on_a_lock(db).await,
        "the removal did not wait"
    );
    // The deletion's next steps need the membership rows: free, since the removal took none.
    deletion
        .execute_raw(run(format!(
            "DELETE FROM memberships WHERE account_id = {}",
            acme.0
        )))
        .await
        .unwrap();
    deletion
        .execute_raw(run(format!(
            "UPDATE accounts SET deleted_at = '2026-11-27 12:00:00+00' WHERE id = {}",
            acme.0
        )))
        .await
        .unwrap();
    deletion.commit().await.unwrap();
    let removed = removal.await.unwrap();
    assert!(matches!(removed, Err(StoreError::NotFound)), "{removed:?}");
}

mod a_removal_during_the_accounts_deletion_waits_for_it {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::run(
            super::a_removal_during_the_accounts_deletion_waits_for_it,
            agentvista_store::testing::Engine::Postgres,
        )
        .await;
    }
}
