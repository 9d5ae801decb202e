//! The dashboard in real headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! over WebDriver with fantoccini, against the real binary. Screenshots of every page go to
//! `target/screenshots/`. Without Chromium the test says that it skips.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Db, Server, bearer};

pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const WAIT: Duration = Duration::from_secs(15);
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "a long dashboard password";

/// chromedriver on a port of its own, stopped on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

/// Whether Chromium and chromedriver are installed; if not, says that the test skips.
pub(crate) fn chromium_or_skip() -> bool {
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped: the browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
    );
    false
}

impl Driver {
    pub(crate) fn start() -> Driver {
        // chromedriver cannot report a port it picked itself; take a free one and hand it over.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines() {
            if line.unwrap().contains("started successfully") {
                break;
            }
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    browser_with(driver, &[]).await
}

/// A headless Chromium of 1280 × 900 px with `extra` arguments, keeping its console log for
/// [`severe_logs`].
pub(crate) async fn browser_with(driver: &Driver, extra: &[&str]) -> Client {
    let profile = tempfile::tempdir().unwrap().keep();
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:loggingPrefs": {"browser": "ALL"},
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// The server a browser test drives: the default Secure cookies (which browsers keep for
/// http://127.0.0.1), and plans an account may switch between by itself.
pub(crate) async fn dashboard_server(db: &Db) -> Server {
    Server::start_with(
        db,
        &[
            ("AGENTVISTA__SERVER__INSECURE_COOKIES", "false"),
            ("AGENTVISTA__BILLING__SELF_SERVE_PLANS", "free,pro"),
        ],
    )
    .await
}

/// The browser's console entries of level SEVERE since the last call (chromedriver's log
/// endpoint empties the log it returns).
pub(crate) async fn severe_logs(driver: &Driver, client: &Client) -> Vec<String> {
    let session = client.session_id().await.unwrap().unwrap();
    let logs: Value = crate::harness::client()
        .post(format!("{}/session/{session}/se/log", driver.url))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    logs["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no browser log: {logs}"))
        .iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].to_string())
        .collect()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

pub(crate) async fn wait_css(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

pub(crate) async fn click(client: &Client, css: &str) {
    wait_css(client, css).await.click().await.unwrap();
}

pub(crate) async fn fill(client: &Client, css: &str, text: &str) {
    let input = wait_css(client, css).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// Waits until the element matching `css` shows `expected` in its text.
pub(crate) async fn wait_text(client: &Client, css: &str, expected: &str) -> String {
    let mut text = String::new();
    let found = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&format!(
            "//*[@id='{}' and contains(normalize-space(.), \"{expected}\")]",
            css.trim_start_matches('#')
        )))
        .await;
    if let Ok(element) = found {
        text = element.text().await.unwrap();
    }
    assert!(text.contains(expected), "{css} never showed {expected:?}");
    text
}

