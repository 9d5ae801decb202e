//! The audit log: an account's entries, newest first, a page at a time.

use super::*;

async fn the_audit_log_pages_an_accounts_entries_newest_first(db: &TestDb) {
    use agentvista_store::{AuditAction, NewAuditEntry, Origin};
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let origin = Origin::new(Some("192.0.2.7".parse().unwrap()), Some(&"x".repeat(300)));
    let log = db.store.audit();
    for (i, account) in [(0, acme), (1, globex), (2, acme), (3, acme)] {
        log.append(NewAuditEntry {
            account,
            action: AuditAction::KeyCreated,
            actor: "user:1".to_owned(),
            target: Some(format!("av_0000000{i}")),
            origin: &origin,
            detail: Some(serde_json::json!({"n": i})),
            at: noon() + TimeDelta::seconds(i),
        })
        .await
        .unwrap();
    }
    let first = log.page(acme, None, 2).await.unwrap();
    let targets: Vec<_> = first
        .entries
        .iter()
        .map(|e| e.target.clone().unwrap())
        .collect();
    assert_eq!(targets, ["av_00000003", "av_00000002"]);
    let entry = &first.entries[0];
    assert_eq!(
        (entry.action.as_str(), entry.actor.as_str(), entry.at),
        ("key.created", "user:1", noon() + TimeDelta::seconds(3))
    );
    assert_eq!(entry.client_address.as_deref(), Some("192.0.2.7"));
    assert_eq!(entry.user_agent.as_ref().unwrap().chars().count(), 256);
    assert_eq!(entry.detail, Some(serde_json::json!({"n": 3})));
    let rest = log.page(acme, first.next_cursor, 2).await.unwrap();
    assert_eq!(rest.entries.len(), 1);
    assert_eq!(rest.entries[0].target.as_deref(), Some("av_00000000"));
    assert_eq!(rest.next_cursor, None);
    // Another account's entries are its own.
    assert_eq!(log.page(globex, None, 100).await.unwrap().entries.len(), 1);
}
on_both!(the_audit_log_pages_an_accounts_entries_newest_first);
