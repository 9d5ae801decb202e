//! The revocation matrix: every path that ends a key, tried against two replicas on one
//! database, each holding the key in memory. After the call that ends it has returned, no
//! request with the key succeeds on either replica: 20 trials per path with both replicas up,
//! and 3 with one of them frozen (SIGSTOP), probed once it runs again (SIGCONT). Latency is
//! the benchmark's business (`bench/revocations.py`), not this test's.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::KEYS;
use crate::harness::{Db, PASSWORD, Server, Session, bearer};
use crate::replicas::{EMAIL, new_key, ping};

/// A short lease, so that the trials with a frozen replica fit the suite.
const LEASE: (&str, &str) = ("AGENTVISTA__AUTH__LEASE_MS", "200");
const LEASE_LENGTH: Duration = Duration::from_millis(200);
const TRIALS: usize = 20;
const FROZEN_TRIALS: usize = 3;
const REPORT: &str = "/api/v1/keys/report-leak/";
const BATCH: &str = "/api/v1/traces/batch/";

/// Every way a key stops working.
#[derive(Clone, Copy, Debug)]
enum Path {
    DeleteBySession,
    DeleteByAdminKey,
    DeleteByItself,
    Cli,
    LeakReportOfALiveKey,
    LeakReportOfARevokedKey,
    RollWithoutGrace,
    RollWithGraceAtItsEnd,
    BodyStillArriving,
}

const PATHS: [Path; 9] = [
    Path::DeleteBySession,
    Path::DeleteByAdminKey,
    Path::DeleteByItself,
    Path::Cli,
    Path::LeakReportOfALiveKey,
    Path::LeakReportOfARevokedKey,
    Path::RollWithoutGrace,
    Path::RollWithGraceAtItsEnd,
    Path::BodyStillArriving,
];

struct World {
    db: Db,
    conn: DatabaseConnection,
    a: Server,
    b: Server,
    http: reqwest::Client,
    admin: String,
    session: Session,
}

/// A key held in both replicas' memory: the full key and its id.
struct Held {
    key: String,
    id: Value,
}

impl World {
    async fn key(&self) -> Held {
        let body = json!({"name": "doomed", "scopes": ["read", "write"]});
        let (key, id) = new_key(&self.http, &self.a, &self.admin, body).await;
        self.b.secret(&key);
        for server in [&self.a, &self.b] {
            for _ in 0..2 {
                assert_eq!(ping(&self.http, server, &key).await, StatusCode::OK);
            }
        }
        Held { key, id }
    }

