//! [`HttpConfig`]: what the HTTP layer takes from configuration, with the contract's defaults.

use agentvista_quota::{Plan, Plans};
use chrono::TimeDelta;

use crate::{BodyLimits, ThrottleConfig, TrustedProxies};

/// What the HTTP layer needs from configuration. The binary builds it from `agentvista.toml`
/// and `AGENTVISTA__` variables; an embedding service builds it however it likes.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Leave `Secure` off the session cookie (for plain-HTTP development only).
    pub insecure_cookies: bool,
    /// Largest request body (after decompression too) and how long it may take to arrive.
    pub body: BodyLimits,
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
    /// Whether a dashboard session may move its account to another configured plan (off by
    /// default: the operator's CLI does it).
    pub self_serve_plans: bool,
}

impl Default for HttpConfig {
    /// The contract's defaults: 5 MiB bodies, secure cookies, `free` (50,000 events, hard
    /// limit) and `pro` (1,000,000 events, 50¢ per 1,000 more); sessions last 7 days.
    fn default() -> Self {
        HttpConfig {
            insecure_cookies: false,
            body: BodyLimits::default(),
            throttle: ThrottleConfig::default(),
            session_ttl: TimeDelta::days(7),
            plans: Plans::new(Plan::defaults()),
            default_plan: "free".to_owned(),
            trusted_proxies: TrustedProxies::default(),
            self_serve_plans: false,
        }
    }
}
