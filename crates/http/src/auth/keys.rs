//! [`KeyAuth`]: what `Auth<…>` needs to verify an API key — the lookup port, and the
//! per-replica throttle on noting a key's last use — and the one door to revoking a key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use agentvista_keys::{AccountId, KeyId, KeyLookup, LAST_USED_GRANULARITY, LookupError, Revoked};
use chrono::{DateTime, Utc};

use crate::error_chain;

/// API-key authentication on its own. The AgentVista server registers it with its
/// [`AppState`](crate::AppState); a service that embeds only the extractors registers just
/// this, over its own key storage:
///
/// ```no_run
/// # fn lookup() -> std::sync::Arc<dyn agentvista_keys::KeyLookup> { unimplemented!() }
/// use actix_web::{App, HttpResponse, web};
/// use agentvista_http::auth::{Auth, Write};
/// use agentvista_http::KeyAuth;
///
/// let keys = web::Data::new(KeyAuth::new(lookup()));
/// let app = App::new().app_data(keys).route(
///     "/events",
///     web::post().to(|auth: Auth<Write>| async move {
///         HttpResponse::Ok().body(auth.principal.account_id.to_string())
///     }),
/// );
/// ```
///
/// See `crates/http/examples/embedded.rs` for a whole service, tested over HTTP.
pub struct KeyAuth {
    lookup: Arc<dyn KeyLookup>,
    /// When this replica last asked the lookup to note each key's use.
    touched: Mutex<HashMap<KeyId, DateTime<Utc>>>,
}

impl KeyAuth {
    /// Authentication over `lookup`.
    #[must_use]
    pub fn new(lookup: Arc<dyn KeyLookup>) -> Self {
        KeyAuth {
            lookup,
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// The lookup port, for reads.
    pub(crate) fn lookup(&self) -> &dyn KeyLookup {
        self.lookup.as_ref()
    }

    /// Revokes key `id` of `account` through the lookup port (so that whatever verifies keys
    /// hears of it); `None` when the account has no such key.
    ///
    /// # Errors
    /// [`LookupError`] from the port.
    pub async fn revoke(
        &self,
        account: AccountId,
        id: KeyId,
        at: DateTime<Utc>,
    ) -> Result<Option<Revoked>, LookupError> {
        let revoked = self.lookup.revoke(account, id, at).await?;
        self.touched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        Ok(revoked)
    }

    /// Asks the lookup to note a key's use, off the request path and at most once a minute
    /// per key from this replica.
    pub(crate) fn note_key_use(&self, id: KeyId, now: DateTime<Utc>) {
        {
            let mut touched = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
            if touched
                .get(&id)
                .is_some_and(|at| now - *at < LAST_USED_GRANULARITY)
            {
                return;
            }
            touched.insert(id, now);
        }
        let lookup = Arc::clone(&self.lookup);
        actix_web::rt::spawn(async move {
            if let Err(err) = lookup.touch_last_used(id, now).await {
                tracing::warn!(error = %error_chain(&err), "could not record a key's last use");
            }
        });
    }
}
