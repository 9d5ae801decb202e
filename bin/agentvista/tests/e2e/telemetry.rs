//! What operators read: the Prometheus endpoint on `metrics.bind` (scraped and parsed), and
//! JSON log lines that carry the request id returned in `X-Request-Id`.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Db, Server, bearer, client};

const PING: &str = "/api/v1/me/api-keys/ping/";

/// The samples of one scrape: `name{label="value",…}` → value, labels sorted by name.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    async fn of(url: &str) -> Scrape {
        let res = client().get(url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = res.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let parsed = prometheus_parse::Scrape::parse(lines).unwrap();
        let mut samples = HashMap::new();
        for sample in parsed.samples {
            let mut labels: Vec<(String, String)> = sample
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            let labels: Vec<String> = labels
                .into_iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => {
                    // The count of observations: the `+Inf` bucket.
                    buckets.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => continue,
            };
            samples.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
        }
        Scrape(samples)
    }

    /// The sample named so, 0 when absent (a counter not yet incremented is not exported).
    fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }
}

/// The scrape endpoint's URL, from the line the server logs when it binds (port 0 here).
fn metrics_url(server: &Server) -> String {
    let log = server.log();
    let at = log
        .find("metrics on http://")
        .unwrap_or_else(|| panic!("no metrics line in:\n{log}"));
    let rest = &log[at + "metrics on ".len()..];
    rest.split(|c: char| c == '"' || c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn metrics_count_requests_refusals_events_cache_and_barrier() {
    let db = Db::sqlite();
    db.create_user("ada@example.com");
    let read = db.create_key("ada@example.com", "reader", "read");
    let write = db.create_key("ada@example.com", "writer", "write");
    let admin = db.create_key("ada@example.com", "admin", "admin");
    let doomed = db.create_key("ada@example.com", "doomed", "read");
    let server = Server::start_with(&db, &[("AGENTVISTA__METRICS__BIND", "127.0.0.1:0")]).await;
    let http = client();
    let url = metrics_url(&server);

    for _ in 0..3 {
        let res = bearer(http.get(server.url(PING)), &read)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let refused = [
        (None, StatusCode::UNAUTHORIZED),
        (
            Some("Bearer not-a-key".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
        (Some(format!("Bearer {write}")), StatusCode::FORBIDDEN),
    ];
    for (auth, status) in refused {
        let mut req = http.get(server.url(PING));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        assert_eq!(req.send().await.unwrap().status(), status);
    }
    let batch = json!({"batch": [
        {"id": "e1", "type": "span", "trace_id": "t1", "timestamp": "2026-11-28T12:00:00Z"},
        {"id": "e2", "type": "span", "trace_id": "t1", "timestamp": "2026-11-28T12:00:01Z"},
    ]});
    for _ in 0..2 {
        let res = bearer(http.post(server.url("/api/v1/traces/batch/")), &write)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let keys = server.get_json(&http, "/api/v1/me/api-keys/", &admin).await;
    let doomed_id = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "doomed")
        .unwrap()["id"]
        .clone();
    let res = bearer(
        http.delete(server.url(&format!("/api/v1/me/api-keys/{doomed_id}/"))),
        &admin,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = bearer(http.get(server.url(PING)), &doomed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let scrape = Scrape::of(&url).await;
    let ping = "route=\"/api/v1/me/api-keys/ping\"";
    assert_eq!(
        scrape.get(&format!(
            "agentvista_http_requests_total{{method=\"GET\",{ping},status=\"200\"}}"
        )),
        3.0
    );
    assert_eq!(
        scrape.get(&format!(
            "agentvista_http_requests_total{{method=\"GET\",{ping},status=\"401\"}}"
        )),
        3.0
    );
    // Three answered, three refused, and the revoked key's.
    assert_eq!(
        scrape.get(&format!(
            "agentvista_http_request_duration_seconds_count{{method=\"GET\",{ping}}}"
        )),
        7.0
    );
    for (reason, count) in [("missing", 1.0), ("malformed", 1.0), ("scope", 1.0)] {
        assert_eq!(
            scrape.get(&format!(
                "agentvista_auth_refusals_total{{reason=\"{reason}\"}}"
            )),
            count,
            "{reason}"
        );
    }
    assert_eq!(
        scrape.get("agentvista_auth_refusals_total{reason=\"revoked\"}"),
        1.0
    );
    assert_eq!(scrape.get("agentvista_events_accepted_total{}"), 2.0);
    assert_eq!(scrape.get("agentvista_events_duplicated_total{}"), 2.0);
    assert_eq!(scrape.get("agentvista_group_commit_requests_count{}"), 2.0);
    // The reader's key: one miss, then hits; every other key missed once at least.
    assert!(scrape.get("agentvista_key_cache_hits_total{}") >= 2.0);
    assert!(scrape.get("agentvista_key_cache_misses_total{}") >= 1.0);
    assert_eq!(
        scrape.get("agentvista_revocation_barrier_seconds_count{}"),
        1.0
    );
    assert_eq!(scrape.get("agentvista_quota_refusals_total{}"), 0.0);
    // Not a path of the API: a template never holds what a client typed.
    let res = http.get(server.url("/no/such/path")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let scrape = Scrape::of(&url).await;
    assert_eq!(
        scrape.get(
            "agentvista_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ),
        1.0
    );
    assert!(!scrape.0.keys().any(|k| k.contains("/no/such/path")));
    let res = client()
        .get(url.replace("/metrics", "/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    server
        .stop_and_check_logs(&[&read, &write, &admin, &doomed])
        .await;
}

#[tokio::test]
async fn json_log_lines_carry_the_request_id_the_response_returns() {
    let db = Db::sqlite();
    db.create_user("ada@example.com");
    let read = db.create_key("ada@example.com", "reader", "read");
    let server = Server::start_with(&db, &[("AGENTVISTA__LOG__FORMAT", "json")]).await;
    let http = client();

    let res = bearer(http.get(server.url(PING)), &read)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 16);
    let res = bearer(http.get(server.url(PING)), &read)
        .header("X-Request-Id", "lb-7f3a:42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "lb-7f3a:42");
    // Not an id this server takes: replaced, not echoed.
    let res = bearer(http.get(server.url(PING)), &read)
        .header("X-Request-Id", "x".repeat(65))
        .send()
        .await
        .unwrap();
    let replaced = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(replaced.len(), 16);
    assert_ne!(replaced, generated);

    // Read once the server has stopped: the last request's line may follow its answer.
    let log = server.stop_and_check_logs(&[&read]).await;
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request" && l["path"] == PING)
        .collect();
    assert_eq!(requests.len(), 3, "{log}");
    let ids: Vec<&str> = requests
        .iter()
        .map(|l| l["span"]["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [generated.as_str(), "lb-7f3a:42", replaced.as_str()]);
    assert!(
        requests
            .iter()
            .all(|l| l["status"] == 200 && l["level"] == "INFO")
    );
}

/// Wrong passwords from one client behind a trusted proxy until the throttle answers 429;
/// returns the attempts it took. `forwarded_for` is the `X-Forwarded-For` each attempt sends.
async fn throttle_logins(server: &Server, forwarded_for: &str) -> usize {
    let http = client();
    for attempt in 1..=20 {
        let password = format!("wrong password {attempt} from {forwarded_for}");
        server.secret(&password);
        let res = http
            .post(server.url("/api/v1/auth/login/"))
            .header("X-Forwarded-For", forwarded_for)
            .json(&json!({"email": "ada@example.com", "password": password}))
            .send()
            .await
            .unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => return attempt,
            other => panic!("attempt {attempt}: {other}"),
        }
    }
    panic!("20 wrong passwords and no throttle");
}

async fn login_status(server: &Server, forwarded_for: &str) -> StatusCode {
    client()
        .post(server.url("/api/v1/auth/login/"))
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({"email": "ada@example.com", "password": crate::harness::PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_login_throttle_keys_on_the_forwarded_client_only_behind_a_trusted_proxy() {
    let db = Db::sqlite();
    db.create_user("ada@example.com");

    // This test's client is the proxy (127.0.0.1), trusted: each forwarded client has its
    // own bucket, and the spoofed address in front of the real one changes nothing.
    let server =
        Server::start_with(&db, &[("AGENTVISTA__SERVER__TRUSTED_PROXIES", "127.0.0.1")]).await;
    throttle_logins(&server, "6.6.6.6, 198.51.100.1").await;
    assert_eq!(
        login_status(&server, "7.7.7.7, 198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a spoofed first hop escaped the throttle"
    );
    assert_eq!(login_status(&server, "198.51.100.2").await, StatusCode::OK);
    server.stop_and_check_logs(&[]).await;

    // No proxy trusted: the header is the client's word, and ignored.
    let server = Server::start(&db).await;
    throttle_logins(&server, "198.51.100.1").await;
    assert_eq!(
        login_status(&server, "198.51.100.2").await,
        StatusCode::TOO_MANY_REQUESTS,
        "an untrusted X-Forwarded-For chose the throttle's bucket"
    );
    server.stop_and_check_logs(&[]).await;
}
