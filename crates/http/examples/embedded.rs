//! A service of its own that authenticates its routes with AgentVista keys.
//!
//! It mounts `Auth<Write>` and `Auth<Read>` on two routes of its own and keeps its keys in a
//! map in memory, behind the [`KeyLookup`] port — no AgentVista database holds them. The
//! extractors do the rest exactly as in the AgentVista server: the Bearer header, the key's
//! format and checksum, the lookup by SHA-256, expiry and revocation, the scope, and the
//! contract's JSON errors (401 `missing_api_key` or `invalid_api_key`, 403
//! `insufficient_scope`, 503 `unavailable`).
//!
//! ```sh
//! cargo run -p agentvista-http --example embedded      # prints two keys, listens on :8090
//! curl -i -X POST localhost:8090/events -H "Authorization: Bearer <the write key>"
//! cargo test -p agentvista-http --example embedded     # the tests at the bottom, over HTTP
//! ```
//!
//! The service registers a [`KeyAuth`] over its storage and nothing else of AgentVista: no
//! database, no `AppState`. The port speaks the domain's types (`agentvista_keys`), and
//! revocations and rolls go through it too ([`KeyAuth::revoke`], [`KeyAuth::roll`]), so a
//! storage that answered from a cache would hear of every change that can stop a key. Dashboard sessions are the AgentVista server's: here
//! a session cookie is no credential.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, PoisonError, RwLock};

use actix_web::{App, HttpResponse, HttpServer, web};
use agentvista_http::auth::{KeyLookup, LookupFuture, Read, Write};
use agentvista_http::{Auth, KeyAuth};
use agentvista_keys::{
    AccountId, Actor, ApiKey, Asked, Expiry, KeyHash, KeyId, KeyRecord, LookupError,
    MAX_ROLL_GRACE, Revoked, RollError, RollFuture, RollTerms, Rolled, Scopes,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// The service's own key storage: records by the SHA-256 of their key. The keys themselves
/// are never kept.
#[derive(Default)]
pub struct MemoryKeys {
    by_hash: RwLock<HashMap<KeyHash, KeyRecord>>,
    /// The keys rolled already (a key rolls once).
    rolled: RwLock<HashSet<KeyId>>,
}

impl MemoryKeys {
    /// Issues a key for `account` with `scopes`: the key is returned to be shown once, and
    /// only its hash and its record stay here.
    ///
    /// # Errors
    /// When the operating system gives no randomness.
    pub fn issue(
        &self,
        account: AccountId,
        name: &str,
        scopes: Scopes,
        now: DateTime<Utc>,
    ) -> Result<ApiKey, agentvista_keys::GenerateError> {
        let mut by_hash = self.by_hash.write().unwrap_or_else(PoisonError::into_inner);
        let (key, _) = issue_into(&mut by_hash, account, name, scopes, Expiry::NEVER, now)?;
        Ok(key)
    }
}

/// Issues a key into `by_hash`: the key, and its record.
fn issue_into(
    by_hash: &mut HashMap<KeyHash, KeyRecord>,
    account: AccountId,
    name: &str,
    scopes: Scopes,
    expiry: Expiry,
    now: DateTime<Utc>,
) -> Result<(ApiKey, KeyRecord), agentvista_keys::GenerateError> {
    let key = ApiKey::generate()?;
    let id = KeyId(i64::try_from(by_hash.len()).unwrap_or(i64::MAX) + 1);
    let record = KeyRecord {
        id,
        account_id: account,
        created_by: None,
        name: name.to_owned(),
        prefix: key.prefix(),
        scopes,
        created_at: now,
        expiry,
        last_used_at: None,
        revoked_at: None,
        rate_limit: None,
    };
    by_hash.insert(key.hash(), record.clone());
    Ok((key, record))
}

impl KeyLookup for MemoryKeys {
    fn find_by_hash<'a>(&'a self, hash: &'a KeyHash) -> LookupFuture<'a, Option<KeyRecord>> {
        let found = self
            .by_hash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn touch_last_used(&self, id: KeyId, at: DateTime<Utc>) -> LookupFuture<'_, ()> {
        let mut by_hash = self.by_hash.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(record) = by_hash.values_mut().find(|record| record.id == id) {
            record.last_used_at = Some(at);
        }
        Box::pin(async { Ok(()) })
    }

    fn revoke(
        &self,
        account: AccountId,
        id: KeyId,
        _by: Actor,
        at: DateTime<Utc>,
    ) -> LookupFuture<'_, Option<Revoked>> {
        let mut by_hash = self.by_hash.write().unwrap_or_else(PoisonError::into_inner);
        let revoked = by_hash
            .values_mut()
            .find(|record| record.account_id == account && record.id == id)
            .map(|record| {
                if record.revoked_at.is_some() {
                    Revoked::Already
                } else {
                    record.revoked_at = Some(at);
                    Revoked::Now
                }
            });
        Box::pin(async move { Ok(revoked) })
    }

    /// A new key for the old one's grant; the old one revoked (no grace) or expiring at the
    /// grace's end. Both maps are changed under their locks before the answer, so the next
    /// verification sees the roll.
    fn roll<'a>(
        &'a self,
        account: AccountId,
        id: KeyId,
        terms: RollTerms,
        asked: Asked<'a>,
    ) -> RollFuture<'a> {
        let rolled = (|| {
            if terms.grace > MAX_ROLL_GRACE {
                return Err(RollError::GraceTooLong);
            }
            let grace = TimeDelta::from_std(terms.grace).map_err(|_| RollError::GraceTooLong)?;
            let mut by_hash = self.by_hash.write().unwrap_or_else(PoisonError::into_inner);
            let mut rolled = self.rolled.write().unwrap_or_else(PoisonError::into_inner);
            let old = by_hash
                .values()
                .find(|record| record.account_id == account && record.id == id)
                .cloned()
                .ok_or(RollError::NotFound)?;
            if rolled.contains(&id) {
                return Err(RollError::AlreadyRolled);
            }
            if old.revoked_at.is_some() {
                return Err(RollError::NotFound);
            }
            if !old.status(asked.at).is_active() {
                return Err(RollError::Expired);
            }
            let (key, record) = issue_into(
                &mut by_hash,
                account,
                &old.name,
                old.scopes,
                old.expiry,
                asked.at,
            )
            .map_err(|e| RollError::Lookup(LookupError::Failed(Box::new(e))))?;
            let stored = by_hash
                .values_mut()
                .find(|record| record.id == id)
                .ok_or(RollError::NotFound)?;
            if grace.is_zero() {
                stored.revoked_at = Some(asked.at);
            } else {
                let ends = asked.at + grace;
                let expires_at = old.expiry.expires_at().map_or(ends, |at| at.min(ends));
                stored.expiry = Expiry::at(Some(expires_at));
            }
            rolled.insert(id);
            Ok(Rolled {
                key,
                record,
                old: stored.clone(),
            })
        })();
        Box::pin(async move { rolled })
    }
}

