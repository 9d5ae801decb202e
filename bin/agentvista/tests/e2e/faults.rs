//! Faults from outside: password guessing, `kill -9` under ingestion load, and a PostgreSQL
//! that goes away (connections refused and cut, through a proxy the test controls; backends
//! terminated by the server) and comes back.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::campaign::trace_events;
use crate::harness::{self, Db, PASSWORD, Server, bearer};

const EMAIL: &str = "ada@example.com";

/// Wrong passwords for one account after which its logins must be refused with 429. The
/// contract leaves the exact number to the server; this is the most the test tolerates.
const MAX_WRONG_LOGINS: usize = 20;

/// How long a recovery may take once the database is back.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

fn retry_after(res: &reqwest::Response) -> Option<u64> {
    res.headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

pub(crate) async fn wrong_passwords_throttle_logins_for_the_account(db: Db) {
    db.create_user(EMAIL);
    let server = Server::start(&db).await;
    let http = harness::client();
    let login = |password: String| {
        http.post(server.url("/api/v1/auth/login/"))
            .json(&json!({"email": EMAIL, "password": password}))
            .send()
    };
    let mut throttled_at = None;
    for attempt in 1..=MAX_WRONG_LOGINS + 1 {
        let password = format!("wrong password number {attempt}");
        server.secret(&password);
        let res = login(password).await.unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"], "invalid_credentials");
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after(&res);
                assert!(wait.is_some_and(|s| s >= 1), "Retry-After: {wait:?}");
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"], "too_many_attempts");
                throttled_at = Some(attempt);
                break;
            }
            other => panic!("attempt {attempt}: unexpected {other}"),
        }
    }
    let attempt = throttled_at.unwrap_or_else(|| {
        panic!("{MAX_WRONG_LOGINS} wrong passwords in a row and logins are still not throttled")
    });
    assert!(attempt > 1, "the very first wrong password was throttled");

    // Within the Retry-After, even the right password is refused.
    let res = login(PASSWORD.to_owned()).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the right password after {} wrong ones",
        attempt - 1
    );
    assert!(retry_after(&res).is_some_and(|s| s >= 1));
    assert!(res.headers().get("set-cookie").is_none());
    server.stop_and_check_logs(&[]).await;
}

/// Batches acknowledged by concurrent clients, for checks after a fault.
#[derive(Default)]
struct Acknowledged {
    ids: Mutex<Vec<String>>,
    /// Statuses other than 200 and the allowed fault status, with what they said.
    unexpected: Mutex<Vec<String>>,
}

/// `clients` tasks that send batches of 1 to 4 events with unique ids into trace
/// `<prefix>-<client>` until `stop` is set or the server stops answering. Answers other than
/// 200 must be `allowed`; each acknowledged batch bumps `progress`.
fn load(
    clients: u64,
    prefix: &'static str,
    url: String,
    key: &str,
    allowed: Option<StatusCode>,
    stop: Arc<AtomicBool>,
) -> (
    Arc<Acknowledged>,
    watch::Receiver<usize>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let acknowledged = Arc::new(Acknowledged::default());
    let (progress, watch) = watch::channel(0usize);
    let progress = Arc::new(progress);
    let http = harness::client();
    let tasks = (0..clients)
        .map(|client| {
            let (http, url, key) = (http.clone(), url.clone(), key.to_owned());
            let (acknowledged, progress, stop) =
                (Arc::clone(&acknowledged), Arc::clone(&progress), Arc::clone(&stop));
            tokio::spawn(async move {
                for seq in 0u64.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let ids: Vec<String> = (0..=seq % 4)
                        .map(|i| format!("{prefix}-{client}-{seq}-{i}"))
                        .collect();
                    let batch: Vec<Value> = ids
                        .iter()
                        .map(|id| json!({"id": id, "type": "event", "trace_id": format!("{prefix}-{client}"), "timestamp": chrono::Utc::now()}))
                        .collect();
                    let Ok(res) = bearer(http.post(&url), &key)
                        .json(&json!({"batch": batch}))
                        .send()
                        .await
                    else {
                        // The server is gone: this batch was never acknowledged.
                        return;
                    };
                    let status = res.status();
                    let body = res.text().await.unwrap_or_default();
                    if status == StatusCode::OK {
                        let body: Value = serde_json::from_str(&body).unwrap();
                        assert_eq!(body["accepted"], ids.len(), "{body}");
                        acknowledged.ids.lock().unwrap().extend(ids);
                        progress.send_modify(|n| *n += 1);
                    } else if Some(status) == allowed {
                        let body: Value = serde_json::from_str(&body).unwrap();
                        if body["error"] != "unavailable" {
                            acknowledged
                                .unexpected
                                .lock()
                                .unwrap()
                                .push(format!("{status}: {body}"));
                        }
                    } else {
                        acknowledged
                            .unexpected
                            .lock()
                            .unwrap()
                            .push(format!("{status}: {body}"));
                    }
                }
            })
        })
        .collect();
    (acknowledged, watch, tasks)
}

