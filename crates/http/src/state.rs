//! [`AppState`]: what every handler shares — the store, the key authentication, the
//! configuration, the throttles.

use std::sync::Arc;
use std::time::Instant;

use actix_web::web;
use agentvista_store::Store;

use agentvista_keys::password::{Password, PasswordHash, hash_password};

use tokio::sync::Mutex;

use crate::{ApiError, HttpConfig, KeyAuth, KeyLookup, MemoryBudget, throttle};

/// The last readiness check: when it started and whether the store was ready (reused for a
/// second, so that a flood of probes costs one check).
pub(crate) type Readiness = Mutex<Option<(Instant, bool)>>;

/// Everything the handlers share: the store, the key authentication, configuration.
pub struct AppState {
    pub(crate) store: Store,
    /// Verifies keys and revokes them, through the lookup port (the store by default).
    pub(crate) keys: web::Data<KeyAuth>,
    pub(crate) config: HttpConfig,
    /// A real argon2id hash of nothing anyone knows, checked against when the e-mail is
    /// unknown so that a login fails in the same time either way.
    pub(crate) dummy_password_hash: PasswordHash,
    /// Password attempts per address and account, and hashes at once.
    pub(crate) throttles: throttle::Throttles,
    /// The last readiness check, reused for a second.
    pub(crate) readiness: Readiness,
    /// What requests in flight may hold together.
    pub(crate) budget: MemoryBudget,
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
            hash_password(&Password::new(hex::encode(unguessable))).map_err(ApiError::internal)?;
        let throttles = throttle::Throttles::new(config.throttle);
        Ok(AppState {
            keys: web::Data::new(
                KeyAuth::with_unknown_keys(
                    Arc::new(store.clone()),
                    config.throttle.unknown_keys_per_address,
                )
                .behind(config.trusted_proxies.clone()),
            ),
            store,
            budget: MemoryBudget::new(config.memory),
            config,
            dummy_password_hash,
            throttles,
            readiness: Readiness::default(),
        })
    }

    /// Replaces the key lookup (the port) with another implementation.
    #[must_use]
    pub fn with_key_lookup(mut self, keys: Arc<dyn KeyLookup>) -> Self {
        self.keys = web::Data::new(
            KeyAuth::with_unknown_keys(keys, self.config.throttle.unknown_keys_per_address)
                .behind(self.config.trusted_proxies.clone()),
        );
        self
    }

    /// How many passwords this process has checked (an argon2 verification or hash each):
    /// every login attempt that passes the throttles checks exactly one, whether its e-mail
    /// address is known or not.
    #[must_use]
    pub fn password_checks(&self) -> u64 {
        self.throttles.password_checks()
    }

    /// The memory budget of requests in flight.
    #[must_use]
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }
}
