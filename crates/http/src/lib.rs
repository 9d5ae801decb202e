#![doc = include_str!("../README.md")]

pub mod auth;
mod body;
mod dashboard;
mod error;
mod handlers;
mod log;
pub mod password;
mod throttle;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use actix_web::{Resource, web};
use agentvista_quota::{Plan, Plans};
use agentvista_store::{KeyId, Store};
use chrono::{DateTime, TimeDelta, Utc};

pub use auth::{Auth, KeyLookup, Principal, SessionOnly};
pub use body::Body;
pub use error::{ApiError, error_chain};
pub use handlers::keys::{CreatedKey, KeyObject};
pub use log::request_log;
pub use throttle::{Bucket, ThrottleConfig};

/// What the HTTP layer needs from configuration. The binary builds it from `agentvista.toml`
/// and `AGENTVISTA__` variables; an embedding service builds it however it likes.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Leave `Secure` off the session cookie (for plain-HTTP development only).
    pub insecure_cookies: bool,
    /// Largest request body accepted, in bytes (after decompression too).
    pub max_body_bytes: usize,
    /// How long a client may take to send a whole request body (400, connection closed).
    pub body_timeout: std::time::Duration,
    /// Throttles on login and first-run setup.
    pub throttle: ThrottleConfig,
    /// How long a dashboard session lasts after login.
    pub session_ttl: TimeDelta,
    /// Plans by name.
    pub plans: BTreeMap<String, Plan>,
    /// The plan of new accounts.
    pub default_plan: String,
}

impl Default for HttpConfig {
    /// The contract's defaults: 5 MiB bodies, secure cookies, `free` (50,000 events, hard
    /// limit) and `pro` (1,000,000 events, 50¢ per 1,000 more); sessions last 7 days.
    fn default() -> Self {
        let plans = BTreeMap::from([
            (
                "free".to_owned(),
                Plan {
                    monthly_events: 50_000,
                    overage_cents_per_1000_events: 0,
                },
            ),
            (
                "pro".to_owned(),
                Plan {
                    monthly_events: 1_000_000,
                    overage_cents_per_1000_events: 50,
                },
            ),
        ]);
        HttpConfig {
            insecure_cookies: false,
            max_body_bytes: 5 * 1024 * 1024,
            body_timeout: std::time::Duration::from_secs(30),
            throttle: ThrottleConfig::default(),
            session_ttl: TimeDelta::days(7),
            plans,
            default_plan: "free".to_owned(),
        }
    }
}

/// Everything the handlers share: the store, the key lookup, configuration.
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) keys: Arc<dyn KeyLookup>,
    pub(crate) config: HttpConfig,
    /// The configured plans, as the ledger reads them.
    pub(crate) plans: Plans,
    /// When this replica last asked the lookup to note each key's use.
    touched: Mutex<HashMap<KeyId, DateTime<Utc>>>,
    /// A real argon2id hash of nothing anyone knows, checked against when the e-mail is
    /// unknown so that a login fails in the same time either way.
    pub(crate) dummy_password_hash: String,
    /// Password attempts per address and account, and hashes at once.
    pub(crate) throttles: throttle::Throttles,
    /// The last readiness check, reused for a second.
    pub(crate) readiness: handlers::health::Readiness,
}

impl AppState {
    /// State over `store`, which also serves as the key lookup.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the start-up password hash cannot be made (no randomness).
    pub fn new(store: Store, config: HttpConfig) -> Result<Self, ApiError> {
        let mut unguessable = [0u8; 24];
        getrandom::fill(&mut unguessable).map_err(ApiError::internal)?;
        let dummy_password_hash =
            password::hash_password(&hex::encode(unguessable)).map_err(ApiError::internal)?;
        let throttles = throttle::Throttles::new(config.throttle);
        let plans = Plans::new(config.plans.clone());
        Ok(AppState {
            keys: Arc::new(store.clone()),
            store,
            plans,
            config,
            touched: Mutex::new(HashMap::new()),
            dummy_password_hash,
            throttles,
            readiness: handlers::health::Readiness::default(),
        })
    }