    async fn delete(&self, held: &Held, by: &str) -> StatusCode {
        let url = self.a.url(&format!("{KEYS}{}/", held.id));
        bearer(self.http.delete(url), by)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn report(&self, key: &str) -> StatusCode {
        self.http
            .post(self.a.url(REPORT))
            .json(&json!({"keys": [key], "source": "https://example.test/matrix"}))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Rolls `held` on A with `grace` seconds; the old key's end.
    async fn roll(&self, held: &Held, grace: u64) -> DateTime<Utc> {
        let url = self.a.url(&format!("{KEYS}{}/roll/", held.id));
        let res = bearer(self.http.post(url), &self.admin)
            .json(&json!({"grace_seconds": grace}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let rolled: Value = res.json().await.unwrap();
        let successor = rolled["key"].as_str().unwrap();
        self.a.secret(successor);
        self.b.secret(successor);
        let old = &rolled["rolled"];
        old["revoked_at"]
            .as_str()
            .or(old["expires_at"].as_str())
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Whether the key's revocation has committed (read on the test's own connection).
    async fn revoked_in_the_database(&self, key: &str) -> bool {
        let backend = self.conn.get_database_backend();
        let row = self
            .conn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "SELECT COUNT(*) AS n FROM api_keys WHERE prefix = $1 AND revoked_at IS NOT NULL",
                [key[..11].into()],
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap() == 1
    }

    /// How long replica B's lease still runs, by the database's clock: B was granted it
    /// before it was stopped, and a path must not answer before it ends. (B renews every third
    /// of a lease, later under load, so this is less than a whole lease.)
    async fn b_lease_left(&self) -> Duration {
        let backend = self.conn.get_database_backend();
        let now_ms = agentvista_store::testing::now_ms_sql(backend);
        let row = self
            .conn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT MAX(lease_until) - {now_ms} AS left_ms FROM replicas WHERE label LIKE $1"
                ),
                [format!("% (pid {})", self.b.pid()).into()],
            ))
            .await
            .unwrap()
            .unwrap();
        let left: i64 = row.try_get("", "left_ms").unwrap();
        let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
        assert!(
            left <= LEASE_LENGTH,
            "B's lease runs {left:?}, past auth.lease_ms"
        );
        left
    }

    /// Ends `held` by `path`; `frozen`: replica B is stopped meanwhile. Returns once the call
    /// that ends it has returned, with when the key ends if that is later (a roll's grace),
    /// and how long that call took.
    async fn end(
        &self,
        path: Path,
        held: &Held,
        frozen: bool,
    ) -> (Option<DateTime<Utc>>, Duration) {
        let mut started = Instant::now();
        let mut took = None;
        match path {
            Path::DeleteBySession => {
                let url = self.a.url(&format!("{KEYS}{}/", held.id));
                let status = self
                    .http
                    .delete(url)
                    .header("Cookie", &self.session.cookie)
                    .header("X-CSRF-Token", &self.session.csrf)
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, StatusCode::NO_CONTENT);
            }
            Path::DeleteByAdminKey => {
                assert_eq!(self.delete(held, &self.admin).await, StatusCode::NO_CONTENT);
            }
            Path::DeleteByItself => {
                assert_eq!(self.delete(held, &held.key).await, StatusCode::NO_CONTENT);
            }
            Path::Cli => {
                let args = [
                    "keys",
                    "revoke",
                    "--email",
                    EMAIL,
                    "--prefix",
                    &held.key[..11],
                ];
                let out = self.db.cli(&args, &[LEASE], None);
                assert!(out.status.success(), "{out:?}");
            }
            Path::LeakReportOfALiveKey => {
                assert_eq!(self.report(&held.key).await, StatusCode::ACCEPTED);
            }
            Path::LeakReportOfARevokedKey => {
                // The owner's revocation committed (on A, whose answer may still be waiting),
                // and the report comes after it: the report must wait as well.
                let deleting = {
                    let (http, url, admin) = (
                        self.http.clone(),
                        self.a.url(&format!("{KEYS}{}/", held.id)),
                        self.admin.clone(),
                    );
                    tokio::spawn(async move { bearer(http.delete(url), &admin).send().await })
                };
                if frozen {
                    while !self.revoked_in_the_database(&held.key).await {
                        tokio::task::yield_now().await;
                    }
                }
                started = Instant::now();
                assert_eq!(self.report(&held.key).await, StatusCode::ACCEPTED);
                took = Some(started.elapsed());
                if !frozen {
                    // With both replicas up the report races the DELETE: let it finish.
                    let status = deleting.await.unwrap().unwrap().status();
                    assert_eq!(status, StatusCode::NO_CONTENT);
                } else {
                    // Left to answer after the thaw; the key is probed first.
                    drop(deleting);
                }
            }
            Path::RollWithoutGrace => {
                self.roll(held, 0).await;
            }
            Path::RollWithGraceAtItsEnd => {
                let ends = self.roll(held, 1).await;
                return (Some(ends), started.elapsed());
            }
            Path::BodyStillArriving => {
                // The headers (and half the body) reach B while the key works; the key is
                // revoked on A; then the rest of the body arrives.
                let target = if frozen { &self.a } else { &self.b };
                let body = json!({"batch": [{"type": "span", "trace_id": "in-flight",
                    "timestamp": Utc::now()}]})
                .to_string();
                let address = target.base().trim_start_matches("http://").to_owned();
                let mut stream = TcpStream::connect(&address).await.unwrap();
                let head = format!(
                    "POST {BATCH} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    held.key,
                    body.len()
                );
                let (first, rest) = body.as_bytes().split_at(body.len() / 2);
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.write_all(first).await.unwrap();
                stream.flush().await.unwrap();
                started = Instant::now();
                assert_eq!(self.delete(held, &self.admin).await, StatusCode::NO_CONTENT);
                took = Some(started.elapsed());
                stream.write_all(rest).await.unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).await.unwrap();
                assert!(
                    answer.starts_with("HTTP/1.1 401"),
                    "a batch whose key was revoked while it arrived was answered: {answer}"
                );
            }
        }
        (None, took.unwrap_or_else(|| started.elapsed()))
    }

    /// `n` trials of `path`. With both replicas up, `n` keys held by both are ended one after
    /// the other, then each is probed on both. Frozen, one key at a time: B is stopped, the
    /// key ended, B woken and the key probed — so that B is frozen for no longer than the
    /// path makes it (a lease, where the path waits for B), and a path that answered too soon
    /// finds B still holding its lease and the key.
    async fn trials(&self, path: Path, n: usize, frozen: bool) {
        if frozen {
            for _ in 0..n {
                self.trial(path, vec![self.key().await], true).await;
            }
        } else {
            let mut held = Vec::with_capacity(n);
            for _ in 0..n {
                held.push(self.key().await);
            }
            self.trial(path, held, false).await;
        }
    }

    async fn trial(&self, path: Path, held: Vec<Held>, frozen: bool) {
        if frozen {
            self.b.signal("STOP");
        }
        let mut until = None;
        for held in &held {
            let lease_left = if frozen {
                self.b_lease_left().await
            } else {
                Duration::ZERO
            };
            let (ends, took) = self.end(path, held, frozen).await;
            until = until.max(ends);
            // B, stopped, cannot acknowledge: the call may answer only once B's lease, granted
            // before the change committed, has run out (less the clocks' whole milliseconds).
            assert!(
                took + Duration::from_millis(2) >= lease_left,
                "{path:?}: answered after {took:?} while a replica that holds the key was \
                 frozen, {lease_left:?} before its lease ran out"
            );
        }
        if let Some(until) = until {
            // What is tested is the passing of time: wait until the graces are over.
            let left = (until - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(left + Duration::from_millis(20)).await;
        }
        if frozen {
            self.b.signal("CONT");
        }
        for held in &held {
            for server in [&self.a, &self.b] {
                let status = ping(&self.http, server, &held.key).await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{path:?} (frozen: {frozen}): {} accepted the key after the call returned",
                    server.base()
                );
            }
        }
    }
}

