//! Starting the real binary, running its CLI, and the databases they share.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use agentvista_store::testing::{Engine, ScratchDb};
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};

/// The password of every user the tests create.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// How long the binary may take to start listening (a cold debug build migrates first).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The longest any single request of the suite may take: a request that hangs fails its test
/// instead of hanging the run.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Every server of the suite logs at this level, so that the secret scan covers debug output.
const LOG_LEVEL: &str = "debug";

/// An HTTP client whose every request times out after [`REQUEST_TIMEOUT`].
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// The secrets a test has seen — keys, passwords, session cookies, CSRF tokens. Every server
/// started on the test's database scans its whole output for each of them when it stops, is
/// killed, or is dropped.
#[derive(Clone, Default)]
pub(crate) struct Secrets(Arc<Mutex<Vec<String>>>);

impl Secrets {
    /// Registers a secret. For an API key, the part after the prefix is what must never
    /// appear (the prefix itself may be logged).
    pub(crate) fn add(&self, secret: &str) {
        let secret = if agentvista_keys::ApiKey::parse(secret).is_ok() {
            &secret[12..]
        } else {
            secret
        };
        // Shorter strings would match log text by chance.
        assert!(secret.len() >= 8, "too short to scan for: {secret:?}");
        let mut all = self.0.lock().unwrap();
        if !all.iter().any(|s| s == secret) {
            all.push(secret.to_owned());
        }
    }

    /// Registers the secrets a response hands out: the `av_session` cookie's value, and the
    /// `csrf_token` and `key` fields of a JSON body.
    pub(crate) fn observe(&self, headers: &reqwest::header::HeaderMap, body: &[u8]) {
        for cookie in headers.get_all(reqwest::header::SET_COOKIE) {
            let cookie = String::from_utf8_lossy(cookie.as_bytes());
            if let Some(value) = cookie
                .split(';')
                .next()
                .and_then(|pair| pair.trim().strip_prefix("av_session="))
                .filter(|v| !v.is_empty())
            {
                self.add(value);
            }
        }
        if let Ok(json) = serde_json::from_slice::<Value>(body) {
            for field in ["csrf_token", "key"] {
                if let Some(secret) = json[field].as_str() {
                    self.add(secret);
                }
            }
        }
    }

    /// Panics, showing the log, if any registered secret is in `log`.
    fn check(&self, log: &str) {
        // Found under the lock, reported after it: a poisoned registry would hide later leaks.
        let leaked = self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|secret| log.contains(secret.as_str()))
            .cloned();
        if let Some(secret) = leaked {
            // The lines that hold it, not the whole debug log.
            let lines: Vec<&str> = log.lines().filter(|l| l.contains(&secret)).collect();
            panic!(
                "a secret ({}…) reached the server log in {} lines, e.g.:\n{}",
                &secret[..4],
                lines.len(),
                lines[..lines.len().min(5)].join("\n")
            );
        }
    }
}

/// A database of the test's own (a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database dropped afterwards), migrated by the real CLI, with the secrets the
/// servers on it must never log.
pub(crate) struct Db {
    pub(crate) url: String,
    scratch: ScratchDb,
    /// What the servers on this database must never log.
    pub(crate) secrets: Secrets,
}

impl Db {
    pub(crate) fn sqlite() -> Db {
        Db::of(ScratchDb::sqlite())
    }

    pub(crate) async fn postgres() -> Option<Db> {
        Db::new(Engine::Postgres).await
    }

    /// A database on `engine`; `None` where PostgreSQL is not configured.
    pub(crate) async fn new(engine: Engine) -> Option<Db> {
        ScratchDb::new(engine, "end-to-end suite").await.map(Db::of)
    }

    fn of(scratch: ScratchDb) -> Db {
        Db {
            url: scratch.url().to_owned(),
            scratch,
            secrets: Secrets::default(),
        }
        .migrated()
    }

    /// The temporary directory that goes with the database: the CLI and servers run there.
    pub(crate) fn dir(&self) -> &Path {
        self.scratch.dir()
    }

