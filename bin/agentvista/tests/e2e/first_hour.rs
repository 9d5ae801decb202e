//! A new adopter's first hour in the dashboard, at a desktop's width and a phone's: first-run
//! setup (every field's problem at once, in plain words), a key created with `write` chosen
//! already, the Quick start filled with it and copied, the roll dialog, the audit log naming
//! people, a plan switch that says what changes, a new password. No page scrolls sideways,
//! no date breaks over two lines, and the browser logs no error. Then the plain-HTTP trap:
//! a browser that drops the Secure cookie is told why.

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{
    Driver, browser_with, chromium_or_skip, click, dashboard_server, fill, severe_logs, shot,
    wait_css, wait_text,
};
use crate::harness::{Db, Server};

const EMAIL: &str = "grace@example.com";
const PASSWORD: &str = "a long first-hour password";
const NEW_PASSWORD: &str = "an even longer second password";

/// Sets the page's viewport to `width` CSS pixels (the window's frame, if any, added).
async fn viewport(client: &Client, width: u32) {
    client.set_window_size(width, 900).await.unwrap();
    let inner = js_u64(client, "return window.innerWidth").await;
    let outer = js_u64(client, "return window.outerWidth").await;
    if inner != u64::from(width) {
        let frame = u32::try_from(outer - inner).unwrap();
        client.set_window_size(width + frame, 900).await.unwrap();
    }
    assert_eq!(
        js_u64(client, "return window.innerWidth").await,
        u64::from(width)
    );
}

