//! Configuration: defaults, then the file, then `AGENTVISTA__` variables;
//! typed and validated once, naming the key at fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use agentvista_http::{BodyLimits, BudgetLimits, Caps, HttpConfig, TrustedProxies};
use agentvista_quota::Plan;
use agentvista_store::{DEFAULT_LEASE, SqliteSync, StoreOptions, Sweep};
use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Deserializer};

/// Everything the binary reads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    pub(crate) server: ServerSettings,
    pub(crate) database: DatabaseSettings,
    pub(crate) default_plan: String,
    pub(crate) plans: BTreeMap<String, PlanSettings>,
    pub(crate) limits: LimitSettings,
    pub(crate) auth: AuthSettings,
    pub(crate) metrics: MetricsSettings,
    pub(crate) log: LogSettings,
    pub(crate) billing: BillingSettings,
    pub(crate) retention: RetentionSettings,
    pub(crate) audit: AuditSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditSettings {
    /// Days an audit entry is kept; 0: for ever.
    pub(crate) retention_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionSettings {
    /// Seconds between two sweeps of the events past their plan's retention; 0: no sweeps.
    pub(crate) interval_secs: u64,
    /// Events deleted per transaction at most.
    pub(crate) batch_size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BillingSettings {
    /// The plans a dashboard session may move its account to.
    #[serde(deserialize_with = "plan_list")]
    pub(crate) self_serve_plans: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsSettings {
    /// Where the Prometheus scrape endpoint listens; empty (the default): no endpoint, and no
    /// metrics recorded.
    #[serde(deserialize_with = "optional_address")]
    pub(crate) bind: Option<SocketAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogSettings {
    pub(crate) format: LogFormat,
}

/// How log lines are written (to standard error).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// For people: one line per event, colours on a terminal.
    Text,
    /// For machines: one JSON object per line, with the same fields.
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthSettings {
    /// Verified keys held in memory per replica; 0: none, and the server does not register.
    pub(crate) cache_capacity: usize,
    /// How long a replica may serve keys from memory without renewing its lease.
    pub(crate) lease_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSettings {
    pub(crate) bind: SocketAddr,
    pub(crate) insecure_cookies: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed: a list, or one string of
    /// comma-separated addresses and networks (the environment variable's form).
    #[serde(default, deserialize_with = "trusted_proxies")]
    pub(crate) trusted_proxies: TrustedProxies,
    /// The base of links the server hands out; empty: `http://` and `bind`.
    #[serde(default)]
    pub(crate) public_url: String,
}

impl ServerSettings {
    /// The base of the links the server hands out (invitations), without a trailing slash:
    /// `server.public_url`, else `http://` and `server.bind`, with 127.0.0.1 (or ::1) for an
    /// unspecified address. Never a request's `Host`, which a client chooses.
    pub(crate) fn public_url(&self) -> String {
        self.public_url_at(self.bind)
    }

    /// [`Self::public_url`] for a server that listens on `bound` (the port it got when
    /// `server.bind` asked for port 0).
    pub(crate) fn public_url_at(&self, bound: SocketAddr) -> String {
        let url = self.public_url.trim().trim_end_matches('/');
        if !url.is_empty() {
            return url.to_owned();
        }
        let mut bind = bound;
        if bind.ip().is_unspecified() {
            bind.set_ip(if bind.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("http://{bind}")
    }

    /// Why browsers elsewhere cannot sign in to the dashboard, when that is so: the session
    /// cookie is `Secure`, which a browser keeps only over HTTPS or from `localhost`, and a
    /// server that listens beyond loopback with no TLS proxy in front is reached over plain
    /// HTTP under another name.
    pub(crate) fn plain_http_warning(&self) -> Option<String> {
        let exposed = !self.bind.ip().is_loopback();
        (exposed && !self.insecure_cookies && self.trusted_proxies.is_empty()).then(|| {
            format!(
                "server.bind is {}, beyond loopback, with no TLS proxy in \
                 server.trusted_proxies: browsers keep the dashboard's Secure session cookie \
                 only over HTTPS (or at localhost), so signing in over plain HTTP from \
                 elsewhere will fail. Put a TLS proxy in front and list it in \
                 server.trusted_proxies, or, for development only, set \
                 server.insecure_cookies = true",
                self.bind
            )
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatabaseSettings {
    pub(crate) url: String,
    /// `full` (default) or `normal`, in any case; SQLite only.
    #[serde(deserialize_with = "sqlite_sync")]
    pub(crate) sqlite_synchronous: SqliteSync,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanSettings {
    pub(crate) monthly_events: u64,
    pub(crate) overage_cents_per_1000_events: u64,
    /// Days events are kept; a plan that does not say keeps them 30 days.
    #[serde(default = "default_retention_days")]
    pub(crate) retention_days: u32,
}

fn default_retention_days() -> u32 {
    Plan::FREE.retention_days
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitSettings {
    pub(crate) max_body_bytes: usize,
    /// Seconds a client has to send a whole request body.
    pub(crate) body_timeout_secs: u64,
    /// What requests in flight may hold together.
    pub(crate) memory_budget_bytes: usize,
    /// The part of the budget one account's requests may hold.
    pub(crate) account_share: f64,
    /// The largest single attribute value or top-level member of an event body.
    pub(crate) max_attribute_bytes: usize,
    /// A page of a trace's events ends before it passes this.
    pub(crate) max_response_bytes: usize,
    /// Most active keys one account may hold.
    pub(crate) max_active_keys: u32,
    /// Most pending invitations one account may have.
    pub(crate) max_pending_invitations: u32,
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

const DEFAULT_FILE: &str = "agentvista.toml";

impl Settings {
    /// Loads `path` (required when given) or `./agentvista.toml` (when present), over the
    /// defaults, under the environment.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, SettingsError> {
        let file = match path {
            Some(path) => File::from(path).format(FileFormat::Toml).required(true),
            None => File::new(DEFAULT_FILE, FileFormat::Toml).required(false),
        };
        let mut builder = Config::builder();
        for (name, plan) in Plan::defaults() {
            builder = builder
                .set_default(format!("plans.{name}.monthly_events"), plan.monthly_events)?
                .set_default(
                    format!("plans.{name}.overage_cents_per_1000_events"),
                    plan.overage_cents_per_1000_events,
                )?
                .set_default(format!("plans.{name}.retention_days"), plan.retention_days)?;
        }
        let settings: Settings = builder
            .set_default("server.bind", "127.0.0.1:8080")?
            .set_default("server.insecure_cookies", false)?
            .set_default("server.trusted_proxies", "")?
            .set_default("server.public_url", "")?
            .set_default("database.url", "sqlite://agentvista.db?mode=rwc")?
            .set_default("database.sqlite_synchronous", "full")?
            .set_default("default_plan", "free")?
            .set_default("limits.max_body_bytes", 5_242_880)?
            .set_default("limits.body_timeout_secs", 30)?
            .set_default("limits.memory_budget_bytes", 268_435_456)?
            .set_default("limits.account_share", 0.25)?
            .set_default("limits.max_attribute_bytes", 1_048_576)?
            .set_default("limits.max_response_bytes", 8_388_608)?
            .set_default("limits.max_active_keys", 1000)?
            .set_default("limits.max_pending_invitations", 100)?
            .set_default("auth.cache_capacity", 100_000)?
            .set_default("metrics.bind", "")?
            .set_default("log.format", "text")?
            .set_default("billing.self_serve_plans", "")?
            .set_default("retention.interval_secs", 3600)?
            .set_default("retention.batch_size", 1000)?
            .set_default("audit.retention_days", 400)?
            .set_default(
                "auth.lease_ms",
                u64::try_from(DEFAULT_LEASE.as_millis()).unwrap_or(3_000),
            )?
            .add_source(file)
            .add_source(
                Environment::with_prefix("AGENTVISTA")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| SettingsError::Invalid {
            key,
            problem: problem.to_owned(),
        };
        let public = self.server.public_url.trim();
        if !(public.is_empty() || public.starts_with("http://") || public.starts_with("https://")) {
            return Err(invalid(
                "server.public_url",
                "must start with http:// or https://, e.g. https://agentvista.example.com",
            ));
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "expected a sqlite://, postgres:// or postgresql:// URL",
            ));
        }
        if !self.plans.contains_key(&self.default_plan) {
            return Err(SettingsError::Invalid {
                key: "default_plan",
                problem: format!("no plan named {:?} under [plans]", self.default_plan),
            });
        }
        if self.limits.max_body_bytes < 1024 {
            return Err(invalid("limits.max_body_bytes", "must be at least 1024"));
        }
        if !(1..=3600).contains(&self.limits.body_timeout_secs) {
            return Err(invalid("limits.body_timeout_secs", "must be 1 to 3600"));
        }
        if self.limits.memory_budget_bytes < 1024 * 1024 {
            return Err(invalid(
                "limits.memory_budget_bytes",
                "must be at least 1048576 (1 MiB)",
            ));
        }
        if !(self.limits.account_share > 0.0 && self.limits.account_share <= 1.0) {
            return Err(invalid(
                "limits.account_share",
                "must be more than 0 and at most 1",
            ));
        }
        if !(1024..=self.limits.max_body_bytes).contains(&self.limits.max_attribute_bytes) {
            return Err(invalid(
                "limits.max_attribute_bytes",
                "must be 1024 to limits.max_body_bytes",
            ));
        }
        if self.limits.max_response_bytes < 64 * 1024 {
            return Err(invalid(
                "limits.max_response_bytes",
                "must be at least 65536 (64 KiB)",
            ));
        }
        if let Some(name) = self
            .billing
            .self_serve_plans
            .iter()
            .find(|name| !self.plans.contains_key(*name))
        {
            return Err(SettingsError::Invalid {
                key: "billing.self_serve_plans",
                problem: format!("no plan named {name:?} under [plans]"),
            });
        }
        if !(1..=1_000_000).contains(&self.limits.max_active_keys) {
            return Err(invalid("limits.max_active_keys", "must be 1 to 1000000"));
        }
        if !(1..=10_000).contains(&self.limits.max_pending_invitations) {
            return Err(invalid(
                "limits.max_pending_invitations",
                "must be 1 to 10000",
            ));
        }
        self.http_config()
            .check_memory()
            .map_err(|problem| SettingsError::Invalid {
                key: "limits.memory_budget_bytes",
                problem,
            })?;
        if !(100..=60_000).contains(&self.auth.lease_ms) {
            return Err(invalid("auth.lease_ms", "must be 100 to 60000"));
        }
        if let Some(name) = self
            .plans
            .iter()
            .find(|(_, plan)| !(1..=36_500).contains(&plan.retention_days))
            .map(|(name, _)| name)
        {
            return Err(SettingsError::Invalid {
                key: "plans.<name>.retention_days",
                problem: format!("plan {name:?}: must be 1 to 36500 days"),
            });
        }
        // At most three parameters per row in a batch's statements: below both databases'
        // limits (SQLite's 32766).
        if !(1..=10_000).contains(&self.retention.batch_size) {
            return Err(invalid("retention.batch_size", "must be 1 to 10000"));
        }
        if self.audit.retention_days > 36_500 {
            return Err(invalid(
                "audit.retention_days",
                "must be 0 (keep for ever) to 36500 days",
            ));
        }
        if self.auth.cache_capacity > 10_000_000 {
            return Err(invalid("auth.cache_capacity", "must be at most 10000000"));
        }
        Ok(())
    }

    /// How the retention sweep runs: the configured batch and audit retention, the store's
    /// pause and context grace.
    pub(crate) fn sweep(&self) -> Sweep {
        Sweep {
            batch: self.retention.batch_size,
            audit_retention: (self.audit.retention_days > 0)
                .then(|| chrono::TimeDelta::days(i64::from(self.audit.retention_days))),
            ..Sweep::default()
        }
    }

    pub(crate) fn store_options(&self) -> StoreOptions {
        StoreOptions {
            sqlite_sync: self.database.sqlite_synchronous,
            lease: std::time::Duration::from_millis(self.auth.lease_ms),
            max_active_keys: self.limits.max_active_keys,
            max_pending_invitations: self.limits.max_pending_invitations,
            ..StoreOptions::default()
        }
    }

    pub(crate) fn http_config(&self) -> HttpConfig {
        HttpConfig {
            insecure_cookies: self.server.insecure_cookies,
            public_url: self.server.public_url(),
            body: BodyLimits {
                max_bytes: self.limits.max_body_bytes,
                timeout: std::time::Duration::from_secs(self.limits.body_timeout_secs),
            },
            memory: BudgetLimits {
                memory_budget_bytes: self.limits.memory_budget_bytes,
                account_share: self.limits.account_share,
                ..BudgetLimits::default()
            },
            max_response_bytes: self.limits.max_response_bytes,
            caps: Caps {
                max_attribute_bytes: self.limits.max_attribute_bytes,
            },
            plans: self
                .plans
                .iter()
                .map(|(name, p)| {
                    let plan = Plan {
                        monthly_events: p.monthly_events,
                        overage_cents_per_1000_events: p.overage_cents_per_1000_events,
                        retention_days: p.retention_days,
                    };
                    (name.clone(), plan)
                })
                .collect(),
            default_plan: self.default_plan.clone(),
            trusted_proxies: self.server.trusted_proxies.clone(),
            self_serve_plans: self.billing.self_serve_plans.clone(),
            ..HttpConfig::default()
        }
    }
}

/// `server.trusted_proxies`: `["10.0.0.1", "10.1.0.0/16"]`, or the same as one string,
/// `"10.0.0.1,10.1.0.0/16"`.
fn trusted_proxies<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TrustedProxies, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entries {
        Joined(String),
        Listed(Vec<String>),
    }
    match Entries::deserialize(deserializer)? {
        Entries::Joined(text) => text.parse(),
        Entries::Listed(entries) => TrustedProxies::new(entries.iter().map(String::as_str)),
    }
    .map_err(serde::de::Error::custom)
}

/// `billing.self_serve_plans`: `["free", "pro"]`, or the same as one string, `"free,pro"`;
/// empty for none. `true` and `false` (what it once was) are refused with what it is now.
fn plan_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Plans {
        Switch(#[allow(dead_code, reason = "only refused")] bool),
        Joined(String),
        Listed(Vec<String>),
    }
    let now_a_list = || {
        serde::de::Error::custom(
            "billing.self_serve_plans is now a list of plan names, e.g. [\"free\", \"pro\"]",
        )
    };
    let names = match Plans::deserialize(deserializer)? {
        Plans::Switch(_) => return Err(now_a_list()),
        Plans::Joined(text) if matches!(text.trim(), "true" | "false") => {
            return Err(now_a_list());
        }
        Plans::Joined(text) => text.split(',').map(str::to_owned).collect(),
        Plans::Listed(names) => names,
    };
    Ok(names
        .into_iter()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect())
}

/// `metrics.bind`: an address, or empty for none.
fn optional_address<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom("expected an address such as 127.0.0.1:9464, or empty")
    })
}

/// `database.sqlite_synchronous`: `full` or `normal`, in any case.
fn sqlite_sync<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SqliteSync, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.to_ascii_lowercase().as_str() {
        "full" => Ok(SqliteSync::Full),
        "normal" => Ok(SqliteSync::Normal),
        _ => Err(serde::de::Error::custom("expected full or normal")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sync {
        #[serde(deserialize_with = "sqlite_sync")]
        value: SqliteSync,
    }

    fn sync(text: &str) -> Result<SqliteSync, serde_json::Error> {
        serde_json::from_value::<Sync>(serde_json::json!({ "value": text })).map(|s| s.value)
    }

    #[test]
    fn sqlite_synchronous_takes_full_or_normal_in_any_case() {
        assert_eq!(sync("full").unwrap(), SqliteSync::Full);
        assert_eq!(sync("NORMAL").unwrap(), SqliteSync::Normal);
        assert_eq!(sync("Normal").unwrap(), SqliteSync::Normal);
        let err = sync("sometimes").unwrap_err().to_string();
        assert!(err.contains("expected full or normal"), "{err}");
    }

    #[test]
    fn a_bind_address_is_parsed_once_and_a_bad_one_names_its_key() {
        let server = |bind: &str| {
            Config::builder()
                .set_override("bind", bind)
                .and_then(|c| c.set_override("insecure_cookies", false))
                .and_then(|c| c.build())
                .and_then(Config::try_deserialize::<ServerSettings>)
        };
        let parsed = server("127.0.0.1:0").unwrap();
        assert_eq!(parsed.bind, SocketAddr::from(([127, 0, 0, 1], 0)));
        let err = server("nowhere").unwrap_err().to_string();
        assert!(err.contains("`bind`"), "{err}");
    }

    #[test]
    fn plain_http_beyond_loopback_is_warned_about_unless_cookies_or_a_proxy_allow_it() {
        let server = |bind: &str, insecure: bool, proxies: &str| ServerSettings {
            bind: bind.parse().unwrap(),
            insecure_cookies: insecure,
            trusted_proxies: TrustedProxies::new([proxies]).unwrap(),
            public_url: String::new(),
        };
        for bind in ["0.0.0.0:8080", "[::]:8080", "192.0.2.7:8080"] {
            let warning = server(bind, false, "").plain_http_warning();
            let warning = warning.unwrap_or_else(|| panic!("{bind}: no warning"));
            assert!(warning.contains(bind), "{warning}");
            assert!(
                warning.contains("server.insecure_cookies = true"),
                "{warning}"
            );
            assert!(
                server(bind, true, "").plain_http_warning().is_none(),
                "{bind}"
            );
            assert!(
                server(bind, false, "10.0.0.1")
                    .plain_http_warning()
                    .is_none(),
                "{bind}"
            );
        }
        for bind in ["127.0.0.1:8080", "[::1]:8080"] {
            assert!(
                server(bind, false, "").plain_http_warning().is_none(),
                "{bind}"
            );
        }
    }

    #[test]
    fn links_use_the_public_url_else_the_bind_address_reachable_from_this_host() {
        let server = |bind: &str, public_url: &str| ServerSettings {
            bind: bind.parse().unwrap(),
            insecure_cookies: false,
            trusted_proxies: TrustedProxies::default(),
            public_url: public_url.to_owned(),
        };
        let cases = [
            ("127.0.0.1:8080", "", "http://127.0.0.1:8080"),
            ("0.0.0.0:9000", "", "http://127.0.0.1:9000"),
            ("[::]:9000", "", "http://[::1]:9000"),
            ("192.0.2.7:80", "", "http://192.0.2.7:80"),
            (
                "0.0.0.0:9000",
                "https://av.example.com/",
                "https://av.example.com",
            ),
        ];
        for (bind, public_url, want) in cases {
            assert_eq!(
                server(bind, public_url).public_url(),
                want,
                "{bind} {public_url}"
            );
        }
    }

    #[test]
    fn trusted_proxies_are_a_list_or_one_comma_separated_string() {
        let server = |key: &str, value: config::Value| {
            Config::builder()
                .set_override("bind", "127.0.0.1:0")
                .and_then(|c| c.set_override("insecure_cookies", false))
                .and_then(|c| c.set_override(key, value))
                .and_then(|c| c.build())
                .and_then(Config::try_deserialize::<ServerSettings>)
        };
        let want: TrustedProxies = "10.0.0.1,10.1.0.0/16".parse().unwrap();
        let joined = server("trusted_proxies", "10.0.0.1, 10.1.0.0/16".into()).unwrap();
        assert_eq!(joined.trusted_proxies, want);
        let listed = server(
            "trusted_proxies",
            vec!["10.0.0.1".to_owned(), "10.1.0.0/16".to_owned()].into(),
        )
        .unwrap();
        assert_eq!(listed.trusted_proxies, want);
        let err = server("trusted_proxies", "proxy.local".into())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("proxy.local"), "{err}");
        let none = server("unused", "".into()).err();
        assert!(none.is_some(), "unknown keys are refused");
    }

    #[test]
    fn metrics_bind_is_empty_for_off_or_an_address_and_log_format_text_or_json() {
        let read = |bind: &str, format: &str| {
            Config::builder()
                .set_override("metrics.bind", bind)
                .and_then(|c| c.set_override("log.format", format))
                .and_then(|c| c.build())
                .and_then(|c| {
                    Ok((
                        c.get::<MetricsSettings>("metrics")?,
                        c.get::<LogSettings>("log")?,
                    ))
                })
        };
        let (metrics, log) = read("", "text").unwrap();
        assert_eq!((metrics.bind, log.format), (None, LogFormat::Text));
        let (metrics, log) = read("127.0.0.1:9464", "json").unwrap();
        assert_eq!(metrics.bind, Some(SocketAddr::from(([127, 0, 0, 1], 9464))));
        assert_eq!(log.format, LogFormat::Json);
        let err = read("localhost", "text").err().unwrap().to_string();
        assert!(err.contains("127.0.0.1:9464"), "{err}");
        assert!(read("", "yaml").is_err());
    }

    #[test]
    fn self_serve_plans_are_a_list_of_configured_plans() {
        let plans = |toml: &str| load(toml).map(|s| s.billing.self_serve_plans);
        assert_eq!(plans("").unwrap(), Vec::<String>::new());
        assert_eq!(
            plans("[billing]\nself_serve_plans = [\"free\", \"pro\"]").unwrap(),
            ["free", "pro"]
        );
        assert_eq!(
            plans("[billing]\nself_serve_plans = \"free, pro\"").unwrap(),
            ["free", "pro"]
        );
        for old in ["true", "false", "\"true\""] {
            let err = plans(&format!("[billing]\nself_serve_plans = {old}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("billing.self_serve_plans is now a list of plan names"),
                "{old}: {err}"
            );
        }
        let err = plans("[billing]\nself_serve_plans = [\"free\", \"gold\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("billing.self_serve_plans") && err.contains("gold"),
            "{err}"
        );
    }

    fn load(toml: &str) -> Result<Settings, SettingsError> {
        let dir = std::env::temp_dir().join(format!(
            "agentvista-settings-{}-{}",
            std::process::id(),
            toml.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agentvista.toml");
        std::fs::write(&path, toml).unwrap();
        let loaded = Settings::load(Some(&path));
        std::fs::remove_dir_all(&dir).unwrap();
        loaded
    }

    #[test]
    fn plans_keep_events_30_or_90_days_by_default_and_a_day_at_least() {
        let settings =
            load("[plans.team]\nmonthly_events = 10\noverage_cents_per_1000_events = 0\n").unwrap();
        let days = |name: &str| settings.plans[name].retention_days;
        assert_eq!((days("free"), days("pro"), days("team")), (30, 90, 30));
        assert_eq!(
            settings
                .http_config()
                .plans
                .get("pro")
                .unwrap()
                .retention_days,
            90
        );
        assert_eq!(
            (
                settings.retention.interval_secs,
                settings.retention.batch_size
            ),
            (3600, 1000)
        );
        let refused = load("[plans.free]\nretention_days = 0\n").unwrap_err();
        assert!(
            refused.to_string().contains("retention_days") && refused.to_string().contains("free"),
            "{refused}"
        );
    }
}