    /// The database created and brought up to date by `agentvista migrate`, as an operator
    /// does before anything else: only `serve` and `migrate` create a database.
    fn migrated(self) -> Db {
        self.cli_ok(&["migrate"], None);
        self
    }

    /// The admin URL and database name, on PostgreSQL.
    pub(crate) fn postgres_names(&self) -> Option<(&str, &str)> {
        self.scratch.postgres_names()
    }

    /// The binary, in the test's directory, on the test's database, with no stray settings.
    /// `AGENTVISTA_E2E_BIN` names another build of it (a benchmark runs the release binary).
    pub(crate) fn command(&self) -> Command {
        let bin = std::env::var_os("AGENTVISTA_E2E_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_agentvista").into());
        let mut command = Command::new(bin);
        command
            .current_dir(self.dir())
            .env("AGENTVISTA__DATABASE__URL", &self.url)
            .env_remove("AGENTVISTA_PASSWORD")
            .env_remove("RUST_LOG");
        command
    }

    /// Runs a CLI command, with `stdin` (if any) on standard input.
    pub(crate) fn cli(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        if let Some(secret) = stdin.filter(|s| s.len() >= 8) {
            self.secrets.add(secret);
        }
        let mut command = self.command();
        command.args(args).envs(env.iter().copied());
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            writeln!(input, "{text}").unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs a CLI command that must succeed; returns its standard output.
    pub(crate) fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.cli(args, &[], stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "agentvista {args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates a user (in a new account named after the e-mail) with the CLI, the password on
    /// standard input.
    pub(crate) fn create_user(&self, email: &str) {
        self.secrets.add(PASSWORD);
        self.cli_ok(&["users", "create", "--email", email], Some(PASSWORD));
    }

    /// Creates a key with the CLI; returns the full key it printed.
    pub(crate) fn create_key(&self, email: &str, name: &str, scopes: &str) -> String {
        let args = [
            "keys", "create", "--email", email, "--name", name, "--scopes", scopes,
        ];
        let key = self.cli_ok(&args, None).trim().to_owned();
        assert!(
            agentvista_keys::ApiKey::parse(&key).is_ok(),
            "not a key: {key}"
        );
        self.secrets.add(&key);
        key
    }

    /// Revokes a key with the CLI, by the prefix of the full `key`.
    pub(crate) fn revoke_key(&self, email: &str, key: &str) {
        let args = ["keys", "revoke", "--email", email, "--prefix", &key[..11]];
        self.cli_ok(&args, None);
    }

    /// Sets a key's expiry directly in the database, as the passing of time would.
    /// Back-dates the receipt of every event of `trace_id`, as if they had arrived at `at`
    /// (the server's clock cannot be moved; its data can).
    pub(crate) async fn set_received_at(&self, trace_id: &str, at: DateTime<Utc>) {
        let conn = Database::connect(&self.url).await.unwrap();
        let backend = conn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => "UPDATE events SET received_at = $1 WHERE trace_id = $2",
            _ => "UPDATE events SET received_at = ? WHERE trace_id = ?",
        };
        let values = [at.trunc_subsecs(6).into(), trace_id.into()];
        let done = conn
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .unwrap();
        assert!(done.rows_affected() > 0);
        conn.close().await.unwrap();
    }

    pub(crate) async fn set_expiry(&self, prefix: &str, at: DateTime<Utc>) {
        let conn = Database::connect(&self.url).await.unwrap();
        let backend = conn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => "UPDATE api_keys SET expires_at = $1 WHERE prefix = $2",
            _ => "UPDATE api_keys SET expires_at = ? WHERE prefix = ?",
        };
        let values = [at.trunc_subsecs(6).into(), prefix.into()];
        let done = conn
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        conn.close().await.unwrap();
    }
}

/// Where Debian installs libfaketime.
const FAKETIME_LIBRARIES: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
];

/// A running server, its captured output, and the address it reported.
pub(crate) struct Server {
    child: Option<Child>,
    base: String,
    log: Arc<Mutex<String>>,
    /// Notified whenever a line is added to `log`.
    grown: Arc<Condvar>,
    readers: Vec<JoinHandle<()>>,
    secrets: Secrets,
}