/// Waits until `watch` reaches `at_least`, failing the test after a minute.
async fn reach(watch: &mut watch::Receiver<usize>, at_least: usize) {
    tokio::time::timeout(Duration::from_secs(60), watch.wait_for(|n| *n >= at_least))
        .await
        .unwrap_or_else(|_| panic!("fewer than {at_least} batches acknowledged in a minute"))
        .unwrap();
}

/// Every acknowledged id is stored, and the count equals the events stored.
async fn check_stored(
    server: &Server,
    http: &reqwest::Client,
    key: &str,
    traces: impl Iterator<Item = String>,
    acknowledged: &Acknowledged,
) -> usize {
    let mut stored = HashSet::new();
    for trace in traces {
        // A client may have had no batch acknowledged before the kill (seen twice on
        // PostgreSQL): its trace then has nothing stored, which is a 404, and the check of the
        // acknowledged ids below is what decides whether anything was lost.
        let res = bearer(
            http.get(server.url(&format!("/api/v1/traces/{trace}/"))),
            key,
        )
        .send()
        .await
        .unwrap();
        if res.status() == StatusCode::NOT_FOUND {
            continue;
        }
        for event in trace_events(server, http, key, &trace, None).await {
            assert!(
                stored.insert(event["id"].as_str().unwrap().to_owned()),
                "{event} stored twice"
            );
        }
    }
    let acknowledged = acknowledged.ids.lock().unwrap().clone();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events were lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    let usage = server.get_json(http, "/api/v1/me/usage/", key).await;
    assert_eq!(
        usage["events_used"],
        stored.len(),
        "the count equals the events stored ({} acknowledged)",
        acknowledged.len()
    );
    stored.len()
}

pub(crate) async fn acknowledged_events_survive_kill_9_under_load(db: Db) {
    const CLIENTS: u64 = 4;
    db.create_user(EMAIL);
    let key = db.create_key(EMAIL, "sdk", "read,write");
    let server = Server::start(&db).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (acknowledged, mut progress, clients) = load(
        CLIENTS,
        "kill",
        server.url("/api/v1/traces/batch/"),
        &key,
        None,
        Arc::clone(&stop),
    );
    reach(&mut progress, 40).await;
    // Mid-load: requests are in flight on every client when the process dies.
    let status = server.kill().await;
    assert!(!status.success());
    for client in clients {
        client.await.unwrap();
    }
    let unexpected = acknowledged.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "{unexpected:?}");

    let server = Server::start(&db).await;
    let http = harness::client();
    let stored = check_stored(
        &server,
        &http,
        &key,
        (0..CLIENTS).map(|c| format!("kill-{c}")),
        &acknowledged,
    )
    .await;
    assert!(stored >= acknowledged.ids.lock().unwrap().len());
    server.stop_and_check_logs(&[&key]).await;
}

/// A TCP forwarder to PostgreSQL that the test can take down (refusing new connections and
/// cutting every open one) and bring back, on the same port.
struct Proxy {
    port: u16,
    target: String,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            target: target.to_owned(),
            up: Arc::new(AtomicBool::new(true)),
            open: Arc::new(Mutex::new(Vec::new())),
            acceptor: None,
        };
        proxy.accept(listener);
        proxy
    }

    fn accept(&mut self, listener: TcpListener) {
        let (up, open, target) = (
            Arc::clone(&self.up),
            Arc::clone(&self.open),
            self.target.clone(),
        );
        self.acceptor = Some(std::thread::spawn(move || {
            for client in listener.incoming() {
                // `down` wakes this loop with a connection of its own; the listener then
                // closes, so that new connections are refused.
                if !up.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut open = open.lock().unwrap();
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
                open.extend([client, server]);
            }
        }));
    }

    fn down(&mut self) {
        self.up.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().unwrap();
        }
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.up.store(true, Ordering::SeqCst);
        self.accept(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.down();
        }
    }
}

