//! A person's own change of password: applied only over the hash it was checked against, the
//! asking session kept, every other one ended, the audit entry written with the change.

use agentvista_keys::Origin;
use agentvista_store::{AuditAction, NewAuditEntry, PasswordChange};

use super::*;

fn entry(account: AccountId, origin: &Origin) -> NewAuditEntry<'_> {
    NewAuditEntry {
        account,
        action: AuditAction::UserPasswordChanged,
        actor: "user:1".to_owned(),
        target: Some("ada@example.com".to_owned()),
        origin,
        detail: None,
        at: Utc::now(),
    }
}

async fn a_password_change_keeps_the_asking_session_and_applies_once(db: &TestDb) {
    let store = &db.store;
    let acme = account(store, "acme").await;
    let email = Email::parse("ada@example.com").unwrap();
    let ada = store
        .users()
        .create(acme, Role::Owner, &email, &phc("old"), noon())
        .await
        .unwrap();
    let hash = |token: &str| SessionToken::presented(token).hash();
    let later = noon() + TimeDelta::hours(12);
    for token in ["here", "phone", "laptop"] {
        let csrf = CsrfToken::from_stored(format!("csrf-{token}"));
        open_session(store, &ada, &hash(token), &csrf, later).await;
    }
    let origin = Origin::new(None, None);
    let keep = hash("here");
    let change = |old: &'static str, new: &'static str| (phc(old), phc(new));

    let (old, new) = change("old", "new");
    let ended = store
        .users()
        .change_password(
            ada.id,
            PasswordChange {
                old: &old,
                new: &new,
                keep: &keep,
            },
            Some(entry(acme, &origin)),
        )
        .await
        .unwrap();
    assert_eq!(ended, 2);
    let sessions = store.sessions();
    assert!(sessions.find(&keep, noon()).await.unwrap().is_some());
    for token in ["phone", "laptop"] {
        assert!(
            sessions.find(&hash(token), noon()).await.unwrap().is_none(),
            "{token}"
        );
    }
    let stored = store.users().credentials(ada.id).await.unwrap();
    assert_eq!(stored.password_hash.as_str(), "new");

    // A second change checked against the old hash lost the race: nothing changes, and no
    // audit entry is written for it.
    let (old, newer) = change("old", "newer");
    let err = store
        .users()
        .change_password(
            ada.id,
            PasswordChange {
                old: &old,
                new: &newer,
                keep: &keep,
            },
            Some(entry(acme, &origin)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let stored = store.users().credentials(ada.id).await.unwrap();
    assert_eq!(stored.password_hash.as_str(), "new");
    let log = store.audit().page(acme, None, 10).await.unwrap();
    let changes = log
        .entries
        .iter()
        .filter(|e| e.action == "user.password_changed")
        .count();
    assert_eq!(changes, 1, "{:?}", log.entries);
}
on_both!(a_password_change_keeps_the_asking_session_and_applies_once);