/// A logged-in dashboard session.
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

impl Server {
    /// Starts `agentvista serve` on port 0 and waits for the line that names the real port.
    pub(crate) async fn start(db: &Db) -> Server {
        Server::start_with(db, &[]).await
    }

    /// [`Server::start`] with extra environment (configuration overrides).
    pub(crate) async fn start_with(db: &Db, env: &[(&str, &str)]) -> Server {
        Server::spawn(db.command(), db, env).await
    }

    /// [`Server::start_with`] under an address-space limit (`ulimit -v`), so that a runaway
    /// allocation aborts the server instead of pushing the machine into swap.
    pub(crate) async fn start_limited(
        db: &Db,
        env: &[(&str, &str)],
        address_space_bytes: u64,
    ) -> Server {
        let plain = db.command();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"ulimit -v "$0" && exec "$@""#)
            .arg((address_space_bytes / 1024).to_string())
            .arg(plain.get_program())
            .current_dir(db.dir());
        for (name, value) in plain.get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        Server::spawn(command, db, env).await
    }

    /// [`Server::start_with`] with its wall clock `behind` seconds behind the real one
    /// (libfaketime, preloaded; the boot and monotonic clocks are left alone). `None`, saying
    /// why, where libfaketime is not installed.
    pub(crate) async fn start_behind(db: &Db, env: &[(&str, &str)], behind: u32) -> Option<Server> {
        let library = FAKETIME_LIBRARIES
            .iter()
            .find(|path| std::path::Path::new(path).exists());
        let Some(library) = library else {
            println!("skipped: libfaketime is not installed (apt-get install faketime)");
            return None;
        };
        let mut command = db.command();
        command
            .env("LD_PRELOAD", library)
            .env("FAKETIME", format!("-{behind}"))
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("FAKETIME_NO_CACHE", "1");
        Some(Server::spawn(command, db, env).await)
    }

