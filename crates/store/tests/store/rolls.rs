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

fn grace(seconds: u64) -> RollTerms {
    RollTerms {
        grace: Duration::from_secs(seconds),
        ..RollTerms::default()
    }
}

/// Rolls racing on one key: exactly one makes a successor, the others are told the key was
/// rolled already — also when the winner had no grace and so revoked the key.
pub(super) async fn racing_rolls_make_one_successor(db: &TestDb) {
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
                        .roll(acme, record.id, grace(seconds), asked(&origin))
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

/// A key whose revocation has returned is never rolled; revoking a rolled key leaves its
/// successor working.
pub(super) async fn a_revoked_key_has_no_successor_and_a_successor_outlives_a_revocation(
    db: &TestDb,
) {
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
        .roll(acme, revoked.id, grace(60), asked(&origin))
        .await;
    assert!(matches!(refused, Err(RollError::NotFound)), "{refused:?}");

    let (_, rolled) = store
        .keys()
        .create(acme, write_key(&key_name("rolled")), Utc::now())
        .await
        .unwrap();
    let done = store
        .roll(acme, rolled.id, grace(3600), asked(&origin))
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

/// A roll answers only once the barrier has been waited for its change, whatever the grace:
/// with a silent replica on the database, no sooner than a lease. With no grace the old key
/// is revoked, not set to expire by each replica's clock.
pub(super) async fn every_roll_waits_for_the_barrier(db: &TestDb) {
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
            .roll(acme, record.id, grace(seconds), asked(&origin))
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
