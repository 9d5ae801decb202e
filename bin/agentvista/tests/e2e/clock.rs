//! Expiry judged on one clock, the database's: a replica whose wall clock is minutes behind
//! refuses a key once it has expired, and a rolled key once its grace has ended.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::KEYS;
use crate::harness::{self, Db, Server, bearer};
use crate::replicas::{EMAIL, LEASE, new_key, ping};

/// How far behind the skewed server's wall clock runs: five minutes.
const BEHIND: u32 = 300;

/// Waits until `at` has passed on this host's clock: what is tested is the passing of time.
async fn until_past(at: DateTime<Utc>) {
    let left = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(20)).await;
}

pub(crate) async fn a_replica_whose_clock_is_behind_refuses_expired_keys(db: Db) {
    db.create_user(EMAIL);
    let admin = db.create_key(EMAIL, "admin", "admin");
    let a = Server::start_with(&db, &[LEASE]).await;
    let Some(b) = Server::start_behind(&db, &[LEASE], BEHIND).await else {
        return;
    };
    let http = harness::client();
    // The skewed server does run behind: its own `Date` header says so.
    let res = http.get(b.url("/healthz")).send().await.unwrap();
    let date = res.headers()["date"].to_str().unwrap().to_owned();
    let its_now = DateTime::parse_from_rfc2822(&date).unwrap().to_utc();
    assert!(
        Utc::now() - its_now > TimeDelta::minutes(4),
        "the server's clock is not behind: {date}"
    );

    // A key that expires in two seconds, held in both replicas' memory.
    let expires_at = (Utc::now() + TimeDelta::seconds(2)).trunc_subsecs(3);
    let body = json!({"name": "short-lived", "scopes": ["read"], "expires_at": expires_at});
    let (short, _) = new_key(&http, &a, &admin, body).await;
    b.secret(&short);
    // And a key rolled with a grace of two seconds.
    let body = json!({"name": "rolled", "scopes": ["read"]});
    let (old, id) = new_key(&http, &a, &admin, body).await;
    b.secret(&old);
    let res = bearer(http.post(a.url(&format!("{KEYS}{id}/roll/"))), &admin)
        .json(&json!({"grace_seconds": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let rolled: Value = res.json().await.unwrap();
    let successor = rolled["key"].as_str().unwrap().to_owned();
    a.secret(&successor);
    b.secret(&successor);
    let grace_end: DateTime<Utc> = rolled["rolled"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for server in [&a, &b] {
        for key in [&short, &old] {
            assert_eq!(ping(&http, server, key).await, StatusCode::OK);
            assert_eq!(
                ping(&http, server, key).await,
                StatusCode::OK,
                "from memory"
            );
        }
    }

    until_past(expires_at.max(grace_end)).await;
    for server in [&a, &b] {
        assert_eq!(
            ping(&http, server, &short).await,
            StatusCode::UNAUTHORIZED,
            "{}: an expired key was accepted",
            server.base()
        );
        assert_eq!(
            ping(&http, server, &old).await,
            StatusCode::UNAUTHORIZED,
            "{}: a rolled key was accepted after its grace",
            server.base()
        );
        assert_eq!(ping(&http, server, &successor).await, StatusCode::OK);
    }
    a.stop_and_check_logs(&[&admin, &short, &old, &successor])
        .await;
    b.stop_and_check_logs(&[&admin, &short, &old, &successor])
        .await;
}