    /// The process's peak and current resident memory in bytes (`VmHWM`, `VmRSS`).
    pub(crate) fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap();
            let kib: u64 = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap();
            kib * 1024
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    async fn spawn(mut command: Command, db: &Db, env: &[(&str, &str)]) -> Server {
        command
            .arg("serve")
            .env("AGENTVISTA__SERVER__BIND", "127.0.0.1:0")
            .env("AGENTVISTA__SERVER__INSECURE_COOKIES", "true")
            .env("RUST_LOG", LOG_LEVEL)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let grown = Arc::new(Condvar::new());
        let (found, listening) = mpsc::channel();
        let readers = [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ]
        .into_iter()
        .map(|stream| {
            let log = Arc::clone(&log);
            let grown = Arc::clone(&grown);
            let found = found.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find("listening on http://") {
                        // The address ends the text line; a JSON line closes a string after it.
                        let rest = &line[at + "listening on ".len()..];
                        let end = rest.find(['"', ' ']).unwrap_or(rest.len());
                        let _ = found.send(rest[..end].trim().to_owned());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                    grown.notify_all();
                }
            })
        })
        .collect();
        // Only the readers may send now: a server that exits before listening ends the wait.
        drop(found);
        let base = tokio::task::spawn_blocking(move || listening.recv_timeout(START_DEADLINE))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("the server did not start: {}", log.lock().unwrap()));
        Server {
            child: Some(child),
            base,
            log,
            grown,
            readers,
            secrets: db.secrets.clone(),
        }
    }

    /// The server's process id (to freeze it with SIGSTOP, say).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the server with kill(1).
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// Registers a secret the test saw, for the scan of this server's log.
    pub(crate) fn secret(&self, secret: &str) {
        self.secrets.add(secret);
    }

    /// The registry this server's log is scanned against.
    pub(crate) fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` with a Bearer key, as JSON.
    pub(crate) async fn get_json(&self, http: &reqwest::Client, path: &str, key: &str) -> Value {
        bearer(http.get(self.url(path)), key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the server's output holds `needle`, or `within` has passed; whether it
    /// does. (Blocks the test's thread: nothing of the test runs meanwhile.)
    pub(crate) fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let log = self.log.lock().unwrap();
        let (log, _) = self
            .grown
            .wait_timeout_while(log, within, |log| !log.contains(needle))
            .unwrap();
        log.contains(needle)
    }

    /// Everything the server has written so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub(crate) async fn login(
        &self,
        http: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> Session {
        let res = http
            .post(self.url("/api/v1/auth/login/"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
            "{set_cookie}"
        );
        let headers = res.headers().clone();
        let body = res.bytes().await.unwrap();
        self.secrets.observe(&headers, &body);
        let body: Value = serde_json::from_slice(&body).unwrap();
        Session {
            cookie: set_cookie.split(';').next().unwrap().to_owned(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// SIGTERM, then wait for the process and its output to end; scans the log for secrets.
    pub(crate) async fn stop(self) -> ExitStatus {
        self.end(false).await
    }

    /// SIGKILL (no chance to flush or finish anything), then wait for the process and its
    /// output to end; scans the log for secrets.
    pub(crate) async fn kill(self) -> ExitStatus {
        self.end(true).await
    }

    async fn end(mut self, kill: bool) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        if kill {
            child.kill().unwrap();
        } else {
            let pid = child.id().to_string();
            let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            assert!(sent.success());
        }
        let waited = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || {
                let status = child.wait();
                (child, status)
            }),
        )
        .await
        .expect("the server did not stop within 30 s of SIGTERM")
        .unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let log = self.log.lock().unwrap();
        self.secrets.check(&log);
        assert!(!log.contains("panicked at"), "the server panicked:\n{log}");
        waited.1.unwrap()
    }

    /// Stops the server and checks that no secret — these keys and every one registered —
    /// reached its output. Returns the whole output: read once the process has ended, it holds
    /// every line, which [`Server::log`] of a running server may not yet (a request's line is
    /// written as its answer finishes, which can be after the client has it).
    pub(crate) async fn stop_and_check_logs(self, keys: &[&str]) -> String {
        for key in keys {
            self.secrets.add(key);
        }
        let log = Arc::clone(&self.log);
        self.stop().await;
        let log = log.lock().unwrap().clone();
        assert!(log.contains("request"), "no request was logged:\n{log}");
        // The scan means something only if debug output was there to scan.
        assert!(
            log.contains("DEBUG"),
            "the server did not log at debug level"
        );
        log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            for reader in self.readers.drain(..) {
                let _ = reader.join();
            }
            // Not over a test that already failed: its own message matters more.
            if !std::thread::panicking() {
                self.secrets.check(&self.log.lock().unwrap());
            }
        }
    }
}

/// Adds `Authorization: Bearer <key>`.
pub(crate) fn bearer(req: reqwest::RequestBuilder, key: &str) -> reqwest::RequestBuilder {
    req.header("Authorization", format!("Bearer {key}"))
}

#[cfg(test)]
mod tests {
    use super::Secrets;

    #[test]
    #[should_panic(expected = "a secret")]
    fn the_scan_finds_a_key_secret_without_its_prefix() {
        let key = agentvista_keys::ApiKey::generate().unwrap();
        let secrets = Secrets::default();
        secrets.add(key.expose_secret());
        let log = format!("DEBUG token={}", &key.expose_secret()[12..]);
        secrets.check(&log);
    }

    #[test]
    fn the_scan_learns_cookies_and_tokens_from_responses() {
        let secrets = Secrets::default();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "set-cookie",
            "av_session=0123456789abcdef; HttpOnly".parse().unwrap(),
        );
        secrets.observe(&headers, br#"{"csrf_token": "fedcba9876543210"}"#);
        secrets.check("av_session prefix only, the prefix av_0123 is fine");
        for leaked in ["0123456789abcdef", "fedcba9876543210"] {
            let caught = std::panic::catch_unwind(|| secrets.check(leaked));
            assert!(caught.is_err(), "{leaked} not caught");
        }
    }
}
