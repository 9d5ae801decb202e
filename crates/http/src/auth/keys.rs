//! [`KeyAuth`]: what `Auth<…>` needs to verify an API key — the lookup port, and the
//! per-replica throttle on noting a key's last use — and the one door to revoking a key.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::HttpRequest;
use agentvista_keys::{
    AccountClosing, AccountId, Actor, ApiKey, Asked, KeyHash, KeyId, KeyLookup, KeyStatus,
    LAST_USED_GRANULARITY, LeakReport, LookupError, Origin, ReportedKey, Revoked, Role, RollError,
    RollTerms, Rolled, Scope,
};
use chrono::{DateTime, Utc};

use super::rate_limits::RateLimits;
use super::refusals::{self, Refusal};
use super::{Credential, Principal};
use crate::rate_limit::RateLimitStatus;
use crate::throttle::UnknownKeys;
use crate::{ApiError, error_chain};
use crate::{Bucket, ThrottleConfig, TrustedProxies};

/// The smallest size of the last-use map at which it is pruned.
const PRUNE_AT_LEAST: usize = 1024;

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
    /// Where notes of a key's use run: the runtime this was built on, when there was one.
    notes: Option<tokio::runtime::Handle>,
    /// The size of `touched` at which it is next pruned.
    prune_at: AtomicUsize,
    /// The buckets of the keys with a rate limit.
    rates: RateLimits,
    /// Lookups that found no key, per client address.
    unknown: UnknownKeys,
    /// Whose `X-Forwarded-For` names the client the unknown-key throttle counts.
    proxies: TrustedProxies,
}

impl KeyAuth {
    /// Authentication over `lookup`, with the default throttle on unknown keys
    /// ([`ThrottleConfig::unknown_keys_per_address`](crate::ThrottleConfig)).
    #[must_use]
    pub fn new(lookup: Arc<dyn KeyLookup>) -> Self {
        Self::with_unknown_keys(lookup, ThrottleConfig::default().unknown_keys_per_address)
    }

    /// Authentication over `lookup`, with at most `unknown` lookups that find no key per
    /// client address.
    ///
    /// Built inside a Tokio runtime (as `main` does before starting the HTTP server), it
    /// notes keys' uses on that runtime, which outlives the HTTP workers: a note still being
    /// written when the workers stop goes on there, and is at worst cancelled with that
    /// runtime, inside it — never dropped with a worker's runtime while it holds a database
    /// connection, which panics in the driver. Built outside a runtime, or inside a worker
    /// (in `HttpServer::new`'s factory), it notes them on the worker that verified the key.
    /// A note lost at shutdown costs only that key's `last_used_at`, by at most a minute.
    #[must_use]
    pub fn with_unknown_keys(lookup: Arc<dyn KeyLookup>, unknown: Bucket) -> Self {
        KeyAuth {
            lookup,
            touched: Mutex::new(HashMap::new()),
            notes: tokio::runtime::Handle::try_current().ok(),
            prune_at: AtomicUsize::new(PRUNE_AT_LEAST),
            rates: RateLimits::default(),
            unknown: UnknownKeys::new(unknown),
            proxies: TrustedProxies::default(),
        }
    }

