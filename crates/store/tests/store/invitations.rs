//! Invitations: pending until accepted, revoked or expired; a token works once however many
//! accepts race for it.

use agentvista_keys::{InvitationToken, Origin};
use agentvista_store::{Acceptance, NewInvitation};

use super::*;

async fn invited(db: &TestDb, account: AccountId, email: &str) -> InvitationToken {
    invited_by(db, account, email, None).await
}

/// An invitation of `email` as a member, made by `by` (`None`: the operator).
async fn invited_by(
    db: &TestDb,
    account: AccountId,
    email: &str,
    by: Option<agentvista_store::UserId>,
) -> InvitationToken {
    let token = InvitationToken::generate().unwrap();
    db.store
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
            now: noon(),
            expires_at: noon() + TimeDelta::days(7),
        })
        .await
        .unwrap();
    token
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
    db.store
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
        .unwrap();
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