pub(crate) async fn the_dashboard_takes_a_new_user_from_setup_to_revocation() {
    if !chromium_or_skip() {
        return;
    }
    let db = Db::sqlite();
    let server = dashboard_server(&db).await;
    let driver = Driver::start();
    let client = browser(&driver).await;
    let http = crate::harness::client();
    server.secret(PASSWORD);
    server.secret("not the password");

    // First run: "/" offers to create the account.
    client.goto(&server.url("/")).await.unwrap();
    fill(&client, "#setup-account", "Acme").await;
    fill(&client, "#setup-email", EMAIL).await;
    fill(&client, "#setup-password", PASSWORD).await;
    shot(&client, "01-setup").await;
    click(&client, "#setup-form button[type=submit]").await;
    wait_text(&client, "#no-keys", "No keys yet").await;
    shot(&client, "02-keys-empty").await;
    let res = http.get(server.url("/setup")).send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "setup cannot be replayed"
    );

    // Log out, fail a login, log in.
    click(&client, "#logout").await;
    fill(&client, "#login-email", EMAIL).await;
    fill(&client, "#login-password", "not the password").await;
    click(&client, "#login-form button[type=submit]").await;
    wait_text(&client, "#login-error", "password is wrong").await;
    shot(&client, "03-login-error").await;
    fill(&client, "#login-password", PASSWORD).await;
    click(&client, "#login-form button[type=submit]").await;
    wait_css(&client, "#open-create-key").await;
    // The browser's session, for the scan of the server log: its cookie and CSRF token.
    let cookie = client.get_named_cookie("av_session").await.unwrap();
    server.secret(cookie.value());
    let res = http
        .get(server.url("/api/v1/auth/session/"))
        .header("Cookie", format!("av_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    let headers = res.headers().clone();
    server
        .secrets()
        .observe(&headers, &res.bytes().await.unwrap());

    // A favicon, and dates written as the rest of the page writes them.
    let res = http
        .get(server.url("/assets/favicon.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    // Create a write key and read it from the shown-once dialog.
    click(&client, "#open-create-key").await;
    let expiry = wait_css(&client, "#key-expiry").await;
    assert_eq!(
        expiry.attr("placeholder").await.unwrap().as_deref(),
        Some("YYYY-MM-DD")
    );
    fill(&client, "#key-name", "production").await;
    // `write`, what an SDK needs, is chosen already.
    assert!(
        wait_css(&client, "#scope-write")
            .await
            .is_selected()
            .await
            .unwrap()
    );
    fill(&client, "#key-rate", "50").await;
    shot(&client, "04-create-key").await;
    click(&client, "#create-key-submit").await;
    let key = wait_text(&client, "#new-key", "av_").await;
    assert!(agentvista_keys::ApiKey::parse(&key).is_ok(), "{key}");
    shot(&client, "05-key-shown-once").await;
    click(&client, "#close-key-created").await;

    // The list shows the new key by its prefix; the Quick start snippets hold the full key
    // until the page is left or reloaded, and then it is nowhere in the page.
    let row = wait_css(&client, &format!("tr[data-prefix='{}']", &key[..11])).await;
    assert!(row.text().await.unwrap().contains("active"));
    let rate = row
        .find(Locator::Css("td.rate-limit"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(rate.contains("50/s") && rate.contains("burst 50"), "{rate}");
    wait_text(&client, "#snippet-sdk", &key).await;
    client.refresh().await.unwrap();
    wait_css(&client, &format!("tr[data-prefix='{}']", &key[..11])).await;
    let html = client.source().await.unwrap();
    assert!(
        !html.contains(&key[12..]),
        "the full key is still in the page"
    );
    assert!(html.contains(&key[..11]));
    shot(&client, "06-keys").await;

    // Roll it with a one-hour grace: a new key is shown once, the old one's row says when it
    // stops, and both keys work meanwhile.
    wait_css(
        &client,
        &format!("button[data-roll-prefix='{}']", &key[..11]),
    )
    .await
    .click()
    .await
    .unwrap();
    wait_text(&client, "#roll-prefix", &key[..11]).await;
    shot(&client, "06a-roll-confirm").await;
    click(&client, "#confirm-roll").await;
    let rolled = wait_text(&client, "#new-key", "av_").await;
    assert!(agentvista_keys::ApiKey::parse(&rolled).is_ok(), "{rolled}");
    assert_ne!(rolled, key);
    server.secret(&rolled);
    click(&client, "#close-key-created").await;
    // The new key's row exists only once the page has reloaded; the old key's row must be
    // read from that page, not from the one the reload replaces.
    let new_row = wait_css(&client, &format!("tr[data-prefix='{}']", &rolled[..11])).await;
    let old_row = wait_css(&client, &format!("tr[data-prefix='{}']", &key[..11])).await;
    let expires = old_row
        .find(Locator::Css("td.expires"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        expires.contains("(in 59 min)") || expires.contains("(in 60 min)"),
        "the old key's expiry: {expires}"
    );
    let rate = new_row.find(Locator::Css("td.rate-limit")).await.unwrap();
    assert!(
        rate.text().await.unwrap().contains("50/s"),
        "the roll keeps the limit"
    );
    shot(&client, "06b-rolled").await;
    // The roll, the key's creation and the login are in the audit log.
    client
        .goto(&server.url("/settings/audit-log"))
        .await
        .unwrap();
    let entry = wait_css(&client, "tr[data-action='key.rolled']").await;
    let text = entry.text().await.unwrap();
    assert!(
        text.contains(&key[..11]) && text.contains(EMAIL) && !text.contains("user:"),
        "people are named by e-mail: {text}"
    );
    wait_css(&client, "tr[data-action='key.created']").await;
    wait_css(&client, "tr[data-action='login.succeeded']").await;
    shot(&client, "06c-audit-log").await;
    for k in [&key, &rolled] {
        let ping = json!({"batch": [{"type": "event", "trace_id": "roll", "timestamp": "2026-11-27T12:00:00Z"}]});
        let res = bearer(http.post(server.url("/api/v1/traces/batch/")), k)
            .json(&ping)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "within the grace both keys work"
        );
    }

    // The key ingests through the API; billing and traces show it.
    let batch = json!({"batch": [{"id": "e1", "type": "trace", "trace_id": "trace-1", "timestamp": "2026-11-27T12:00:00Z", "name": "first trace"}]});
    let res = bearer(http.post(server.url("/api/v1/traces/batch/")), &key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["accepted"], 1);
    client.goto(&server.url("/settings/billing")).await.unwrap();
    wait_text(&client, "#events-used", "3").await;
    // The plan by name, not by its configuration key; a bar that shows a little usage.
    wait_text(&client, "#plan", "Free").await;
    let bar = wait_css(&client, "#usage-bar").await;
    assert_eq!(bar.attr("value").await.unwrap().as_deref(), Some("500"));
    assert_eq!(
        bar.attr("aria-valuetext").await.unwrap().as_deref(),
        Some("3 of 50,000 events")
    );
    assert_eq!(
        wait_css(&client, "#events-limit")
            .await
            .text()
            .await
            .unwrap(),
        "50,000"
    );
    // The chart: today's bar holds the month's events so far (the roll's two pings and the
    // batch), drawn in the page itself.
    let today = wait_css(&client, "#daily-chart rect.today").await;
    assert_eq!(
        today.attr("data-events").await.unwrap().as_deref(),
        Some("3")
    );
    assert_eq!(
        today.attr("data-date").await.unwrap().as_deref(),
        Some(chrono::Utc::now().date_naive().to_string().as_str())
    );
    let chart = wait_css(&client, "#daily-chart").await;
    assert!(
        chart
            .attr("aria-label")
            .await
            .unwrap()
            .is_some_and(|label| label.contains("3 today")),
        "the chart says its figures in words"
    );
    shot(&client, "07-billing").await;
    // The configured plans with how long each keeps events, and a switch to Pro from the
    // page (self-service is on here).
    let free = wait_css(&client, "tr[data-plan='free'] td.retention").await;
    assert_eq!(free.text().await.unwrap(), "30 days");
    let pro = wait_css(&client, "tr[data-plan='pro'] td.retention").await;
    assert_eq!(pro.text().await.unwrap(), "90 days");
    click(&client, "button[data-choose-plan='pro']").await;
    click(&client, "#confirm-switch-plan").await;
    wait_text(&client, "#plan", "Pro").await;
    wait_css(&client, "#spend-cap-form").await;
    shot(&client, "07a-plan-changed").await;
    client.goto(&server.url("/traces")).await.unwrap();
    wait_css(&client, "a[href='/traces/trace-1']")
        .await
        .click()
        .await
        .unwrap();
    wait_text(&client, "#trace-events", "first trace").await;
    shot(&client, "08-trace").await;

    // Revoke it in the page: the API refuses it on the very next request. First, each key's
    // events this month: the old key sent two, the rolled one one.
    client
        .goto(&server.url("/settings/api-keys"))
        .await
        .unwrap();
    for (k, events) in [(&key, "2"), (&rolled, "1")] {
        let row = wait_css(&client, &format!("tr[data-prefix='{}']", &k[..11])).await;
        let cell = row.find(Locator::Css("td.events-count")).await.unwrap();
        assert_eq!(cell.text().await.unwrap(), events, "{}", &k[..11]);
    }
    wait_css(&client, &format!("button[data-prefix='{}']", &key[..11]))
        .await
        .click()
        .await
        .unwrap();
    wait_text(&client, "#revoke-prefix", &key[..11]).await;
    shot(&client, "09-revoke-confirm").await;
    click(&client, "#confirm-revoke").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&format!(
            "//tr[@data-prefix='{}']//span[contains(., 'revoked')]",
            &key[..11]
        )))
        .await
        .unwrap();
    let res = bearer(http.post(server.url("/api/v1/traces/batch/")), &key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    shot(&client, "10-revoked").await;

    // Keyboard only: open the dialog, name the key, find `write` ticked, submit, dismiss with
    // Escape.
    let key_press = |key: Key| char::from(key).to_string();
    wait_css(&client, "#open-create-key")
        .await
        .send_keys(&key_press(Key::Enter))
        .await
        .unwrap();
    let name = client.active_element().await.unwrap();
    assert_eq!(
        name.attr("id").await.unwrap().as_deref(),
        Some("key-name"),
        "the dialog focuses its first field"
    );
    name.send_keys("keyboard").await.unwrap();
    name.send_keys(&key_press(Key::Tab)).await.unwrap();
    let checkbox = client.active_element().await.unwrap();
    assert_eq!(
        checkbox.attr("id").await.unwrap().as_deref(),
        Some("scope-write")
    );
    assert!(
        checkbox.is_selected().await.unwrap(),
        "write is chosen already"
    );
    checkbox
        .send_keys(&format!("{}{}", key_press(Key::Shift), key_press(Key::Tab)))
        .await
        .unwrap();
    client
        .active_element()
        .await
        .unwrap()
        .send_keys(&key_press(Key::Enter))
        .await
        .unwrap();
    wait_text(&client, "#new-key", "av_").await;
    client
        .active_element()
        .await
        .unwrap()
        .send_keys(&key_press(Key::Escape))
        .await
        .unwrap();
    // Escape closed the dialog and the list was read again with the new key, newest first.
    wait_text(&client, "#keys", "keyboard").await;
    let newest = wait_css(&client, "#keys tbody tr:first-child").await;
    let newest = newest.text().await.unwrap();
    assert!(
        newest.contains("keyboard") && newest.contains("write"),
        "{newest}"
    );

    click(&client, "#logout").await;
    wait_css(&client, "#login-form").await;
    client.close().await.unwrap();
    drop(driver);
    server.stop_and_check_logs(&[&key]).await;
}