/// What the service answers: the account the key acts for.
#[derive(Serialize)]
struct Answer {
    done: &'static str,
    account: AccountId,
}

/// Needs the `write` scope.
async fn record_event(auth: Auth<Write>) -> HttpResponse {
    HttpResponse::Ok().json(Answer {
        done: "recorded",
        account: auth.principal.account_id,
    })
}

/// Needs the `read` scope.
async fn report(auth: Auth<Read>) -> HttpResponse {
    HttpResponse::Ok().json(Answer {
        done: "reported",
        account: auth.principal.account_id,
    })
}

/// The key authentication over the service's own key storage.
pub fn key_auth(keys: Arc<MemoryKeys>) -> web::Data<KeyAuth> {
    web::Data::new(KeyAuth::new(keys))
}

/// The service's routes. The extractors find the [`KeyAuth`] in the app data.
pub fn routes(cfg: &mut web::ServiceConfig, keys: web::Data<KeyAuth>) {
    cfg.app_data(keys)
        .route("/events", web::post().to(record_event))
        .route("/report", web::get().to(report));
}

/// Serves the routes on `listener` until the server is stopped.
///
/// # Errors
/// When the listener cannot be used.
pub fn serve(
    listener: TcpListener,
    keys: web::Data<KeyAuth>,
) -> std::io::Result<actix_web::dev::Server> {
    Ok(HttpServer::new(move || {
        let keys = keys.clone();
        App::new().configure(move |cfg| routes(cfg, keys))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = Arc::new(MemoryKeys::default());
    let now = Utc::now();
    let account = AccountId(1);
    let write = keys.issue(account, "ingest", "write".parse()?, now)?;
    let read = keys.issue(account, "dashboard", "read".parse()?, now)?;
    // Shown once, as a key is; the service keeps only their hashes.
    println!("write key: {}", write.expose_secret());
    println!("read key:  {}", read.expose_secret());
    let listener = TcpListener::bind(("127.0.0.1", 8090))?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, key_auth(keys))?.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;
    use reqwest::header::WWW_AUTHENTICATE;
    use serde_json::{Value, json};

    use super::*;

    struct Running {
        base: String,
        keys: Arc<MemoryKeys>,
        auth: web::Data<KeyAuth>,
        client: reqwest::Client,
    }

    /// The service on a port of its own (port 0: never a race for a fixed one).
    async fn start() -> Running {
        let keys = Arc::new(MemoryKeys::default());
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let auth = key_auth(Arc::clone(&keys));
        let server = serve(listener, auth.clone()).unwrap();
        actix_web::rt::spawn(server);
        Running {
            base,
            keys,
            auth,
            client: reqwest::Client::new(),
        }
    }

    impl Running {
        fn issue(&self, scopes: &str) -> ApiKey {
            self.keys
                .issue(AccountId(7), scopes, scopes.parse().unwrap(), Utc::now())
                .unwrap()
        }

        async fn send(
            &self,
            method: reqwest::Method,
            path: &str,
            key: Option<&str>,
        ) -> (StatusCode, Option<String>, Value) {
            let mut request = self.client.request(method, format!("{}{path}", self.base));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .map(|v| v.to_str().unwrap().to_owned());
            (status, challenge, response.json().await.unwrap())
        }
    }

    #[actix_web::test]
    async fn a_key_with_the_scope_gets_in_and_acts_for_its_account() {
        let service = start().await;
        let write = service.issue("write");
        let read = service.issue("read,write");
        let (status, _, body) = service
            .send(
                reqwest::Method::POST,
                "/events",
                Some(write.expose_secret()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"done": "recorded", "account": 7}));
        let (status, _, body) = service
            .send(reqwest::Method::GET, "/report", Some(read.expose_secret()))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["done"], "reported");
    }

    #[actix_web::test]
    async fn no_key_or_an_unknown_key_is_a_401_with_the_contracts_body() {
        let service = start().await;
        let (status, challenge, body) = service.send(reqwest::Method::GET, "/report", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "missing_api_key");
        assert!(body["message"].as_str().is_some_and(|m| m.ends_with('.')));
        assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="agentvista""#));

        // Well formed, checksum and all, but never issued by this service.
        let stranger = ApiKey::generate().unwrap();
        for key in [stranger.expose_secret(), "av_not_a_key"] {
            let (status, challenge, body) = service
                .send(reqwest::Method::GET, "/report", Some(key))
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(body["error"], "invalid_api_key");
            assert_eq!(
                challenge.as_deref(),
                Some(r#"Bearer realm="agentvista", error="invalid_token""#)
            );
            assert!(!body.to_string().contains(key), "the key is echoed: {body}");
        }
    }

    #[actix_web::test]
    async fn a_key_without_the_scope_is_a_403_naming_it() {
        let service = start().await;
        let read = service.issue("read");
        let (status, challenge, body) = service
            .send(reqwest::Method::POST, "/events", Some(read.expose_secret()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["required_scope"], "write");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer error="insufficient_scope", scope="write""#)
        );
    }

    #[actix_web::test]
    async fn a_session_cookie_is_no_credential_here() {
        let service = start().await;
        let response = service
            .client
            .get(format!("{}/report", service.base))
            .header("Cookie", "av_session=anything")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "missing_api_key");
    }

    #[actix_web::test]
    async fn a_key_revoked_through_the_port_fails_its_next_request() {
        let service = start().await;
        let write = service.issue("write");
        let send = || {
            service.send(
                reqwest::Method::POST,
                "/events",
                Some(write.expose_secret()),
            )
        };
        assert_eq!(send().await.0, StatusCode::OK);
        let id = KeyId(1);
        assert_eq!(
            service
                .auth
                .revoke(
                    AccountId(8),
                    id,
                    Actor::Cli,
                    Utc::now(),
                    &agentvista_keys::Origin::default()
                )
                .await
                .unwrap(),
            None,
            "another account's key"
        );
        assert_eq!(send().await.0, StatusCode::OK);
        assert_eq!(
            service
                .auth
                .revoke(
                    AccountId(7),
                    id,
                    Actor::Cli,
                    Utc::now(),
                    &agentvista_keys::Origin::default()
                )
                .await
                .unwrap(),
            Some(Revoked::Now)
        );
        let (status, _, body) = send().await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_api_key");
    }

    #[actix_web::test]
    async fn a_key_rolled_through_the_port_hands_over_once() {
        let service = start().await;
        let write = service.issue("write");
        let origin = agentvista_keys::Origin::default();
        let asked = agentvista_keys::Asked {
            by: Actor::Cli,
            at: Utc::now(),
            origin: &origin,
        };
        let terms = agentvista_keys::RollTerms::default();
        let rolled = service
            .auth
            .roll(AccountId(7), KeyId(1), terms, asked)
            .await
            .unwrap();
        for (key, want) in [
            (write.expose_secret(), StatusCode::UNAUTHORIZED),
            (rolled.key.expose_secret(), StatusCode::OK),
        ] {
            let (status, _, _) = service
                .send(reqwest::Method::POST, "/events", Some(key))
                .await;
            assert_eq!(
                status, want,
                "no grace: the old key stops, the new one works"
            );
        }
        assert!(rolled.old.revoked_at.is_some());
        let again = service
            .auth
            .roll(AccountId(7), KeyId(1), terms, asked)
            .await;
        assert!(
            matches!(again, Err(agentvista_keys::RollError::AlreadyRolled)),
            "{again:?}"
        );
    }
}
