//! Rolls as changes that can stop a key: one successor per key, however many rolls race; no
//! successor for a revoked key; the barrier waited whatever the grace; a successor that
//! outlives its predecessor's revocation.

use std::time::Duration;

use agentvista_keys::{Asked, Origin, RollError, RollTerms};
use tokio::time::Instant;

use super::revocation::{leased, silent_replica};
use super::*;

fn asked(origin: &Origin) -> Asked<'_> {
    Asked {
        by: Actor::Cli,
        at: Utc::now(),
        origin,
    }
}

fn grace_of(seconds: u64) -> RollTerms {
    grace(Duration::from_secs(seconds))
}

/// Rolls key `id` of `account` on the command line's behalf, at noon.
async fn roll_at_noon(
    db: &TestDb,
    account: AccountId,
    id: KeyId,
    terms: RollTerms,
) -> Result<agentvista_keys::Rolled, RollError> {
    let origin = Origin::default();
    let asked = Asked {
        by: Actor::Cli,
        at: noon(),
        origin: &origin,
    };
    db.store.roll(account, id, terms, asked).await
}

/// Rolls racing on one key: exactly one makes a successor, the others are told the key was
/// rolled already — also when the winner had no grace and so revoked the key.
async fn racing_rolls_make_one_successor(db: &TestDb) {
    for seconds in [3600, 0] {
        let store = db.store.clone();
        let acme = account(&store, &format!("acme-{seconds}")).await;
        let (_, record) = store
            .keys()
            .create(acme, write_key(&key_name("ci")), Utc::now())
            .await
            .unwrap();
        let rolls: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let origin = Origin::default();
                    store
                        .roll(acme, record.id, grace_of(seconds), asked(&origin))
                        .await
                })
            })
            .collect();
        let mut made = 0;
        for roll in rolls {
            match roll.await.unwrap() {
                Ok(_) => made += 1,
                Err(RollError::AlreadyRolled) => {}
                Err(other) => panic!("grace {seconds}: {other:?}"),
            }
        }
        assert_eq!(made, 1, "grace {seconds}");
        assert_eq!(store.keys().list(acme).await.unwrap().len(), 2);
        let log = store.audit().page(acme, None, 10).await.unwrap().entries;
        let rolled: Vec<_> = log.iter().filter(|e| e.action == "key.rolled").collect();
        assert_eq!(rolled.len(), 1, "grace {seconds}: one entry, with the roll");
        assert_eq!(rolled[0].detail.as_ref().unwrap()["grace_seconds"], seconds);
    }
}
on_both!(racing_rolls_make_one_successor);

/// A key whose revocation has returned is never rolled; revoking a rolled key leaves its
/// successor working.
async fn a_revoked_key_has_no_successor_and_a_successor_outlives_a_revocation(db: &TestDb) {
    let store = &db.store;
    let acme = account(store, "acme").await;
    let origin = Origin::default();
    let (_, revoked) = store
        .keys()
        .create(acme, write_key(&key_name("old")), Utc::now())
        .await
        .unwrap();
    store
        .revoke(acme, revoked.id, Actor::Cli, Utc::now())
        .await
        .unwrap();
    let refused = store
        .roll(acme, revoked.id, grace_of(60), asked(&origin))
        .await;
    assert!(matches!(refused, Err(RollError::NotFound)), "{refused:?}");

    let (_, rolled) = store
        .keys()
        .create(acme, write_key(&key_name("rolled")), Utc::now())
        .await
        .unwrap();
    let done = store
        .roll(acme, rolled.id, grace_of(3600), asked(&origin))
        .await
        .unwrap();
    store
        .revoke(acme, rolled.id, Actor::Cli, Utc::now())
        .await
        .unwrap();
    let successor = store.keys().get(acme, done.record.id).await.unwrap();
    assert_eq!(successor.status(Utc::now()), KeyStatus::Active);
    assert_eq!(store.keys().list(acme).await.unwrap().len(), 3);
}
on_both!(a_revoked_key_has_no_successor_and_a_successor_outlives_a_revocation);

/// A roll answers only once the barrier has been waited for its change, whatever the grace:
/// with a silent replica on the database, no sooner than a lease. With no grace the old key
/// is revoked, not set to expire by each replica's clock.
async fn every_roll_waits_for_the_barrier(db: &TestDb) {
    let store = leased(db).await;
    let acme = account(&store, "acme").await;
    silent_replica(db).await;
    let origin = Origin::default();
    for seconds in [0, 3600] {
        let (_, record) = store
            .keys()
            .create(acme, write_key(&key_name("ci")), Utc::now())
            .await
            .unwrap();
        let started = Instant::now();
        let rolled = store
            .roll(acme, record.id, grace_of(seconds), asked(&origin))
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(
            took >= super::revocation::LEASE,
            "grace {seconds}: answered after {took:?}, inside the lease"
        );
        let old = store.keys().get(acme, record.id).await.unwrap();
        assert_eq!(old.revoked_at.is_some(), seconds == 0, "grace {seconds}");
        assert_eq!(rolled.old.revoked_at, old.revoked_at);
    }
    store.close().await.unwrap();
}
on_both!(every_roll_waits_for_the_barrier);

