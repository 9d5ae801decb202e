//! The everyday commands: listing keys and users, a key that expires, and the self-hosted
//! reset of a forgotten password (which ends that person's sessions).

use chrono::{Duration, SubsecRound, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{self, Db, PASSWORD, Server};

const EMAIL: &str = "ada@example.com";

pub(crate) async fn keys_and_users_are_listed_and_a_password_is_reset(db: Db) {
    db.create_user(EMAIL);
    let reader = db.create_key(EMAIL, "reader", "read");
    let expires = (Utc::now() + Duration::days(30)).trunc_subsecs(0);
    let args = [
        "keys",
        "create",
        "--email",
        EMAIL,
        "--name",
        "temporary",
        "--scopes",
        "write",
        "--expires",
        &expires.to_rfc3339(),
    ];
    let temporary = db.cli_ok(&args, None).trim().to_owned();
    db.secrets.add(&temporary);
    db.revoke_key(EMAIL, &reader);

    // A table, newest first, one line per key, statuses and expiry shown, no secret.
    let table = db.cli_ok(&["keys", "list", "--email", EMAIL], None);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("PREFIX"), "{table}");
    assert!(lines[1].starts_with(&temporary[..11]), "{table}");
    assert!(
        lines[1].contains("active") && lines[1].contains(&expires.format("%Y-%m-%d").to_string())
    );
    assert!(
        lines[2].starts_with(&reader[..11]) && lines[2].contains("revoked"),
        "{table}"
    );
    let json: Value =
        serde_json::from_str(&db.cli_ok(&["keys", "list", "--email", EMAIL, "--json"], None))
            .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["prefix"], &temporary[..11]);
    assert_eq!(
        json[0]["expires_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        expires
    );
    for secret in [&reader, &temporary] {
        assert!(!table.contains(&secret[12..]) && !json.to_string().contains(&secret[12..]));
    }
    // An expiry in the past: one line, nothing created.
    let past = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let args = [
        "keys",
        "create",
        "--email",
        EMAIL,
        "--name",
        "late",
        "--scopes",
        "read",
        "--expires",
        &past,
    ];
    let out = db.cli(&args, &[], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--expires: must be in the future"));

    let users = db.cli_ok(&["users", "list"], None);
    assert!(
        users.lines().next().unwrap().starts_with("EMAIL"),
        "{users}"
    );
    assert!(users.contains(EMAIL), "{users}");

    // A forgotten password, reset by the operator: the old sessions end, the new password
    // signs in, the old one no longer does.
    let server = Server::start(&db).await;
    let http = harness::client();
    let session = server.login(&http, EMAIL, PASSWORD).await;
    let me = || {
        http.get(server.url("/api/v1/auth/session/"))
            .header("Cookie", &session.cookie)
            .send()
    };
    assert_eq!(me().await.unwrap().status(), StatusCode::OK);
    let new_password = "a new and longer passphrase";
    db.secrets.add(new_password);
    let out = db.cli(
        &["users", "set-password", "--email", EMAIL],
        &[("AGENTVISTA_PASSWORD", new_password)],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 session(s) ended"));
    assert_eq!(me().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let login = |password: &'static str| {
        http.post(server.url("/api/v1/auth/login/"))
            .json(&serde_json::json!({"email": EMAIL, "password": password}))
            .send()
    };
    assert_eq!(
        login(PASSWORD).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(new_password).await.unwrap().status(), StatusCode::OK);
    server.stop_and_check_logs(&[&temporary]).await;
}

/// A database one migration behind this version (its newest migration rolled back, as an
/// older release left it): every command but `serve` and `migrate` refuses it and says to run
/// `agentvista migrate`; once migrated, the same command works.
pub(crate) async fn a_database_behind_on_migrations_asks_for_migrate(db: Db) {
    use agentvista_migrations::{Migrator, MigratorTrait};

    db.create_user(EMAIL);
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    Migrator::down(&conn, Some(1)).await.unwrap();
    conn.close().await.unwrap();

    let out = db.cli(&["users", "list"], &[], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 migration(s) behind") && stderr.contains("run `agentvista migrate`"),
        "{stderr}"
    );
    db.cli_ok(&["migrate"], None);
    let users = db.cli_ok(&["users", "list"], None);
    assert!(users.contains(EMAIL), "{users}");
}