async fn js_u64(client: &Client, script: &str) -> u64 {
    client
        .execute(script, vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

/// Waits until the element `id`, present but hidden until now, is shown holding `text`.
async fn wait_shown(client: &Client, id: &str, text: &str) {
    client
        .wait()
        .at_most(crate::browser::WAIT)
        .for_element(Locator::XPath(&format!(
            "//*[@id='{id}' and not(@hidden) and contains(normalize-space(.), \"{text}\")]"
        )))
        .await
        .unwrap_or_else(|e| panic!("#{id} never showed {text:?}: {e}"));
}

/// The page does not scroll sideways, and every date in a table is one line box.
async fn fits(client: &Client, page: &str) {
    let found = client
        .execute(
            "const overflow = document.documentElement.scrollWidth - window.innerWidth;
             const broken = [...document.querySelectorAll('td time')]
                 .filter((t) => t.getClientRects().length !== 1)
                 .map((t) => t.textContent);
             const dates = document.querySelectorAll('td time').length;
             return {overflow, broken, dates};",
            vec![],
        )
        .await
        .unwrap();
    if found["overflow"].as_i64().unwrap() > 0 {
        let wide = client
            .execute(
                "return [...document.querySelectorAll('body *')]
                     .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
                     .filter((e) => !e.parentElement.closest('.table-wrap, pre') || getComputedStyle(e).position === 'absolute')
                     .slice(0, 8)
                     .map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`);",
                vec![],
            )
            .await
            .unwrap();
        panic!("{page} scrolls sideways: {found}; past the edge: {wide}");
    }
    assert_eq!(
        found["broken"],
        json!([]),
        "{page}: dates over two lines: {found}"
    );
}

pub(crate) async fn a_new_user_goes_from_setup_to_a_new_password_on_any_screen() {
    if !chromium_or_skip() {
        return;
    }
    let driver = Driver::start();
    for width in [1280, 375] {
        walk(&driver, width).await;
    }
}

async fn walk(driver: &Driver, width: u32) {
    let db = Db::sqlite();
    let server = dashboard_server(&db).await;
    server.secret(PASSWORD);
    server.secret(NEW_PASSWORD);
    let client = browser_with(driver, &[]).await;
    viewport(&client, width).await;
    let http = crate::harness::client();
    let name = |step: &str| format!("first-hour-{width}-{step}");

    // Setup: submitted empty, every field says what it needs, in words.
    client.goto(&server.url("/")).await.unwrap();
    click(&client, "#setup-form button[type=submit]").await;
    let account = wait_text(
        &client,
        "#setup-account-error",
        "Account name: 1 to 100 characters",
    )
    .await;
    let email = wait_text(&client, "#setup-email-error", "E-mail:").await;
    let password = wait_text(
        &client,
        "#setup-password-error",
        "Password: at least 8 characters",
    )
    .await;
    for message in [&account, &email, &password] {
        assert!(
            !message.contains("account:") && !message.contains("email:"),
            "{message}"
        );
    }
    fits(&client, "setup").await;
    shot(&client, &name("01-setup-errors")).await;
    fill(&client, "#setup-account", "Acme").await;
    fill(&client, "#setup-email", EMAIL).await;
    fill(&client, "#setup-password", PASSWORD).await;
    click(&client, "#setup-form button[type=submit]").await;
    wait_css(&client, "#no-keys").await;
    fits(&client, "keys, empty").await;
    // An SDK's install line comes first.
    let sdk = wait_css(&client, "#snippet-sdk")
        .await
        .text()
        .await
        .unwrap();
    assert!(sdk.starts_with("pip install ./sdk/python"), "{sdk}");

    // A key: `write` is chosen already; once created, the Quick start uses it.
    click(&client, "#open-create-key").await;
    assert!(
        wait_css(&client, "#scope-write")
            .await
            .is_selected()
            .await
            .unwrap()
    );
    fill(&client, "#key-name", "laptop").await;
    shot(&client, &name("02-create-key")).await;
    click(&client, "#create-key-submit").await;
    let key = wait_text(&client, "#new-key", "av_").await;
    server.secret(&key);
    click(&client, "#copy-key").await;
    wait_text(&client, "#copy-status", "Copied").await;
    click(&client, "#close-key-created").await;
    wait_css(&client, &format!("tr[data-prefix='{}']", &key[..11])).await;
    for snippet in ["#snippet-curl", "#snippet-sdk", "#snippet-otel"] {
        wait_text(&client, snippet, &key).await;
    }
    let sdk = wait_css(&client, "#snippet-sdk")
        .await
        .text()
        .await
        .unwrap();
    assert!(sdk.starts_with("pip install ./sdk/python"), "{sdk}");
    let copy = wait_css(&client, "button[data-copy='snippet-sdk']").await;
    copy.click().await.unwrap();
    client
        .wait()
        .at_most(crate::browser::WAIT)
        .for_element(Locator::XPath(
            "//button[@data-copy='snippet-sdk' and normalize-space(.)='Copied']",
        ))
        .await
        .unwrap();
    // Every snippet has its own Copy button.
    let buttons = client
        .find_all(Locator::Css("#quick-start button.copy"))
        .await
        .unwrap();
    assert_eq!(buttons.len(), 3);
    // Dates in the browser's zone, UTC in the tooltip.
    let created = wait_css(&client, "#keys td.date time").await;
    assert!(
        created
            .attr("title")
            .await
            .unwrap()
            .unwrap()
            .ends_with("UTC")
    );
    fits(&client, "keys").await;
    shot(&client, &name("03-key-in-quick-start")).await;
    client.refresh().await.unwrap();
    wait_css(&client, &format!("tr[data-prefix='{}']", &key[..11])).await;
    assert!(
        !client.source().await.unwrap().contains(&key[12..]),
        "the key outlived a reload"
    );

    // The roll dialog's select looks and is labelled like the create dialog's fields.
    click(
        &client,
        &format!("button[data-roll-prefix='{}']", &key[..11]),
    )
    .await;
    wait_text(&client, "#roll-prefix", &key[..11]).await;
    let looks = client
        .execute(
            "const style = (css) => getComputedStyle(document.querySelector(css));
             const select = style('#roll-grace'), input = style('#key-name');
             const label = style('label[for=roll-grace]'), named = style('label[for=key-name]');
             return [select.borderTopWidth === input.borderTopWidth
                 && select.borderRadius === input.borderRadius
                 && select.paddingTop === input.paddingTop
                 && select.boxSizing === input.boxSizing
                 && select.width === style('#roll-key-form').width,
                 label.fontWeight === named.fontWeight && label.display === named.display];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(looks, json!([true, true]), "the roll dialog's grace field");
    fits(&client, "roll dialog").await;
    shot(&client, &name("04-roll")).await;
    client
        .execute("document.getElementById('roll-key').close()", vec![])
        .await
        .unwrap();

    // The audit log names people by e-mail, keys by prefix.
    client
        .goto(&server.url("/settings/audit-log"))
        .await
        .unwrap();
    let created = wait_css(&client, "tr[data-action='key.created'] td.actor").await;
    assert_eq!(created.text().await.unwrap(), EMAIL);
    assert_eq!(
        created
            .attr("title")
            .await
            .unwrap()
            .as_deref()
            .map(|t| t.starts_with("user:")),
        Some(true)
    );
    fits(&client, "audit log").await;
    shot(&client, &name("05-audit-log")).await;

    // A plan switch says what changes and offers a spend cap where overage starts.
    client.goto(&server.url("/settings/billing")).await.unwrap();
    click(&client, "button[data-choose-plan='pro']").await;
    wait_text(&client, "#switch-plan-events", "1,000,000").await;
    wait_text(&client, "#switch-plan-beyond", "per 1,000 events").await;
    fill(&client, "#switch-plan-cap-input", "25").await;
    fits(&client, "plan switch").await;
    shot(&client, &name("06-switch-plan")).await;
    click(&client, "#confirm-switch-plan").await;
    wait_text(&client, "#plan", "Pro").await;
    let cap = wait_css(&client, "#spend-cap").await;
    assert_eq!(cap.prop("value").await.unwrap().as_deref(), Some("25.00"));
    fits(&client, "billing").await;

    // Another session of the same person, which the new password ends.
    let elsewhere = server.login(&http, EMAIL, PASSWORD).await;
    client.goto(&server.url("/settings/profile")).await.unwrap();
    wait_text(&client, "#profile-email", EMAIL).await;
    fill(&client, "#current-password", PASSWORD).await;
    fill(&client, "#new-password", NEW_PASSWORD).await;
    fill(&client, "#confirm-password", "not the same").await;
    click(&client, "#password-form button[type=submit]").await;
    wait_text(
        &client,
        "#confirm-password-error",
        "the two new passwords differ",
    )
    .await;
    fill(&client, "#confirm-password", NEW_PASSWORD).await;
    click(&client, "#password-form button[type=submit]").await;
    wait_shown(&client, "password-changed", "Password changed").await;
    fits(&client, "profile").await;
    shot(&client, &name("07-password-changed")).await;
    let res = http
        .get(server.url("/api/v1/auth/session/"))
        .header("Cookie", &elsewhere.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the other session ended"
    );
    // This one stays.
    client
        .goto(&server.url("/settings/api-keys"))
        .await
        .unwrap();
    wait_css(&client, "#open-create-key").await;

    let severe = severe_logs(driver, &client).await;
    assert!(severe.is_empty(), "the browser logged errors: {severe:?}");
    client.close().await.unwrap();
    server.stop_and_check_logs(&[&key]).await;
}

pub(crate) async fn signing_in_over_plain_http_says_why_it_cannot_work() {
    if !chromium_or_skip() {
        return;
    }
    let db = Db::sqlite();
    let server =
        Server::start_with(&db, &[("AGENTVISTA__SERVER__INSECURE_COOKIES", "false")]).await;
    server.secret(PASSWORD);
    let http = crate::harness::client();
    let res = http
        .post(server.url("/api/v1/setup/"))
        .json(&json!({"account": "Acme", "email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{:?}",
        res.json::<Value>().await
    );
    // Another name for this machine: a browser keeps Secure cookies over plain HTTP only for
    // localhost and loopback addresses.
    let driver = Driver::start();
    let client = browser_with(
        &driver,
        &[
            "--host-resolver-rules=MAP dashboard.test 127.0.0.1",
            "--disable-features=HttpsUpgrades",
        ],
    )
    .await;
    let host = server.base().replace("127.0.0.1", "dashboard.test");
    let host = host
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    client.goto(&format!("http://{host}/login")).await.unwrap();
    fill(&client, "#login-email", EMAIL).await;
    fill(&client, "#login-password", PASSWORD).await;
    click(&client, "#login-form button[type=submit]").await;
    let message = wait_text(&client, "#login-error", "refused the session cookie").await;
    assert!(
        message.contains(&format!("plain HTTP at {host}"))
            && message.contains("server.trusted_proxies")
            && message.contains("server.insecure_cookies = true"),
        "{message}"
    );
    shot(&client, "plain-http-login").await;
    client.close().await.unwrap();
    server.stop_and_check_logs(&[]).await;
}

pub(crate) async fn a_server_beyond_loopback_warns_that_browsers_need_https() {
    let db = Db::sqlite();
    let exposed = Server::start_with(
        &db,
        &[
            ("AGENTVISTA__SERVER__BIND", "0.0.0.0:0"),
            ("AGENTVISTA__SERVER__INSECURE_COOKIES", "false"),
        ],
    )
    .await;
    let log = exposed.log();
    assert!(
        log.contains("beyond loopback") && log.contains("server.insecure_cookies = true"),
        "{log}"
    );
    exposed.stop().await;
    let local = Server::start_with(&db, &[("AGENTVISTA__SERVER__INSECURE_COOKIES", "false")]).await;
    assert!(!local.log().contains("beyond loopback"), "{}", local.log());
    local.stop().await;
}