async fn rolling_a_key_hands_its_grant_to_a_new_one_and_expires_the_old(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let keys = db.store.keys();
    let later = noon() + TimeDelta::days(30);
    let name = key_name("ci");
    let new = NewKey {
        expiry: Expiry::for_new_key(Some(later), noon()).unwrap(),
        ..write_key(&name)
    };
    let (old_key, old) = keys.create(acme, new, noon()).await.unwrap();
    let hour = std::time::Duration::from_secs(3600);
    let rolled = roll_at_noon(db, acme, old.id, grace(hour)).await.unwrap();
    // The same grant, a new secret.
    assert_ne!(rolled.record.prefix, old.prefix);
    assert_ne!(rolled.key.hash(), old_key.hash());
    assert_eq!(
        (
            &rolled.record.name,
            rolled.record.scopes,
            rolled.record.account_id
        ),
        (&old.name, old.scopes, acme)
    );
    assert_eq!(rolled.record.expiry, Expiry::at(Some(later)));
    let found = keys
        .find_by_hash(&rolled.key.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, rolled.record.id);
    // The old key works until the grace ends, and not after.
    let old_now = keys.find_by_hash(&old_key.hash()).await.unwrap().unwrap();
    let ends = noon() + TimeDelta::hours(1);
    assert_eq!(old_now.expiry, Expiry::at(Some(ends)));
    assert_eq!(rolled.old.expiry, old_now.expiry);
    assert!(old_now.status(ends - TimeDelta::seconds(1)).is_active());
    assert!(!old_now.status(ends).is_active());
    // Replicas hear of it through the change log.
    assert_eq!(
        count_rows(
            db,
            "SELECT COUNT(*) AS n FROM key_changes WHERE kind = 'expiry'"
        )
        .await,
        1
    );

    // Rolled again with no grace: the new key stops at once; an earlier expiry is kept.
    let again = roll_at_noon(db, acme, rolled.record.id, grace(std::time::Duration::ZERO))
        .await
        .unwrap();
    assert!(!again.old.status(noon()).is_active());
    let kept = db
        .store
        .roll(
            acme,
            again.record.id,
            grace(hour),
            agentvista_keys::Asked {
                by: Actor::Cli,
                at: later - TimeDelta::minutes(1),
                origin: &agentvista_keys::Origin::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(kept.old.expiry, Expiry::at(Some(later)));
}
on_both!(rolling_a_key_hands_its_grant_to_a_new_one_and_expires_the_old);

async fn a_rate_limit_is_stored_kept_by_a_roll_and_changed_by_one(db: &TestDb) {
    use agentvista_keys::RateLimit;
    use agentvista_store::RateLimitChange;
    let acme = account(&db.store, "acme").await;
    let keys = db.store.keys();
    let name = key_name("limited");
    let limit = RateLimit::new(5, 20).unwrap();
    let new = NewKey {
        rate_limit: Some(limit),
        ..write_key(&name)
    };
    let (key, created) = keys.create(acme, new, noon()).await.unwrap();
    assert_eq!(created.rate_limit, Some(limit));
    let found = keys.find_by_hash(&key.hash()).await.unwrap().unwrap();
    assert_eq!(found.rate_limit, Some(limit));
    assert_eq!(keys.list(acme).await.unwrap()[0].rate_limit, Some(limit));

    let kept = roll_at_noon(
        db,
        acme,
        created.id,
        grace(std::time::Duration::from_secs(60)),
    )
    .await
    .unwrap();
    assert_eq!(
        kept.record.rate_limit,
        Some(limit),
        "a roll keeps the limit"
    );
    let other = RateLimit::new(1, 1).unwrap();
    let terms = RollTerms {
        grace: std::time::Duration::from_secs(60),
        rate_limit: RateLimitChange::Set(Some(other)),
    };
    let changed = roll_at_noon(db, acme, kept.record.id, terms).await.unwrap();
    assert_eq!(
        keys.get(acme, changed.record.id).await.unwrap().rate_limit,
        Some(other)
    );
    let terms = RollTerms {
        grace: std::time::Duration::from_secs(60),
        rate_limit: RateLimitChange::Set(None),
    };
    let removed = roll_at_noon(db, acme, changed.record.id, terms)
        .await
        .unwrap();
    assert_eq!(
        keys.get(acme, removed.record.id).await.unwrap().rate_limit,
        None
    );
    // The old keys keep theirs.
    assert_eq!(
        keys.get(acme, created.id).await.unwrap().rate_limit,
        Some(limit)
    );
}
on_both!(a_rate_limit_is_stored_kept_by_a_roll_and_changed_by_one);

async fn only_an_active_key_of_the_account_rolls(db: &TestDb) {
    let (acme, globex) = (
        account(&db.store, "acme").await,
        account(&db.store, "globex").await,
    );
    let (_, record) = db
        .store
        .keys()
        .create(acme, write_key(&key_name("ci")), noon())
        .await
        .unwrap();
    let minute = std::time::Duration::from_secs(60);
    assert!(matches!(
        roll_at_noon(db, globex, record.id, grace(minute)).await,
        Err(agentvista_store::RollError::NotFound)
    ));
    assert!(matches!(
        roll_at_noon(
            db,
            acme,
            record.id,
            grace(agentvista_store::MAX_ROLL_GRACE * 2)
        )
        .await,
        Err(agentvista_store::RollError::GraceTooLong)
    ));
    let port: &dyn KeyLookup = &db.store;
    port.revoke(acme, record.id, Actor::Cli, noon())
        .await
        .unwrap();
    assert!(matches!(
        roll_at_noon(db, acme, record.id, grace(minute)).await,
        Err(agentvista_store::RollError::NotFound)
    ));
    // Nothing was created by the refused rolls.
    assert_eq!(db.store.keys().list(acme).await.unwrap().len(), 1);
}
on_both!(only_an_active_key_of_the_account_rolls);
