//! Deleting an account: its keys revoked, its people's sessions and memberships ended and the
//! account hidden in one transaction; its data then removed by the sweep in batches, the
//! people keeping their logins and the account row staying as the tombstone.

use agentvista_keys::session::SessionToken;
use agentvista_keys::{AccountClosing, Origin};

use super::*;

async fn close(db: &TestDb, account: AccountId) -> Option<u64> {
    let origin = Origin::default();
    let closing = AccountClosing {
        account,
        by: Actor::Cli,
        email: Some("ada@example.com"),
        at: noon(),
        origin: &origin,
    };
    KeyLookup::close_account(&db.store, closing).await.unwrap()
}

/// Rows of `table` belonging to `account`.
async fn rows_of(db: &TestDb, table: &str, account: AccountId) -> i64 {
    count_rows(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE account_id = {}",
            account.0
        ),
    )
    .await
}

async fn deleting_an_account_ends_its_keys_and_people_but_not_their_logins(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let ada = person(db, acme, "ada@example.com", Role::Owner).await;
    db.store
        .memberships()
        .add(globex, ada.id, Role::Viewer, noon())
        .await
        .unwrap();
    let (key, _) = db
        .store
        .keys()
        .create(acme, write_key(&key_name("sdk")), noon())
        .await
        .unwrap();
    let token = SessionToken::presented("ada").hash();
    let csrf = CsrfToken::from_stored("c".to_owned());
    open_session(&db.store, &ada, &token, &csrf, noon() + TimeDelta::hours(1)).await;

    assert_eq!(close(db, acme).await, Some(1));
    let found = db
        .store
        .keys()
        .find_by_hash(&key.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(found.revoked_at.is_some());
    assert!(
        db.store
            .sessions()
            .find(&token, noon())
            .await
            .unwrap()
            .is_none()
    );
    let left: Vec<String> = db
        .store
        .memberships()
        .of_user(ada.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.account_name)
        .collect();
    assert_eq!(left, ["globex"], "her login and her other account stay");
    let tombstone = db.store.accounts().get(acme).await.unwrap();
    assert!(tombstone.deleted_at.is_some() && tombstone.name.starts_with("acme (deleted"));
    let name = AccountName::parse("acme").unwrap();
    assert!(
        db.store
            .accounts()
            .find_by_name(&name)
            .await
            .unwrap()
            .is_none()
    );
    let late = db
        .store
        .keys()
        .create(acme, write_key(&key_name("late")), noon())
        .await;
    assert!(
        matches!(late, Err(StoreError::NotFound)),
        "no key for a deleted account"
    );
    assert_eq!(close(db, acme).await, None, "deleted once");
    assert_eq!(close(db, AccountId(acme.0 + 1000)).await, None);
}
on_both!(deleting_an_account_ends_its_keys_and_people_but_not_their_logins);

async fn the_sweep_removes_a_deleted_accounts_data_in_batches(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let ada = person(db, acme, "ada@example.com", Role::Owner).await;
    for account in [acme, globex] {
        let (_, record) = db
            .store
            .keys()
            .create(account, write_key(&key_name("sdk")), noon())
            .await
            .unwrap();
        let events = (0..5)
            .map(|i| event(Some(&format!("e{i}")), Some(&format!("t{i}")), noon()))
            .collect();
        let batch = EventBatch {
            api_key_id: Some(record.id),
            ..batch(events)
        };
        db.store
            .record(account, Period::containing(noon()), &unlimited(), batch)
            .await
            .unwrap();
    }
    close(db, acme).await.unwrap();
    let swept = db
        .store
        .sweep_retention(&unlimited(), noon(), &sweep(2))
        .await
        .unwrap();
    assert!(swept.completed);
    assert!(swept.closed_rows_deleted >= 10, "{swept:?}");
    assert!(swept.batches >= 6, "in batches: {swept:?}");
    for table in [
        "events",
        "traces",
        "usage_periods",
        "usage_daily",
        "api_keys",
        "audit_log",
    ] {
        assert_eq!(rows_of(db, table, acme).await, 0, "{table}");
    }
    assert_eq!(
        rows_of(db, "events", globex).await,
        5,
        "another account keeps its data"
    );
    assert_eq!(rows_of(db, "api_keys", globex).await, 1);
    assert_eq!(
        db.store.users().get(ada.id).await.unwrap().email,
        "ada@example.com"
    );
    let purged = count_rows(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM accounts WHERE id = {} AND purged_at IS NOT NULL",
            acme.0
        ),
    )
    .await;
    assert_eq!(purged, 1, "the tombstone stays, marked purged");
    let again = db
        .store
        .sweep_retention(&unlimited(), noon(), &sweep(2))
        .await
        .unwrap();
    assert_eq!(again.closed_rows_deleted, 0);
}
on_both!(the_sweep_removes_a_deleted_accounts_data_in_batches);
