//! Invitations: pending until accepted, revoked or expired; a token works once however many
//! accepts race for it.

use agentvista_keys::{InvitationToken, Origin};
use agentvista_store::{Acceptance, NewInvitation, StoreOptions};

use super::*;

/// An invitation of `email` as a member made by `by` (`None`: the operator) on `store` at
/// `now`: its token, or why it was refused.
async fn invite_at(
    store: &Store,
    account: AccountId,
    email: &str,
    by: Option<agentvista_store::UserId>,
    now: DateTime<Utc>,
) -> Result<InvitationToken, StoreError> {
    let token = InvitationToken::generate().unwrap();
    store
        .invitations()
        .create(NewInvitation {
            account,
            email: &Email::parse(email).unwrap(),
            role: Role::Member,
            token_hash: &token.hash(),
            invited_by: by,
            acting: Role::Owner,
            actor: "cli",
            origin: &Origin::default(),
            now,
            expires_at: now + TimeDelta::days(7),
        })
        .await
        .map(|_| token)
}

/// `member` removed from `account` by `owner`.
async fn remove(
    db: &TestDb,
    account: AccountId,
    member: agentvista_store::UserId,
    owner: agentvista_store::UserId,
) {
    db.store
        .memberships()
        .change(agentvista_store::MemberChange {
            account,
            target: member,
            next: None,
            by: agentvista_store::ChangedBy::Member(owner),
            actor: "user:1",
            origin: &Origin::default(),
            at: noon(),
        })
        .await
        .unwrap();
}

async fn invited(db: &TestDb, account: AccountId, email: &str) -> InvitationToken {
    invited_by(db, account, email, None).await
}

/// An invitation of `email` as a member, made by `by` (`None`: the operator) at noon.
async fn invited_by(
    db: &TestDb,
    account: AccountId,
    email: &str,
    by: Option<agentvista_store::UserId>,
) -> InvitationToken {
    invite_at(&db.store, account, email, by, noon())
        .await
        .unwrap()
}

async fn an_invitation_is_pending_until_it_expires(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let token = invited(db, acme, "new@example.com").await;
    let invitations = db.store.invitations();
    let found = invitations
        .find_pending(&token.hash(), noon())
        .await
        .unwrap();
    assert_eq!(found.map(|p| p.account_name), Some("acme".to_owned()));
    let later = noon() + TimeDelta::days(7);
    assert!(
        invitations
            .find_pending(&token.hash(), later)
            .await
            .unwrap()
            .is_none()
    );
    assert!(invitations.pending(acme, later).await.unwrap().is_empty());
    let hash = phc("h");
    let late = invitations
        .accept(
            &token.hash(),
            Acceptance::NewPerson(&hash),
            &Origin::default(),
            later,
        )
        .await;
    assert!(matches!(late, Err(StoreError::NotFound)), "{late:?}");
}
on_both!(an_invitation_is_pending_until_it_expires);

async fn racing_accepts_of_one_token_join_once(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let token = invited(db, acme, "new@example.com").await;
    let hash = phc("h");
    let (token_hash, origin, store) = (token.hash(), Origin::default(), &db.store);
    let accept = || async {
        store
            .invitations()
            .accept(&token_hash, Acceptance::NewPerson(&hash), &origin, noon())
            .await
    };
    let (a, b, c) = tokio::join!(accept(), accept(), accept());
    let joined = [&a, &b, &c].iter().filter(|r| r.is_ok()).count();
    assert_eq!(joined, 1, "{a:?} {b:?} {c:?}");
    let members = db.store.memberships().of_account(acme).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].role, Role::Member);
}
on_both!(racing_accepts_of_one_token_join_once);

async fn a_removed_admins_invitations_stop_working(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let owner = person(db, acme, "owner@example.com", Role::Owner).await;
    let ann = person(db, acme, "ann@example.com", Role::Admin).await;
    let hers = invited_by(db, acme, "friend@example.com", Some(ann.id)).await;
    let theirs = invited_by(db, acme, "other@example.com", Some(owner.id)).await;
    remove(db, acme, ann.id, owner.id).await;
    let invitations = db.store.invitations();
    assert!(
        invitations
            .find_pending(&hers.hash(), noon())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        invitations
            .find_pending(&theirs.hash(), noon())
            .await
            .unwrap()
            .is_some()
    );
}
on_both!(a_removed_admins_invitations_stop_working);

