//! End-to-end: the real `agentvista` binary on a free port with its own database, users and
//! keys made with the real CLI, everything else over real HTTP. Each test runs on SQLite and,
//! when `AGENTVISTA_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, missing_docs)]

mod browser;
mod campaign;
mod cli;
mod clock;
mod docs;
mod faults;
mod first_hour;
mod harness;
mod ingest;
mod memory;
mod replicas;
mod revocations;
mod teams;
mod telemetry;
mod trace_view;
mod wire;

use agentvista_store::on_both;
use agentvista_store::testing::Engine;
use chrono::{TimeDelta, Utc};
use harness::{Db, PASSWORD, Server, bearer};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The runner of `on_both!`: `test` on a migrated database of `engine`.
async fn run(test: impl AsyncFnOnce(Db), engine: Engine) {
    if let Some(db) = Db::new(engine).await {
        test(db).await;
    }
}

on_both!(
    keys_authenticate_and_fail_exactly_as_the_contract_says,
    sessions_create_and_revoke_keys_with_csrf,
    revocation_fails_the_key_on_the_very_next_request,
    keys_and_sessions_survive_a_restart,
    a_stop_right_after_requests_ends_cleanly,
    docs_api_examples_run_as_written,
    the_opentelemetry_sdk_exports_spans_that_are_stored_and_counted,
    the_monthly_limit_holds_under_concurrent_clients,
    a_spend_cap_sets_the_allowance_exactly,
    hostile_and_clumsy_requests_get_the_contracts_answers,
    first_run_setup_takes_only_json,
    wrong_passwords_throttle_logins_for_the_account,
    acknowledged_events_survive_kill_9_under_load,
    a_body_that_never_arrives_is_cut_at_the_deadline,
    an_expiry_reached_while_the_key_is_in_memory_fails_it,
    a_key_revoked_on_one_replica_fails_at_once_on_the_other,
    a_rolled_key_works_through_its_grace_and_not_after,
    events_past_retention_are_gone_after_the_startup_sweep,
    no_path_that_ends_a_key_leaves_it_working_on_any_replica,
    keys_and_users_are_listed_and_a_password_is_reset,
    a_database_behind_on_migrations_asks_for_migrate,
    a_removed_member_is_refused_at_once_on_every_replica,
);

use teams::a_removed_member_is_refused_at_once_on_every_replica;

use cli::{
    a_database_behind_on_migrations_asks_for_migrate,
    keys_and_users_are_listed_and_a_password_is_reset,
};

use revocations::no_path_that_ends_a_key_leaves_it_working_on_any_replica;

use memory::memory_stays_within_its_formula_under_trace_bombs_and_decode_floods;
on_both!(memory_stays_within_its_formula_under_trace_bombs_and_decode_floods);

/// Runs `$test(Db)` as `$test::postgres` only (faults only PostgreSQL has).
macro_rules! on_postgres {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn postgres() {
                let Some(db) = super::Db::postgres().await else { return };
                super::$test(db).await;
            }
        }
    )*};
}

on_postgres!(
    a_database_outage_is_503_then_recovers_without_restart,
    terminated_backends_are_503_or_success_then_recovery,
    a_frozen_replica_delays_a_revocation_by_at_most_a_lease,
    a_replica_whose_clock_is_behind_refuses_expired_keys,
);

use clock::a_replica_whose_clock_is_behind_refuses_expired_keys;

use campaign::{
    first_run_setup_takes_only_json, hostile_and_clumsy_requests_get_the_contracts_answers,
};
use faults::{
    a_body_that_never_arrives_is_cut_at_the_deadline,
    a_database_outage_is_503_then_recovers_without_restart,
    acknowledged_events_survive_kill_9_under_load,
    terminated_backends_are_503_or_success_then_recovery,
    wrong_passwords_throttle_logins_for_the_account,
};

