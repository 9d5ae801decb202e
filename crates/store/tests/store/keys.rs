//! Keys at rest: only the hash stored, listed newest first per account, revoked once, last use written at most once a minute.

use super::*;

async fn only_the_hash_of_a_key_is_stored(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let (key, record) = db
        .store
        .keys()
        .create(acme, write_key(&key_name("ci")), noon())
        .await
        .unwrap();
    assert_eq!(record.prefix, key.prefix());
    assert_eq!(record.status(noon()), KeyStatus::Active);
    assert_eq!(
        db.store.keys().find_by_hash(&key.hash()).await.unwrap(),
        Some(record)
    );

    let other = ApiKey::generate().unwrap();
    assert_eq!(
        db.store.keys().find_by_hash(&other.hash()).await.unwrap(),
        None
    );

    // Nothing in the row is the key or its secret part.
    let conn = Database::connect(&db.url).await.unwrap();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT name, prefix, key_hash, scopes FROM api_keys",
        ))
        .await
        .unwrap();
    let secret = &key.expose_secret()[12..];
    for row in rows {
        for column in ["name", "prefix", "key_hash", "scopes"] {
            let value: String = row.try_get("", column).unwrap();
            assert!(!value.contains(secret), "{column} holds the secret");
        }
        assert_eq!(
            row.try_get::<String>("", "key_hash").unwrap(),
            key.hash().to_hex()
        );
    }
    conn.close().await.unwrap();
}
on_both!(only_the_hash_of_a_key_is_stored);

async fn keys_are_listed_newest_first_and_scoped_to_their_account(db: &TestDb) {
    let keys = db.store.keys();
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let in_a_week = Expiry::for_new_key(Some(noon() + TimeDelta::days(7)), noon()).unwrap();
    let (_, first) = keys
        .create(acme, write_key(&key_name("first")), noon())
        .await
        .unwrap();
    let (_, second) = keys
        .create(
            acme,
            NewKey {
                name: &key_name("second"),
                scopes: "read,admin".parse().unwrap(),
                expiry: in_a_week,
                created_by: None,
                rate_limit: None,
            },
            noon(),
        )
        .await
        .unwrap();
    keys.create(globex, write_key(&key_name("theirs")), noon())
        .await
        .unwrap();

    let listed = keys.list(acme).await.unwrap();
    assert_eq!(listed, vec![second.clone(), first.clone()]);
    assert_eq!(listed[0].scopes, "admin,read".parse().unwrap());
    assert_eq!(listed[0].expiry, in_a_week);
    assert_eq!(
        listed[0].status(noon() + TimeDelta::days(7)),
        KeyStatus::Expired
    );
    assert_eq!(
        keys.find_by_prefix(acme, &first.prefix).await.unwrap(),
        first
    );
    assert!(matches!(
        keys.find_by_prefix(globex, &first.prefix).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        keys.get(globex, first.id).await,
        Err(StoreError::NotFound)
    ));
}
on_both!(keys_are_listed_newest_first_and_scoped_to_their_account);

async fn revoking_twice_is_not_an_error_and_other_accounts_get_not_found(db: &TestDb) {
    let keys = db.store.keys();
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let (key, record) = keys
        .create(acme, write_key(&key_name("ci")), noon())
        .await
        .unwrap();

    // Revocation goes through the lookup port, the only way to change what verification finds.
    let port: &dyn KeyLookup = &db.store;
    assert_eq!(
        port.revoke(globex, record.id, Actor::Cli, noon())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        keys.find_by_hash(&key.hash())
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );

    let later = noon() + TimeDelta::minutes(5);
    assert_eq!(
        port.revoke(acme, record.id, Actor::Cli, noon())
            .await
            .unwrap(),
        Some(Revoked::Now)
    );
    assert_eq!(
        port.revoke(acme, record.id, Actor::Cli, later)
            .await
            .unwrap(),
        Some(Revoked::Already)
    );
    let revoked = keys.find_by_hash(&key.hash()).await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(noon()),
        "the first revocation time stays"
    );
    assert_eq!(revoked.status(later), KeyStatus::Revoked);
}
on_both!(revoking_twice_is_not_an_error_and_other_accounts_get_not_found);

async fn last_used_is_written_at_most_once_a_minute(db: &TestDb) {
    let keys = db.store.keys();
    let acme = account(&db.store, "acme").await;
    let (key, record) = keys
        .create(acme, write_key(&key_name("ci")), noon())
        .await
        .unwrap();
    assert!(keys.touch_last_used(record.id, noon()).await.unwrap());
    assert!(
        !keys
            .touch_last_used(record.id, noon() + TimeDelta::seconds(59))
            .await
            .unwrap()
    );
    let at = noon() + TimeDelta::seconds(60);
    assert!(keys.touch_last_used(record.id, at).await.unwrap());
    assert_eq!(
        keys.find_by_hash(&key.hash())
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(at)
    );
}
on_both!(last_used_is_written_at_most_once_a_minute);