pub(crate) async fn no_path_that_ends_a_key_leaves_it_working_on_any_replica(db: Db) {
    db.create_user(EMAIL);
    let admin = db.create_key(EMAIL, "admin", "admin");
    let a = Server::start_with(&db, &[LEASE]).await;
    let b = Server::start_with(&db, &[LEASE]).await;
    // A new connection per request: a kept-alive one to a replica that was frozen may be
    // closed by it on waking, mid-request.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let session = a.login(&http, EMAIL, PASSWORD).await;
    let conn = Database::connect(&db.url).await.unwrap();
    let world = World {
        db,
        conn,
        a,
        b,
        http,
        admin,
        session,
    };
    // Frozen trials on PostgreSQL only: on SQLite a replica stopped inside a write of its own
    // (a lease renewal takes a few milliseconds with its fsync) holds the file's one write
    // lock, and every writer then waits and answers 503, barrier or not. Several replicas on
    // one database are a PostgreSQL setup; on SQLite the trials above still run.
    let frozen_trials = if world.db.postgres_names().is_some() {
        FROZEN_TRIALS
    } else {
        0
    };
    for path in PATHS {
        world.trials(path, TRIALS, false).await;
        world.trials(path, frozen_trials, true).await;
    }
    // Nothing of the in-flight batches was stored.
    let usage = world
        .http
        .get(world.a.url("/api/v1/me/usage/"))
        .header("Cookie", &world.session.cookie)
        .send()
        .await
        .unwrap();
    let usage: Value = usage.json().await.unwrap();
    assert_eq!(usage["events_used"], 0, "{usage}");
    let World { a, b, admin, .. } = world;
    a.stop_and_check_logs(&[&admin]).await;
    b.stop_and_check_logs(&[&admin]).await;
}
