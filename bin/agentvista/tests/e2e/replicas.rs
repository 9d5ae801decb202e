//! Keys verified from memory and the revocation barrier, against the real binary: two replicas
//! on one database, a frozen replica, an expiry reached in memory.

use std::time::{Duration, Instant};

use chrono::{SubsecRound, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{self, Db, Server, bearer};
use crate::{KEYS, PING};

pub(crate) const EMAIL: &str = "ada@example.com";
/// A short lease, so that the frozen-replica test is quick; every replica of a test uses it.
const LEASE_MS: u64 = 1_000;
pub(crate) const LEASE: (&str, &str) = ("AGENTVISTA__AUTH__LEASE_MS", "1000");

pub(crate) async fn ping(http: &reqwest::Client, server: &Server, key: &str) -> StatusCode {
    bearer(http.get(server.url(PING)), key)
        .send()
        .await
        .unwrap()
        .status()
}

/// Creates the key `body` describes through the API with the `admin` key; its full key and id.
pub(crate) async fn new_key(
    http: &reqwest::Client,
    server: &Server,
    admin: &str,
    body: Value,
) -> (String, Value) {
    let res = bearer(http.post(server.url(KEYS)), admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    server.secret(&key);
    (key, created["id"].clone())
}

async fn revoke(
    http: &reqwest::Client,
    server: &Server,
    auth: &str,
    id: &Value,
) -> (StatusCode, Duration) {
    let started = Instant::now();
    let res = bearer(http.delete(server.url(&format!("{KEYS}{id}/"))), auth)
        .send()
        .await
        .unwrap();
    (res.status(), started.elapsed())
}

/// Both replicas accept `key` (so both hold it in memory).
async fn accepted_by_both(http: &reqwest::Client, a: &Server, b: &Server, key: &str) {
    for server in [a, b] {
        assert_eq!(ping(http, server, key).await, StatusCode::OK);
        // Twice: the second answer comes from memory.
        assert_eq!(ping(http, server, key).await, StatusCode::OK);
    }
}

pub(crate) async fn a_key_revoked_on_one_replica_fails_at_once_on_the_other(db: Db) {
    db.create_user(EMAIL);
    let admin = db.create_key(EMAIL, "admin", "admin");
    let a = Server::start_with(&db, &[LEASE]).await;
    let b = Server::start_with(&db, &[LEASE]).await;
    let http = harness::client();
    let read = json!({"name": "sdk", "scopes": ["read"]});
    for trial in 0..12 {
        let (revoker, other) = if trial % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (key, id) = new_key(&http, revoker, &admin, read.clone()).await;
        accepted_by_both(&http, &a, &b, &key).await;
        let (status, _) = revoke(&http, revoker, &admin, &id).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(
            ping(&http, other, &key).await,
            StatusCode::UNAUTHORIZED,
            "trial {trial}: the other replica accepted a revoked key"
        );
        assert_eq!(ping(&http, revoker, &key).await, StatusCode::UNAUTHORIZED);
    }

    // A key revoking itself on B is refused on A.
    let (selfish, id) = new_key(&http, &a, &admin, read.clone()).await;
    accepted_by_both(&http, &a, &b, &selfish).await;
    assert_eq!(
        revoke(&http, &b, &selfish, &id).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(ping(&http, &a, &selfish).await, StatusCode::UNAUTHORIZED);

    // The CLI, another process, exits only once neither replica accepts the key.
    let (by_cli, _) = new_key(&http, &a, &admin, read).await;
    accepted_by_both(&http, &a, &b, &by_cli).await;
    let out = db.cli(
        &[
            "keys",
            "revoke",
            "--email",
            EMAIL,
            "--prefix",
            &by_cli[..11],
        ],
        &[LEASE],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for server in [&a, &b] {
        assert_eq!(ping(&http, server, &by_cli).await, StatusCode::UNAUTHORIZED);
    }
    a.stop_and_check_logs(&[&admin]).await;
    b.stop_and_check_logs(&[&admin]).await;
}

pub(crate) async fn a_frozen_replica_delays_a_revocation_by_at_most_a_lease(db: Db) {
    db.create_user(EMAIL);
    let admin = db.create_key(EMAIL, "admin", "admin");
    let a = Server::start_with(&db, &[LEASE]).await;
    let b = Server::start_with(&db, &[LEASE]).await;
    let http = harness::client();
    let (key, id) = new_key(
        &http,
        &a,
        &admin,
        json!({"name": "sdk", "scopes": ["read"]}),
    )
    .await;
    accepted_by_both(&http, &a, &b, &key).await;

    b.signal("STOP");
    let (status, took) = revoke(&http, &a, &admin, &id).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        took <= Duration::from_millis(LEASE_MS + 1_000),
        "the revocation took {took:?} with one replica frozen"
    );
    // Named at the bound, or, when the database did not answer within the lease either (a
    // loaded machine), by the follow-up read just after.
    let frozen = b.base().trim_start_matches("http://").to_owned();
    assert!(
        a.wait_for_log(&frozen, Duration::from_secs(15)),
        "the warning names the replica that did not answer ({frozen}): {}",
        a.log()
    );
    b.signal("CONT");
    assert_eq!(
        ping(&http, &b, &key).await,
        StatusCode::UNAUTHORIZED,
        "the thawed replica accepted the key on its first request"
    );
    a.stop_and_check_logs(&[&admin]).await;
    b.stop_and_check_logs(&[&admin]).await;
}

pub(crate) async fn an_expiry_reached_while_the_key_is_in_memory_fails_it(db: Db) {
    db.create_user(EMAIL);
    let admin = db.create_key(EMAIL, "admin", "admin");
    let server = Server::start_with(&db, &[LEASE]).await;
    let http = harness::client();
    let expires_at = (Utc::now() + TimeDelta::milliseconds(1_500)).trunc_subsecs(3);
    let body = json!({"name": "short-lived", "scopes": ["read"], "expires_at": expires_at});
    let (key, _) = new_key(&http, &server, &admin, body).await;
    assert_eq!(ping(&http, &server, &key).await, StatusCode::OK);
    assert_eq!(
        ping(&http, &server, &key).await,
        StatusCode::OK,
        "from memory"
    );
    // What is tested is the passing of time itself: wait until the expiry is behind us.
    let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(10)).await;
    assert_eq!(
        ping(&http, &server, &key).await,
        StatusCode::UNAUTHORIZED,
        "an expired key held in memory was accepted"
    );
    server.stop_and_check_logs(&[&admin]).await;
}

/// `keys roll` from the command line against two running servers that hold the key in memory:
/// with a grace both keys work on both; rolled again without one, the key stops on both at
/// once (its new expiry goes through the change log and the barrier), its successor works.
pub(crate) async fn a_rolled_key_works_through_its_grace_and_not_after(db: Db) {
    db.create_user(EMAIL);
    let first = db.create_key(EMAIL, "sdk", "read");
    let a = Server::start_with(&db, &[LEASE]).await;
    let b = Server::start_with(&db, &[LEASE]).await;
    let http = harness::client();
    accepted_by_both(&http, &a, &b, &first).await;

    let roll = |key: &str, grace: &str| {
        let out = db.cli_ok(
            &[
                "keys",
                "roll",
                "--email",
                EMAIL,
                "--prefix",
                &key[..11],
                "--grace-seconds",
                grace,
            ],
            None,
        );
        let key = out.trim().to_owned();
        assert!(
            agentvista_keys::ApiKey::parse(&key).is_ok(),
            "not a key: {key}"
        );
        a.secret(&key);
        key
    };
    let second = roll(&first, "3600");
    assert_ne!(second, first);
    accepted_by_both(&http, &a, &b, &first).await;
    accepted_by_both(&http, &a, &b, &second).await;

    let third = roll(&second, "0");
    for server in [&a, &b] {
        assert_eq!(
            ping(&http, server, &second).await,
            StatusCode::UNAUTHORIZED,
            "a server accepted the key rolled without grace"
        );
    }
    accepted_by_both(&http, &a, &b, &third).await;
    accepted_by_both(&http, &a, &b, &first).await;
    // A key rolled already, a grace past 7 days: one line and a non-zero exit.
    let out = db.cli(
        &["keys", "roll", "--email", EMAIL, "--prefix", &second[..11]],
        &[],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rolled already"));
    let out = db.cli(
        &[
            "keys",
            "roll",
            "--email",
            EMAIL,
            "--prefix",
            &third[..11],
            "--grace-seconds",
            "604801",
        ],
        &[],
        None,
    );
    assert!(!out.status.success());
    a.stop_and_check_logs(&[&first, &second, &third]).await;
    b.stop_and_check_logs(&[&first, &second, &third]).await;
}
