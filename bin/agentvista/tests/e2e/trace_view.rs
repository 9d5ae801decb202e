//! A trace as people read it: the Python SDK's own request (nested steps, one failing, one
//! model call; recorded by the SDK's tests) posted to the real binary, found in the list by
//! name and by "errors only", and opened in Chromium as a tree with durations, the failure
//! marked and the model call's model and tokens shown.

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{
    Driver, browser_with, chromium_or_skip, click, fill, severe_logs, shot, wait_css,
};
use crate::harness::{Db, PASSWORD, bearer, client};

/// What `sdk/python/tests/test_fixture.py` recorded the SDK sending.
const SDK_TRACE: &[u8] = include_bytes!("../fixtures/sdk_trace.pb");
const SDK_TRACE_ID: &str = "f46d22239a13102b924f35e6b0b27c65";
const EMAIL: &str = "ada@example.com";

/// The text of the element `css`, once it is there.
async fn text(client: &Client, css: &str) -> String {
    wait_css(client, css).await.text().await.unwrap()
}

/// The trace names the list shows, in order.
async fn listed(client: &Client) -> Vec<String> {
    let rows = client
        .find_all(Locator::Css("#traces tbody tr td:first-child a"))
        .await
        .unwrap();
    let mut names = Vec::new();
    for row in rows {
        names.push(row.text().await.unwrap());
    }
    names
}

/// A row's attribute in the trace's tree.
async fn row_attribute(client: &Client, name: &str, attribute: &str) -> Option<String> {
    wait_css(client, &format!("#trace-events tr[data-name='{name}']"))
        .await
        .attr(attribute)
        .await
        .unwrap()
}

pub(crate) async fn a_trace_sent_by_the_sdk_opens_as_a_tree() {
    if !chromium_or_skip() {
        return;
    }
    let db = Db::sqlite();
    db.create_user(EMAIL);
    let key = db.create_key(EMAIL, "sdk", "write");
    let server = crate::browser::dashboard_server(&db).await;
    let http = client();
    let res = bearer(http.post(server.url("/otlp/v1/traces")), &key)
        .header("content-type", "application/x-protobuf")
        .body(SDK_TRACE)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A later trace that went well, and one of 10,000 spans.
    let other = json!({"batch": [{"id": "o", "type": "span", "trace_id": "other", "name": "nightly report", "timestamp": "2026-12-06T13:00:00Z", "end_time": "2026-12-06T13:00:01Z", "status": "ok"}]});
    let res = bearer(http.post(server.url("/api/v1/traces/batch/")), &key)
        .json(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let spans: Vec<_> = (0..10_000u64)
        .map(|i| json!({"traceId": "0123456789abcdef0123456789abcdef", "spanId": format!("{:016x}", i + 1), "name": format!("step {i}"), "startTimeUnixNano": (1_796_470_000_000_000_000u64 + i).to_string()}))
        .collect();
    let big = json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]});
    let res = bearer(http.post(server.url("/otlp/v1/traces")), &key)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let driver = Driver::start();
    let browser = browser_with(&driver, &[]).await;
    browser.goto(&server.url("/login")).await.unwrap();
    fill(&browser, "#login-form input[name=email]", EMAIL).await;
    fill(&browser, "#login-form input[name=password]", PASSWORD).await;
    click(&browser, "#login-form button[type=submit]").await;
    wait_css(&browser, "#open-create-key").await;

    // Found by name, then narrowed to errors: the filters live in the URL.
    browser.goto(&server.url("/traces")).await.unwrap();
    fill(&browser, "#filter-name", "RUN_").await;
    click(&browser, "#trace-filters button[type=submit]").await;
    wait_css(&browser, "#filter-name[value='RUN_']").await;
    assert_eq!(listed(&browser).await, ["run_agent"]);
    browser.goto(&server.url("/traces")).await.unwrap();
    click(&browser, "#filter-errors").await;
    click(&browser, "#trace-filters button[type=submit]").await;
    wait_css(&browser, "#filter-errors:checked").await;
    assert_eq!(listed(&browser).await, ["run_agent"]);
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.query(), Some("name=&from=&to=&status=error"));
    let row = format!("#traces tr[data-trace='{SDK_TRACE_ID}']");
    let cells = text(&browser, &row).await;
    assert!(
        cells.contains("56 ms") && cells.contains("Error") && cells.contains("12 / 34"),
        "{cells}"
    );
    shot(&browser, "11-traces-filtered").await;

    click(&browser, &format!("{row} a")).await;
    assert_eq!(text(&browser, "#trace-duration").await, "56 ms");
    let depth = |name| row_attribute(&browser, name, "data-depth");
    assert_eq!(depth("run_agent").await.as_deref(), Some("0"));
    assert_eq!(depth("plan").await.as_deref(), Some("1"));
    assert_eq!(depth("chat").await.as_deref(), Some("2"));
    assert_eq!(depth("search_docs").await.as_deref(), Some("1"));
    let failed = text(&browser, "#trace-events tr.failed").await;
    assert!(
        failed.contains("search_docs") && failed.contains("Error"),
        "{failed}"
    );
    assert!(
        text(&browser, "#trace-events tr[data-name='plan']")
            .await
            .contains("21 ms")
    );

    // The model call's details, picked with the mouse; the failure's, from the keyboard.
    let chat = wait_css(&browser, "#trace-events tr[data-name='chat'] td.name a").await;
    let target = chat.attr("href").await.unwrap().unwrap();
    chat.click().await.unwrap();
    let details = text(&browser, &format!("{target}:target")).await;
    assert!(details.contains("gpt-4o-mini"), "{details}");
    assert!(details.contains("12 in / 34 out"), "{details}");
    assert!(
        details.contains("Why is my export refused with HTTP 429?"),
        "{details}"
    );
    shot(&browser, "12-trace-tree").await;
    let link = wait_css(
        &browser,
        "#trace-events tr[data-name='search_docs'] td.name a",
    )
    .await;
    let target = link.attr("href").await.unwrap().unwrap();
    link.send_keys(&Key::Enter.to_string()).await.unwrap();
    let details = text(&browser, &format!("{target}:target")).await;
    assert!(
        details.contains("ValueError: index unavailable"),
        "{details}"
    );
    let severe = severe_logs(&driver, &browser).await;
    assert!(severe.is_empty(), "{severe:?}");

    // A trace longer than a page says so.
    browser
        .goto(&server.url("/traces/0123456789abcdef0123456789abcdef"))
        .await
        .unwrap();
    let truncated = text(&browser, "#trace-truncated").await;
    assert!(
        truncated.contains("Showing the first 200 of 10,000 events"),
        "{truncated}"
    );
    browser.close().await.unwrap();
    server.stop_and_check_logs(&[&key]).await;
}