/// What one probe of the server answered: the status and, for errors, the error code (the
/// OTLP `code` as a string for the OTLP probe).
async fn probe(
    http: &reqwest::Client,
    server: &Server,
    key: &str,
    what: &str,
    n: u64,
) -> (StatusCode, String, Option<u64>) {
    let req = match what {
        "usage" => bearer(http.get(server.url("/api/v1/me/usage/")), key),
        "ping" => bearer(http.get(server.url("/api/v1/me/api-keys/ping/")), key),
        "readyz" => http.get(server.url("/readyz")),
        "batch" => bearer(http.post(server.url("/api/v1/traces/batch/")), key).json(&json!({
            "batch": [{"id": format!("outage-{n}"), "type": "event", "trace_id": "outage", "timestamp": chrono::Utc::now()}]
        })),
        "otlp" => bearer(http.post(server.url("/otlp/v1/logs")), key)
            .header("content-type", "application/json")
            .body(json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]}).to_string()),
        other => unreachable!("{other}"),
    };
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    let status = res.status();
    let wait = retry_after(&res);
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let code = match (&body["error"], &body["code"]) {
        (Value::String(error), _) => error.clone(),
        (_, Value::Number(code)) => code.to_string(),
        _ => String::new(),
    };
    (status, code, wait)
}

const PROBES: [&str; 5] = ["usage", "ping", "readyz", "batch", "otlp"];

/// Events a successful probe stored.
fn probe_events(what: &str) -> u64 {
    u64::from(matches!(what, "batch" | "otlp"))
}

pub(crate) async fn a_database_outage_is_503_then_recovers_without_restart(db: Db) {
    db.create_user(EMAIL);
    let key = db.create_key(EMAIL, "sdk", "read,write");
    let admin = db.create_key(EMAIL, "admin", "admin");
    // Held in memory by the proxied replica, then revoked while it cannot hear of it.
    let doomed = db.create_key(EMAIL, "doomed", "read");
    let (head, name) = db.url.rsplit_once('/').unwrap();
    let target = head.rsplit_once('@').map_or(head, |(_, host)| host);
    let target = target.trim_start_matches("postgres://").to_owned();
    let mut proxy = Proxy::start(&target);
    let proxied = format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port);
    let lease = ("AGENTVISTA__AUTH__LEASE_MS", "1000");
    let server = Server::start_with(&db, &[("AGENTVISTA__DATABASE__URL", &proxied), lease]).await;
    // A second replica that keeps its database throughout.
    let direct = Server::start_with(&db, &[lease]).await;
    let http = harness::client();
    for _ in 0..2 {
        let res = bearer(http.get(server.url("/api/v1/me/api-keys/ping/")), &doomed)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let mut counted = 0;
    let mut n = 0;
    for what in PROBES {
        n += 1;
        let (status, code, _) = probe(&http, &server, &key, what, n).await;
        assert_eq!(status, StatusCode::OK, "{what} before the outage: {code}");
        counted += probe_events(what);
    }

    proxy.down();
    // Each probe twice: the first meets a cut connection, the second a refused one. The
    // probes of a round run together, so that a pool timeout is waited for once per round.
    for round in 0..2 {
        n += 10;
        let (http, server, key) = (&http, &server, key.as_str());
        let answers = tokio::join!(
            probe(http, server, key, PROBES[0], n),
            probe(http, server, key, PROBES[1], n + 1),
            probe(http, server, key, PROBES[2], n + 2),
            probe(http, server, key, PROBES[3], n + 3),
            probe(http, server, key, PROBES[4], n + 4),
        );
        let answers = [answers.0, answers.1, answers.2, answers.3, answers.4];
        for (what, (status, code, wait)) in PROBES.into_iter().zip(answers) {
            if what == "ping" && status == StatusCode::OK && round == 0 {
                // A replica vouches for a key it verified moments ago while its lease runs;
                // by the second round (after a pool timeout) the lease has lapsed.
                continue;
            }
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{what} during the outage (round {round}): {code}"
            );
            let expected = if what == "otlp" { "14" } else { "unavailable" };
            assert_eq!(code, expected, "{what} during the outage");
            if what != "readyz" {
                assert!(wait.is_some_and(|s| s >= 1), "{what}: Retry-After {wait:?}");
            }
        }
    }

    // Revoked on the other replica while this one is away: answered within a lease.
    let listed = direct.get_json(&http, "/api/v1/me/api-keys/", &admin).await;
    let id = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["prefix"] == doomed[..11])
        .unwrap()["id"]
        .clone();
    let started = Instant::now();
    let res = bearer(
        http.delete(direct.url(&format!("/api/v1/me/api-keys/{id}/"))),
        &admin,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    proxy.up();
    let deadline = Instant::now() + RECOVERY_DEADLINE;
    // The lease comes back; nothing held before it lapsed is served.
    loop {
        let res = bearer(http.get(server.url("/api/v1/me/api-keys/ping/")), &doomed)
            .send()
            .await
            .unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => break,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    Instant::now() < deadline,
                    "still 503 after the database came back"
                );
            }
            other => panic!("a revoked key held in memory before the outage answered {other}"),
        }
    }
    for what in PROBES {
        loop {
            n += 1;
            let (status, code, _) = probe(&http, &server, &key, what, n).await;
            if status == StatusCode::OK {
                counted += probe_events(what);
                break;
            }
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{what} while recovering: {code}"
            );
            assert!(
                Instant::now() < deadline,
                "{what} still {status} {RECOVERY_DEADLINE:?} after the database came back"
            );
        }
    }
    let usage = server.get_json(&http, "/api/v1/me/usage/", &key).await;
    assert_eq!(
        usage["events_used"], counted,
        "only acknowledged events count"
    );
    server.stop_and_check_logs(&[&key, &admin, &doomed]).await;
    direct.stop_and_check_logs(&[&key, &admin, &doomed]).await;
    drop(proxy);
}

