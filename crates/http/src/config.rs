//! [`HttpConfig`]: what the HTTP layer takes from configuration, with the contract's defaults.

use agentvista_ingest::Caps;
use agentvista_quota::{Plan, Plans};
use chrono::TimeDelta;

use crate::{BodyLimits, BudgetLimits, ThrottleConfig, TrustedProxies};

/// What the HTTP layer needs from configuration. The binary builds it from `agentvista.toml`
/// and `AGENTVISTA__` variables; an embedding service builds it however it likes.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Leave `Secure` off the session cookie (for plain-HTTP development only).
    pub insecure_cookies: bool,
    /// Largest request body (after decompression too) and how long it may take to arrive.
    pub body: BodyLimits,
    /// The memory budget of requests in flight, and one account's share of it.
    pub memory: BudgetLimits,
    /// The most bytes a page of a trace's events may take (at least one event is sent).
    pub max_response_bytes: usize,
    /// Structural caps on what a request may carry (`limits.max_attribute_bytes`).
    pub caps: Caps,
    /// Throttles on login and first-run setup.
    pub throttle: ThrottleConfig,
    /// How long a dashboard session lasts after login.
    pub session_ttl: TimeDelta,
    /// Plans by name.
    pub plans: Plans,
    /// The plan of new accounts.
    pub default_plan: String,
    /// Reverse proxies whose `X-Forwarded-For` gives the client's address (for the login and
    /// setup throttles); none by default.
    pub trusted_proxies: TrustedProxies,
    /// The plans a dashboard session may move its account to, by name (none by default: the
    /// operator's CLI does it). An account on a plan outside the list cannot move by itself.
    pub self_serve_plans: Vec<String>,
    /// The base of links the server hands out (invitations), without a trailing slash; never
    /// taken from a request's `Host`.
    pub public_url: String,
}

impl Default for HttpConfig {
    /// The contract's defaults: 5 MiB bodies, a 256 MiB memory budget (a quarter per account),
    /// 8 MiB pages, secure cookies, `free` (50,000 events, hard
    /// limit) and `pro` (1,000,000 events, 50¢ per 1,000 more); sessions last 7 days.
    fn default() -> Self {
        HttpConfig {
            insecure_cookies: false,
            body: BodyLimits::default(),
            memory: BudgetLimits::default(),
            max_response_bytes: 8 * 1024 * 1024,
            caps: Caps::default(),
            throttle: ThrottleConfig::default(),
            session_ttl: TimeDelta::days(7),
            plans: Plans::new(Plan::defaults()),
            default_plan: "free".to_owned(),
            trusted_proxies: TrustedProxies::default(),
            self_serve_plans: Vec::new(),
            public_url: "http://127.0.0.1:8080".to_owned(),
        }
    }
}

impl HttpConfig {
    /// Whether the costliest request the limits let in fits one account's share of the memory
    /// budget once decoded ([`agentvista_ingest::expansion::worst`] of
    /// `limits.max_body_bytes`, every structural cap reached at once), else every such request
    /// would be refused as `overloaded`.
    ///
    /// ```
    /// let mut config = agentvista_http::HttpConfig::default();
    /// assert!(config.check_memory().is_ok());
    /// config.body.max_bytes = 10 * 1024 * 1024;
    /// assert!(config.check_memory().unwrap_err().contains("limits.max_body_bytes"));
    /// ```
    ///
    /// # Errors
    /// A sentence naming the three settings and their values.
    pub fn check_memory(&self) -> Result<(), String> {
        let need = agentvista_ingest::expansion::worst(self.body.max_bytes);
        let share = self.memory.account_bytes();
        if need > share {
            return Err(format!(
                "decoding a request of limits.max_body_bytes ({}) may cost {need} bytes, more \
                 than limits.account_share ({}) × limits.memory_budget_bytes ({}) = {share}: \
                 lower the first or raise the others",
                self.body.max_bytes, self.memory.account_share, self.memory.memory_budget_bytes
            ));
        }
        Ok(())
    }

    /// Whether a session on `current` may move its account to `plan` by itself: both are in
    /// `self_serve_plans`.
    #[must_use]
    pub fn may_switch(&self, current: &str, plan: &str) -> bool {
        let listed = |name: &str| self.self_serve_plans.iter().any(|p| p == name);
        listed(current) && listed(plan)
    }
}