async fn concurrent_invitations_never_pass_max_pending_invitations(db: &TestDb) {
    let options = StoreOptions {
        max_pending_invitations: 3,
        ..StoreOptions::default()
    };
    let store = Store::connect_with(&db.url, options).await.unwrap();
    let acme = account(&store, "acme").await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            let email = format!("p{i}@example.com");
            tokio::spawn(async move {
                invite_at(&store, acme, &email, None, noon())
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    let (mut made, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => made += 1,
            Err(StoreError::TooManyInvitations { limit: 3 }) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((made, refused), (3, 7));
    let pending = store.invitations().pending(acme, noon()).await.unwrap();
    assert_eq!(pending.len(), 3);
    // Another account has its own three.
    let other = account(&store, "other").await;
    invite_at(&store, other, "p0@example.com", None, noon())
        .await
        .unwrap();
    // Re-inviting a pending e-mail replaces its invitation: no room needed.
    invite_at(&store, acme, &pending[0].email, None, noon())
        .await
        .unwrap();
    // Expired invitations leave room.
    let week = noon() + TimeDelta::days(7);
    invite_at(&store, acme, "late@example.com", None, week)
        .await
        .unwrap();
    store.close().await.unwrap();
}
on_both!(concurrent_invitations_never_pass_max_pending_invitations);

async fn ended_invitations_leave_no_rows(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let owner = person(db, acme, "owner@example.com", Role::Owner).await;
    let all = "SELECT COUNT(*) AS n FROM invitations";
    // Replaced and withdrawn invitations are deleted at once.
    for _ in 0..3 {
        invited(db, acme, "again@example.com").await;
    }
    assert_eq!(count_rows(db, all).await, 1);
    let withdrawn = db.store.invitations().pending(acme, noon()).await.unwrap();
    db.store
        .invitations()
        .revoke(
            acme,
            withdrawn[0].id,
            Role::Owner,
            "cli",
            &Origin::default(),
            noon(),
        )
        .await
        .unwrap();
    assert_eq!(count_rows(db, all).await, 0);
    // Each ended invitation is in the log: two replaced (by the next one), one withdrawn.
    let log = db.store.audit().page(acme, None, 10).await.unwrap();
    let revoked: Vec<(i64, Option<i64>)> = log
        .entries
        .iter()
        .filter(|e| e.action == "invitation.revoked")
        .map(|e| {
            let detail = e.detail.as_ref().unwrap();
            (
                detail["invitation_id"].as_i64().unwrap(),
                detail["replaced_by"].as_i64(),
            )
        })
        .collect();
    let created: Vec<i64> = log
        .entries
        .iter()
        .filter(|e| e.action == "invitation.created")
        .map(|e| {
            e.detail.as_ref().unwrap()["invitation_id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let (third, second, first) = (created[0], created[1], created[2]);
    assert_eq!(
        revoked,
        [(third, None), (second, Some(third)), (first, Some(second))]
    );

    // Accepted, expired and withdrawn-with-their-inviter ones go with the sweep.
    let accepted = invited(db, acme, "yes@example.com").await;
    db.store
        .invitations()
        .accept(
            &accepted.hash(),
            Acceptance::NewPerson(&phc("h")),
            &Origin::default(),
            noon(),
        )
        .await
        .unwrap();
    let ann = person(db, acme, "ann@example.com", Role::Admin).await;
    invited_by(db, acme, "friend@example.com", Some(ann.id)).await;
    remove(db, acme, ann.id, owner.id).await;
    let log = db.store.audit().page(acme, None, 1).await.unwrap();
    let removed = &log.entries[0];
    assert_eq!(removed.action, "member.removed");
    assert_eq!(removed.detail.as_ref().unwrap()["invitations_withdrawn"], 1);
    invite_at(
        &db.store,
        acme,
        "old@example.com",
        None,
        noon() - TimeDelta::days(8),
    )
    .await
    .unwrap();
    let kept = invited(db, acme, "pending@example.com").await;
    assert_eq!(count_rows(db, all).await, 4);

    let swept = db
        .store
        .sweep_retention(&unlimited(), noon(), &sweep(2))
        .await
        .unwrap();
    assert_eq!(swept.invitations_deleted, 3);
    assert_eq!(count_rows(db, all).await, 1);
    let invitations = db.store.invitations();
    let found = invitations
        .find_pending(&kept.hash(), noon())
        .await
        .unwrap();
    assert!(found.is_some());
}
on_both!(ended_invitations_leave_no_rows);