pub(crate) async fn terminated_backends_are_503_or_success_then_recovery(db: Db) {
    const CLIENTS: u64 = 4;
    let (admin_url, name) = db.postgres_names().unwrap();
    let (admin_url, name) = (admin_url.to_owned(), name.to_owned());
    db.create_user(EMAIL);
    let key = db.create_key(EMAIL, "sdk", "read,write");
    let server = Server::start(&db).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (acknowledged, mut progress, clients) = load(
        CLIENTS,
        "terminated",
        server.url("/api/v1/traces/batch/"),
        &key,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        Arc::clone(&stop),
    );
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    for round in 1..=3 {
        reach(&mut progress, 15 * round).await;
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &terminate)
            .await
            .unwrap();
    }
    // Recovery under the same load: more batches are acknowledged after the last cut.
    reach(&mut progress, 60).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    admin.close().await.unwrap();
    let unexpected = acknowledged.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "answers other than 200 and 503 unavailable: {unexpected:?}"
    );
    let http = harness::client();
    check_stored(
        &server,
        &http,
        &key,
        (0..CLIENTS).map(|c| format!("terminated-{c}")),
        &acknowledged,
    )
    .await;
    server.stop_and_check_logs(&[&key]).await;
}

pub(crate) async fn a_body_that_never_arrives_is_cut_at_the_deadline(db: Db) {
    db.create_user(EMAIL);
    let key = db.create_key(EMAIL, "sdk", "write");
    // A short deadline, so that the test does not wait the default 30 s.
    let server = Server::start_with(&db, &[("AGENTVISTA__LIMITS__BODY_TIMEOUT_SECS", "2")]).await;
    let addr = server.base().trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /api/v1/traces/batch/ HTTP/1.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json"
    );
    // 100 bytes declared, 10 sent, and then nothing: the answer must come anyway.
    let answer = tokio::task::spawn_blocking(move || {
        crate::wire::raw_exchange(&addr, &head, 100, b"{\"batch\": ")
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("no answer to a stalled body: {e}"));
    assert_eq!(answer.status, 400, "{answer:?}");
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["error"], "bad_request");
    let usage = server
        .get_json(&harness::client(), "/api/v1/me/usage/", &key)
        .await;
    assert_eq!(
        usage["error"], "insufficient_scope",
        "the key is write-only"
    );
    server.stop_and_check_logs(&[&key]).await;
}