use replicas::{
    a_frozen_replica_delays_a_revocation_by_at_most_a_lease,
    a_key_revoked_on_one_replica_fails_at_once_on_the_other,
    a_rolled_key_works_through_its_grace_and_not_after,
    an_expiry_reached_while_the_key_is_in_memory_fails_it,
};

use ingest::{
    a_spend_cap_sets_the_allowance_exactly, events_past_retention_are_gone_after_the_startup_sweep,
    the_monthly_limit_holds_under_concurrent_clients,
    the_opentelemetry_sdk_exports_spans_that_are_stored_and_counted,
};

const PING: &str = "/api/v1/me/api-keys/ping/";
const KEYS: &str = "/api/v1/me/api-keys/";

async fn keys_authenticate_and_fail_exactly_as_the_contract_says(db: Db) {
    db.create_user("ada@example.com");
    let read = db.create_key("ada@example.com", "reader", "read");
    let write = db.create_key("ada@example.com", "writer", "write");
    let expiring = db.create_key("ada@example.com", "expiring", "read");
    let server = Server::start(&db).await;
    let http = crate::harness::client();

    let ping = |auth: Option<String>| {
        let mut req = http.get(server.url(PING));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        req.send()
    };
    let res = ping(Some(format!("Bearer {read}"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let res = ping(Some(format!("bearer {read}"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "lowercase scheme");

    let res = ping(None).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="agentvista""#
    );
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "missing_api_key"
    );

    // Expire one key behind the server's back, as time would.
    db.set_expiry(&expiring[..11], Utc::now() - TimeDelta::seconds(1))
        .await;
    let mut bad_checksum = read.clone();
    bad_checksum.replace_range(49.., if read.ends_with('x') { "y" } else { "x" });
    let unknown = agentvista_keys::ApiKey::generate()
        .unwrap()
        .expose_secret()
        .to_owned();
    for (what, auth) in [
        ("malformed", "Bearer av_123".to_owned()),
        ("bad checksum", format!("Bearer {bad_checksum}")),
        ("unknown", format!("Bearer {unknown}")),
        ("expired", format!("Bearer {expiring}")),
        ("other scheme", format!("Token {read}")),
    ] {
        let res = ping(Some(auth)).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Bearer realm="agentvista", error="invalid_token""#,
            "{what}"
        );
        assert_eq!(
            res.json::<Value>().await.unwrap()["error"],
            "invalid_api_key",
            "{what}"
        );
    }

    let res = ping(Some(format!("Bearer {write}"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="read""#
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["required_scope"].as_str()),
        (Some("insufficient_scope"), Some("read"))
    );

    let res = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    server
        .stop_and_check_logs(&[&read, &write, &expiring])
        .await;
}

async fn sessions_create_and_revoke_keys_with_csrf(db: Db) {
    db.cli_ok(
        &[
            "users",
            "create",
            "--email",
            "ada@example.com",
            "--account",
            "acme",
        ],
        Some(PASSWORD),
    );
    db.cli_ok(
        &[
            "users",
            "create",
            "--email",
            "bob@example.com",
            "--account",
            "globex",
        ],
        Some(PASSWORD),
    );
    let bobs: Value = serde_json::from_str(&db.cli_ok(
        &[
            "keys",
            "create",
            "--email",
            "bob@example.com",
            "--name",
            "bob",
            "--scopes",
            "read",
            "--json",
        ],
        None,
    ))
    .unwrap();
    let server = Server::start(&db).await;
    let http = crate::harness::client();
    let session = server.login(&http, "ada@example.com", PASSWORD).await;

    let create = |csrf: Option<&str>| {
        let mut req = http
            .post(server.url(KEYS))
            .header("Cookie", &session.cookie)
            .json(&json!({"name": "sdk", "scopes": ["write"]}));
        if let Some(csrf) = csrf {
            req = req.header("X-CSRF-Token", csrf);
        }
        req.send()
    };
    for csrf in [None, Some("not-the-token")] {
        let res = create(csrf).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "csrf_failed");
    }
    let res = create(Some(&session.csrf)).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let full = created["key"].as_str().unwrap().to_owned();

    // The full key is shown once: not in the list, not anywhere afterwards.
    let listed: Value = http
        .get(server.url(KEYS))
        .header("Cookie", &session.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["prefix"], full[..11]);
    assert!(!listed.to_string().contains(&full[12..]));

    // Bob's key id, seen from Ada's session: 404, not 403.
    let res = http
        .delete(server.url(&format!("{KEYS}{}/", bobs["id"])))
        .header("Cookie", &session.cookie)
        .header("X-CSRF-Token", &session.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "not_found");

    let res = http
        .post(server.url("/api/v1/auth/logout/"))
        .header("Cookie", &session.cookie)
        .header("X-CSRF-Token", &session.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = http
        .get(server.url(KEYS))
        .header("Cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_session"
    );
    server
        .stop_and_check_logs(&[&full, bobs["key"].as_str().unwrap()])
        .await;
}

async fn revocation_fails_the_key_on_the_very_next_request(db: Db) {
    db.create_user("ada@example.com");
    let admin = db.create_key("ada@example.com", "admin", "admin");
    let victim = db.create_key("ada@example.com", "victim", "read");
    let selfish = db.create_key("ada@example.com", "selfish", "read");
    let by_cli = db.create_key("ada@example.com", "cli", "read");
    let server = Server::start(&db).await;
    let http = crate::harness::client();
    let ping = |key: &str| bearer(http.get(server.url(PING)), key).send();
    let id_of = |key: &str| {
        let prefix = key[..11].to_owned();
        let (server, http, admin) = (&server, &http, &admin);
        async move {
            let listed = server.get_json(http, KEYS, admin).await;
            listed["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["prefix"] == prefix.as_str())
                .unwrap()["id"]
                .clone()
        }
    };

    assert_eq!(ping(&victim).await.unwrap().status(), StatusCode::OK);
    let url = server.url(&format!("{KEYS}{}/", id_of(&victim).await));
    for _ in 0..2 {
        let res = bearer(http.delete(&url), &admin).send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::NO_CONTENT,
            "revoking twice is 204 too"
        );
    }
    assert_eq!(
        ping(&victim).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let own = server.url(&format!("{KEYS}{}", id_of(&selfish).await));
    assert_eq!(
        bearer(http.delete(&own), &selfish)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ping(&selfish).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(ping(&by_cli).await.unwrap().status(), StatusCode::OK);
    db.revoke_key("ada@example.com", &by_cli);
    assert_eq!(
        ping(&by_cli).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let listed: Value = server.get_json(&http, KEYS, &admin).await;
    let revoked = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["revoked_at"].is_null())
        .count();
    assert_eq!(revoked, 3, "revoked keys are still listed");
    server
        .stop_and_check_logs(&[&admin, &victim, &selfish, &by_cli])
        .await;
}

async fn keys_and_sessions_survive_a_restart(db: Db) {
    db.create_user("ada@example.com");
    let kept = db.create_key("ada@example.com", "kept", "read");
    let gone = db.create_key("ada@example.com", "gone", "read");
    db.revoke_key("ada@example.com", &gone);
    let http = crate::harness::client();

    let server = Server::start(&db).await;
    let session = server.login(&http, "ada@example.com", PASSWORD).await;
    let status = server.stop().await;
    assert!(status.success(), "SIGTERM is a graceful stop: {status:?}");

    let server = Server::start(&db).await;
    let ping = |key: &str| bearer(http.get(server.url(PING)), key).send();
    assert_eq!(ping(&kept).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        ping(&gone).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let res = http
        .get(server.url("/api/v1/auth/session"))
        .header("Cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["csrf_token"],
        session.csrf.as_str()
    );
    server.stop_and_check_logs(&[&kept, &gone]).await;
}

/// A key's first use is noted after its answer: a stop that follows at once must let those
/// notes end where they can still close their database connection, not panic in a stopped
/// worker.
async fn a_stop_right_after_requests_ends_cleanly(db: Db) {
    db.create_user("ada@example.com");
    let admin = db.create_key("ada@example.com", "admin", "admin");
    let server = Server::start(&db).await;
    let http = crate::harness::client();
    let mut keys = Vec::new();
    for n in 0..40 {
        let res = bearer(http.post(server.url(KEYS)), &admin)
            .json(&json!({"name": format!("k{n}"), "scopes": ["read"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let created: Value = res.json().await.unwrap();
        let key = created["key"].as_str().unwrap().to_owned();
        server.secret(&key);
        keys.push(key);
    }
    // Each key's first use spawns a note of it; the stop comes while they are written.
    let pings = keys.iter().map(|key| {
        let req = bearer(http.get(server.url(PING)), key).send();
        async move { req.await.unwrap().status() }
    });
    for status in futures_util::future::join_all(pings).await {
        assert_eq!(status, StatusCode::OK);
    }
    let status = server.stop().await;
    assert!(status.success(), "SIGTERM is a graceful stop: {status:?}");
}

async fn docs_api_examples_run_as_written(db: Db) {
    docs::run_api_examples(db).await;
}

#[tokio::test]
async fn the_dashboard_takes_a_new_user_from_setup_to_revocation() {
    browser::the_dashboard_takes_a_new_user_from_setup_to_revocation().await;
}

#[tokio::test]
async fn a_trace_sent_by_the_sdk_opens_as_a_tree() {
    trace_view::a_trace_sent_by_the_sdk_opens_as_a_tree().await;
}

#[tokio::test]
async fn a_team_is_built_and_run_from_the_dashboard() {
    teams::a_team_is_built_and_run_from_the_dashboard().await;
}

#[tokio::test]
async fn a_new_user_goes_from_setup_to_a_new_password_on_any_screen() {
    first_hour::a_new_user_goes_from_setup_to_a_new_password_on_any_screen().await;
}

#[tokio::test]
async fn signing_in_over_plain_http_says_why_it_cannot_work() {
    first_hour::signing_in_over_plain_http_says_why_it_cannot_work().await;
}

#[tokio::test]
async fn a_server_beyond_loopback_warns_that_browsers_need_https() {
    first_hour::a_server_beyond_loopback_warns_that_browsers_need_https().await;
}

#[tokio::test]
async fn first_run_says_how_to_create_a_user() {
    let db = Db::sqlite();
    let server = Server::start(&db).await;
    let log = server.log();
    assert!(log.contains("agentvista users create --email"), "{log}");
    // Where the data lives, by its absolute path, and the setup page's address.
    let file = db.dir().join("agentvista.db");
    assert!(
        log.contains(&format!("{} (SQLite)", file.display())),
        "{log}"
    );
    assert!(
        log.contains(&format!("open {}/setup", server.base())),
        "{log}"
    );
    server.stop().await;
}

#[test]
fn command_line_failures_are_one_line_and_non_zero() {
    let db = Db::sqlite();
    let long_name = "n".repeat(101);
    let long_email = format!("{}@example.com", "a".repeat(100));
    for (args, env, expected) in [
        (
            vec![
                "keys",
                "create",
                "--email",
                "nobody@example.com",
                "--name",
                "x",
                "--scopes",
                "read",
            ],
            vec![],
            "no user with e-mail",
        ),
        (
            vec![
                "accounts",
                "set-plan",
                "--email",
                "a@example.com",
                "--plan",
                "gold",
            ],
            vec![],
            "no plan named",
        ),
        // The API's rules, applied before anything else: a key name of 1 to 100 characters,
        // an e-mail address, an account name of 1 to 100 characters.
        (
            vec![
                "keys",
                "create",
                "--email",
                "nobody@example.com",
                "--name",
                &long_name,
                "--scopes",
                "read",
            ],
            vec![],
            "--name: needs 1 to 100 characters",
        ),
        (
            vec![
                "keys",
                "create",
                "--email",
                "nobody@example.com",
                "--name",
                "  ",
                "--scopes",
                "read",
            ],
            vec![],
            "--name: needs 1 to 100 characters",
        ),
        (
            vec!["users", "create", "--email", "not-an-address"],
            vec![],
            "--email: not an e-mail address",
        ),
        (
            vec![
                "users",
                "create",
                "--email",
                "a@example.com",
                "--account",
                &long_name,
            ],
            vec![],
            "--account: needs 1 to 100 characters",
        ),
        (
            vec!["users", "create", "--email", &long_email],
            vec![],
            "pass --account",
        ),
        (
            vec!["migrate"],
            vec![("AGENTVISTA__LIMITS__MAX_BODY_BYTES", "lots")],
            "limits.max_body_bytes",
        ),
        (
            vec!["migrate"],
            vec![("AGENTVISTA__SERVER__BIND", "nowhere")],
            "server.bind",
        ),
        (
            vec!["migrate"],
            vec![("AGENTVISTA__DATABASE__URL", "mysql://x")],
            "database.url",
        ),
        // Only serve and migrate create a database; the others say where they looked.
        (
            vec!["users", "create", "--email", "b@example.com"],
            vec![(
                "AGENTVISTA__DATABASE__URL",
                "sqlite://elsewhere.db?mode=rwc",
            )],
            "no database at",
        ),
        // Databases that cannot be opened: one line naming the file or the server, and why.
        (
            vec!["migrate"],
            vec![(
                "AGENTVISTA__DATABASE__URL",
                "sqlite://nowhere/agentvista.db?mode=rwc",
            )],
            "nowhere does not exist: create it",
        ),
        (
            vec!["migrate"],
            vec![("AGENTVISTA__DATABASE__URL", "sqlite://fresh.db")],
            "does not let SQLite create one: add ?mode=rwc",
        ),
        (
            vec!["migrate"],
            vec![(
                "AGENTVISTA__DATABASE__URL",
                "postgres://postgres@127.0.0.1:1/agentvista",
            )],
            "PostgreSQL at 127.0.0.1:1 refused the connection",
        ),
    ] {
        let out = db.cli(&args, &env, None);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr} lacks {expected}");
    }
    let elsewhere = db.dir().join("elsewhere.db");
    assert!(!elsewhere.exists(), "a command created a database");
    // A PostgreSQL server without the database the URL names.
    if let Some(admin) = agentvista_store::testing::postgres_admin_url("a missing database") {
        let server = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(server, _)| server);
        let url = format!("{server}/agentvista_no_such_database");
        let out = db.cli(&["migrate"], &[("AGENTVISTA__DATABASE__URL", &url)], None);
        assert!(!out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("has no database agentvista_no_such_database: create it"),
            "{stderr}"
        );
    }
    db.create_user("ada@example.com");
    let out = db.cli(
        &["users", "create", "--email", "ADA@example.com"],
        &[],
        Some(PASSWORD),
    );
    assert!(
        !out.status.success(),
        "an e-mail is taken whatever its case"
    );
    let out = db.cli(
        &["users", "create", "--email", "short@example.com"],
        &[],
        Some("short"),
    );
    assert!(String::from_utf8(out.stderr).unwrap().contains("password"));
    assert!(
        db.cli_ok(
            &[
                "accounts",
                "set-plan",
                "--email",
                "ada@example.com",
                "--plan",
                "pro"
            ],
            None
        )
        .contains("pro")
    );
    // A name the API takes, the command line takes too, trimmed the same way.
    let longest = "n".repeat(100);
    for (name, kept) in [
        (longest.as_str(), longest.as_str()),
        ("  padded  ", "padded"),
    ] {
        let args = [
            "keys",
            "create",
            "--email",
            "ada@example.com",
            "--name",
            name,
            "--scopes",
            "read",
            "--json",
        ];
        let created: Value = serde_json::from_str(&db.cli_ok(&args, None)).unwrap();
        assert_eq!(created["name"], kept);
    }
}
