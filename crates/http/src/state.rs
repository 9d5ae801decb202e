//! [`AppState`]: what every handler shares — the store, the key lookup, the configuration,
//! the throttles — and the per-replica throttle on writing a key's last use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agentvista_quota::Plans;
use agentvista_store::{KeyId, Store};
use chrono::{DateTime, Utc};

use agentvista_keys::password::{Password, PasswordHash, hash_password};

use crate::{ApiError, HttpConfig, KeyLookup, error_chain, handlers, throttle};

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
    pub(crate) dummy_password_hash: PasswordHash,
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
            hash_password(&Password::new(hex::encode(unguessable))).map_err(ApiError::internal)?;
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
