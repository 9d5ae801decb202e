//! Runs every `curl` example of `docs/api.md` against the real server, in document order, and
//! checks each answer's status and JSON fields against the response documented under it.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Db, PASSWORD, Server};

/// A `sh` block and the `http` block documented after it.
struct Example {
    line: usize,
    script: String,
    status: u16,
    /// The documented headers' names, lower case.
    headers: Vec<String>,
    body: Option<Value>,
}

fn examples(markdown: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut lines = markdown.lines().enumerate().peekable();
    let mut pending: Option<(usize, String)> = None;
    while let Some((n, line)) = lines.next() {
        let fence = line.trim_start();
        if fence != "```sh" && fence != "```http" {
            continue;
        }
        let mut block = String::new();
        for (_, line) in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        if fence == "```sh" {
            pending = Some((n + 1, block));
        } else if let Some((line, script)) = pending.take() {
            let (head, body) = block.split_once("\n\n").unwrap_or((&block, ""));
            let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .map(|(name, _)| name.trim().to_ascii_lowercase())
                .collect();
            let body = (!body.trim().is_empty()).then(|| serde_json::from_str(body).unwrap());
            examples.push(Example {
                line,
                script,
                status,
                headers,
                body,
            });
        }
    }
    examples
}

pub(crate) async fn run_api_examples(db: Db) {
    if Command::new("curl").arg("--version").output().is_err() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the docs/api.md examples need curl (apt-get install curl)"
        );
        return;
    }
    let markdown =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let examples = examples(&markdown);
    assert!(
        examples.len() >= 12,
        "docs/api.md documents only {} examples",
        examples.len()
    );

    db.create_user("ada@example.com");
    let key = db.create_key("ada@example.com", "sdk", "read,write");
    let admin = db.create_key("ada@example.com", "admin", "admin");
    let doomed: Value = serde_json::from_str(&db.cli_ok(
        &[
            "keys",
            "create",
            "--email",
            "ada@example.com",
            "--name",
            "doomed",
            "--scopes",
            "read",
            "--json",
        ],
        None,
    ))
    .unwrap();
    let server = Server::start(&db).await;
    let jar = db.dir().join("cookies.txt");
    let mut csrf = String::new();

    for example in &examples {
        let base = server.base().to_owned();
        let script = example.script.clone();
        let jar = jar.clone();
        let env = [
            ("AV", base),
            ("AV_KEY", key.clone()),
            ("AV_ADMIN_KEY", admin.clone()),
            ("AV_KEY_ID", doomed["id"].to_string()),
            ("AV_JAR", jar.display().to_string()),
            ("AV_CSRF", csrf.clone()),
            ("AV_PASSWORD", PASSWORD.to_owned()),
        ];
        let out = tokio::task::spawn_blocking(move || {
            Command::new("sh")
                .args(["-eu", "-c", &script])
                .envs(env)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(
            out.status.success(),
            "docs/api.md:{}: {}",
            example.line,
            String::from_utf8_lossy(&out.stderr)
        );
        // curl's jar (Netscape format: the value is the last field) holds the session cookie.
        for line in std::fs::read_to_string(&jar).unwrap_or_default().lines() {
            if line.contains("\tav_session\t")
                && let Some(value) = line.rsplit('\t').next().filter(|v| !v.is_empty())
            {
                server.secret(value);
            }
        }
        let (head, body) = stdout.split_once("\n\n").unwrap_or((&stdout, ""));
        let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(
            status, example.status,
            "docs/api.md:{}: {stdout}",
            example.line
        );
        let sent: Vec<String> = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, _)| name.trim().to_ascii_lowercase())
            .collect();
        for name in &example.headers {
            assert!(
                sent.contains(name),
                "docs/api.md:{}: header {name} missing from {head}",
                example.line
            );
        }
        if let Some(documented) = &example.body {
            let actual: Value = serde_json::from_str(body.trim())
                .unwrap_or_else(|_| panic!("docs/api.md:{}: not JSON: {body}", example.line));
            same_shape(documented, &actual, example.line);
            if let Some(token) = actual["csrf_token"].as_str() {
                csrf = token.to_owned();
                server.secret(&csrf);
            }
        }
    }
    server.stop_and_check_logs(&[&key, &admin]).await;
}

/// Every documented field is present; `error` and `status` values match exactly.
fn same_shape(documented: &Value, actual: &Value, line: usize) {
    let Some(fields) = documented.as_object() else {
        return;
    };
    for (name, value) in fields {
        let Some(got) = actual.get(name) else {
            panic!("docs/api.md:{line}: field {name} missing from {actual}");
        };
        if matches!(name.as_str(), "error" | "status") {
            assert_eq!(value, got, "docs/api.md:{line}");
        }
        if value.is_object() {
            same_shape(value, got, line);
        }
    }
}