    /// The same, counting unknown keys by the client that `proxies` forward for (by default,
    /// the TCP peer).
    #[must_use]
    pub fn behind(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// The time expiry is judged against: the lookup's clock (the database's, for the
    /// store's replicas), else this host's.
    pub(crate) fn expiry_now(&self) -> DateTime<Utc> {
        self.lookup.expiry_clock().unwrap_or_else(Utc::now)
    }

    /// The client `req` came from, as the unknown-key throttle counts it.
    pub(crate) fn client_of(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.proxies.client_of(req)
    }

    /// The principal of the `Authorization` header `header`, sent from `address`: a Bearer
    /// key, well formed, known, active, within its rate limit (whose bucket's state comes back
    /// for the headers). Every refusal of the key is the same 401 `invalid_api_key`; its cause
    /// goes to the log with the prefix, never the key.
    ///
    /// # Errors
    /// 401 `invalid_api_key`, 429 `rate_limited`, 429 `too_many_attempts` for an address
    /// that sent too many unknown keys, or the lookup's failure (503 when the storage is
    /// unreachable).
    pub(crate) async fn verify(
        &self,
        header: &[u8],
        address: Option<IpAddr>,
    ) -> Result<(Principal, Option<RateLimitStatus>), ApiError> {
        let token = std::str::from_utf8(header)
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        let Some(token) = token else {
            tracing::info!(cause = "not a Bearer token", "API key refused");
            return Err(refused(Refusal::Malformed));
        };
        let key = ApiKey::parse(token).map_err(|cause| {
            tracing::info!(%cause, "API key refused before lookup");
            refused(Refusal::Malformed)
        })?;
        let (hash, prefix) = (key.hash(), key.prefix());
        drop(key);
        // Guessed keys cost a storage read each: an address that sent too many is refused
        // the reads, but not the answers memory holds (asked only then, off the usual path).
        if let Err(refused) = self.unknown.check(address)
            && !self.lookup.answers_from_memory(&hash)
        {
            tracing::info!(%prefix, "API key lookup refused: too many unknown keys from the address");
            return Err(refused);
        }
        let record = self.lookup.find_by_hash(&hash).await?;
        let Some(record) = record else {
            tracing::info!(%prefix, cause = "unknown key", "API key refused");
            self.unknown.missed(address);
            return Err(refused(Refusal::Unknown));
        };
        // Expiry on the lookup's clock (the database's, for the store's replicas); the
        // last use on this host's.
        let refusal = match record.status(self.expiry_now()) {
            KeyStatus::Active => None,
            KeyStatus::Revoked => Some(Refusal::Revoked),
            KeyStatus::Expired => Some(Refusal::Expired),
        };
        if let Some(refusal) = refusal {
            tracing::info!(%prefix, cause = refusal.as_str(), "API key refused");
            return Err(refused(refusal));
        }
        let rate = record
            .rate_limit
            .map(|limit| self.rates.check(record.id, limit))
            .transpose()
            .inspect_err(|_| tracing::info!(%prefix, "API key over its rate limit"))?;
        self.note_key_use(record.id, Utc::now());
        let principal = Principal {
            account_id: record.account_id,
            scopes: record.scopes,
            role: if record.scopes.contains(Scope::Admin) {
                Role::Admin
            } else {
                Role::Viewer
            },
            credential: Credential::Key {
                id: record.id,
                prefix: record.prefix,
            },
        };
        Ok((principal, rate))
    }

    /// Revokes key `id` of `account` on behalf of `by`, asked from `origin`, through the
    /// lookup port (so that whatever verifies keys hears of it, the audit entry commits with
    /// the revocation, and the answer waits for the revocation barrier); `None` when the
    /// account has no such key.
    ///
    /// # Errors
    /// [`LookupError`] from the port.
    pub async fn revoke(
        &self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
        origin: &Origin,
    ) -> Result<Option<Revoked>, LookupError> {
        let revoked = self.lookup.revoke_from(account, id, by, at, origin).await?;
        self.forget_use(&[id]);
        Ok(revoked)
    }

    /// Deletes an account through the lookup port: every key of it revoked, on every
    /// replica, before the answer; `None` when there is no such open account.
    ///
    /// # Errors
    /// [`LookupError`] from the port.
    pub async fn close_account(
        &self,
        closing: AccountClosing<'_>,
    ) -> Result<Option<u64>, LookupError> {
        self.lookup.close_account(closing).await
    }

    /// Rolls key `id` of `account` as `asked`, through the lookup port (so that whatever
    /// verifies keys hears of it, and the answer waits for the revocation barrier).
    ///
    /// # Errors
    /// [`RollError`] from the port.
    pub async fn roll(
        &self,
        account: AccountId,
        id: KeyId,
        terms: RollTerms,
        asked: Asked<'_>,
    ) -> Result<Rolled, RollError> {
        let rolled = self.lookup.roll(account, id, terms, asked).await?;
        if rolled.old.revoked_at.is_some() {
            self.forget_use(&[id]);
        }
        Ok(rolled)
    }

    /// Revokes every key among `candidates`, as a leak report from `origin` asks: strings that
    /// are not keys are skipped; each key found is revoked whatever its status, through the
    /// lookup port, in one go and behind one barrier, and comes back with whether it had been
    /// revoked before.
    ///
    /// # Errors
    /// [`LookupError`] from the port.
    pub(crate) async fn revoke_reported(
        &self,
        candidates: &[&str],
        source: Option<&str>,
        origin: &Origin,
    ) -> Result<Vec<ReportedKey>, LookupError> {
        let mut hashes: Vec<KeyHash> = candidates
            .iter()
            .filter_map(|candidate| ApiKey::parse(candidate.trim()).ok())
            .map(|key| key.hash())
            .collect();
        hashes.sort_unstable_by_key(|hash| *hash.as_bytes());
        hashes.dedup();
        let reported = self
            .lookup
            .revoke_leaked(LeakReport {
                hashes: &hashes,
                source,
                origin,
                at: Utc::now(),
            })
            .await?;
        let ids: Vec<KeyId> = reported.iter().map(|key| key.record.id).collect();
        self.forget_use(&ids);
        Ok(reported)
    }

    /// Forgets when this replica last noted the use of `ids` (revoked: never noted again).
    fn forget_use(&self, ids: &[KeyId]) {
        let mut touched = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            touched.remove(id);
        }
    }

    /// Asks the lookup to note a key's use, off the request path and at most once a minute
    /// per key from this replica.
    fn note_key_use(&self, id: KeyId, now: DateTime<Utc>) {
        {
            let mut touched = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
            if touched
                .get(&id)
                .is_some_and(|at| now - *at < LAST_USED_GRANULARITY)
            {
                return;
            }
            touched.insert(id, now);
            // Forget the keys not used for a while, so that the map holds the keys in use
            // rather than every key ever seen: at most once per doubling of its size.
            if touched.len() >= self.prune_at.load(Ordering::Relaxed) {
                touched.retain(|_, at| now - *at < LAST_USED_GRANULARITY);
                let next = (touched.len() * 2).max(PRUNE_AT_LEAST);
                self.prune_at.store(next, Ordering::Relaxed);
            }
        }
        let lookup = Arc::clone(&self.lookup);
        let note = async move {
            if let Err(err) = lookup.touch_last_used(id, now).await {
                tracing::warn!(error = %error_chain(&err), "could not record a key's last use");
            }
        };
        match &self.notes {
            Some(runtime) => drop(runtime.spawn(note)),
            None => drop(actix_web::rt::spawn(note)),
        }
    }
}

/// The one answer to every refused key, counted by its cause.
fn refused(refusal: Refusal) -> ApiError {
    refusals::count(refusal);
    ApiError::InvalidApiKey
}