    /// Replaces the key lookup (the port) with another implementation.
    #[must_use]
    pub fn with_key_lookup(mut self, keys: Arc<dyn KeyLookup>) -> Self {
        self.keys = keys;
        self
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Asks the lookup to note a key's use, off the request path and at most once a minute
    /// per key from this replica.
    pub(crate) fn note_key_use(&self, id: KeyId, now: DateTime<Utc>) {
        {
            let Ok(mut touched) = self.touched.lock() else {
                return;
            };
            if touched
                .get(&id)
                .is_some_and(|at| now - *at < agentvista_store::LAST_USED_GRANULARITY)
            {
                return;
            }
            touched.insert(id, now);
        }
        let keys = Arc::clone(&self.keys);
        actix_web::rt::spawn(async move {
            if let Err(err) = keys.touch_last_used(id, now).await {
                tracing::warn!(error = %error_chain(&err), "could not record a key's last use");
            }
        });
    }

    pub(crate) fn forget_key(&self, id: KeyId) {
        if let Ok(mut touched) = self.touched.lock() {
            touched.remove(&id);
        }
    }
}

/// A resource answering at `path` with and without a trailing slash, and with the JSON 404
/// for methods it does not serve.
fn resource(path: &str) -> Resource {
    let path = path.trim_end_matches('/');
    web::resource([path.to_owned(), format!("{path}/")])
        .default_service(web::to(handlers::not_found))
}

/// Mounts the whole API on an actix-web app or scope:
///
/// ```no_run
/// # async fn run(store: agentvista_store::Store) -> std::io::Result<()> {
/// use actix_web::{App, HttpServer, middleware::from_fn, web};
/// use agentvista_http::{AppState, HttpConfig, configure, request_log};
///
/// let state = web::Data::new(AppState::new(store, HttpConfig::default()).expect("state"));
/// HttpServer::new(move || {
///     App::new()
///         .wrap(from_fn(request_log))
///         .configure(|cfg| configure(cfg, state.clone()))
/// })
/// .bind(("127.0.0.1", 8080))?
/// .run()
/// .await
/// # }
/// ```
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    use agentvista_ingest::Signal;
    use handlers::{health, ingest, keys, session, setup, traces, usage};
    let otlp = |signal: Signal| {
        web::post().to(move |state, req, body| ingest::otlp(state, req, body, signal))
    };
    cfg.app_data(state)
        .service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/api/v1/setup").route(web::post().to(setup::setup)))
        .service(resource("/api/v1/auth/login").route(web::post().to(session::login)))
        .service(resource("/api/v1/auth/logout").route(web::post().to(session::logout)))
        .service(resource("/api/v1/auth/session").route(web::get().to(session::current)))
        .service(resource("/api/v1/me/api-keys/ping").route(web::get().to(keys::ping)))
        .service(
            resource("/api/v1/me/api-keys")
                .route(web::get().to(keys::list))
                .route(web::post().to(keys::create)),
        )
        .service(resource("/api/v1/me/api-keys/{key_id}").route(web::delete().to(keys::revoke)))
        // Before "/api/v1/traces/{trace_id}", which would otherwise take "batch" for an id; a
        // GET there still reads the trace whose id is "batch".
        .service(
            resource("/api/v1/traces/batch")
                .route(web::post().to(ingest::batch))
                .route(web::get().to(traces::batch_trace)),
        )
        .service(resource("/otlp/v1/traces").route(otlp(Signal::Traces)))
        .service(resource("/otlp/v1/logs").route(otlp(Signal::Logs)))
        .service(resource("/otlp/v1/metrics").route(otlp(Signal::Metrics)))
        .service(resource("/api/v1/traces").route(web::get().to(traces::list)))
        .service(resource("/api/v1/traces/{trace_id}").route(web::get().to(traces::events)))
        .service(resource("/api/v1/me/usage").route(web::get().to(usage::usage)))
        .service(
            resource("/api/v1/me/billing/spend-cap").route(web::put().to(usage::set_spend_cap)),
        )
        .configure(dashboard::routes)
        .default_service(web::to(handlers::not_found));
}
