//! What a guesser meets: unknown keys throttled per client address (never the keys a replica
//! answers for from memory), and one password check per login whatever the e-mail address.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agentvista_http::{Bucket, ThrottleConfig};

use super::*;

/// The store's lookup, counting its reads, and answering "from memory" for the hashes given.
struct Counting {
    store: Store,
    reads: AtomicU64,
    in_memory: Mutex<HashSet<KeyHash>>,
}

impl KeyLookup for Counting {
    fn find_by_hash<'a>(&'a self, hash: &'a KeyHash) -> LookupFuture<'a, Option<KeyRecord>> {
        if !self.answers_from_memory(hash) {
            self.reads.fetch_add(1, Ordering::SeqCst);
        }
        KeyLookup::find_by_hash(&self.store, hash)
    }
    fn answers_from_memory(&self, hash: &KeyHash) -> bool {
        self.in_memory.lock().unwrap().contains(hash)
    }
    fn touch_last_used(&self, id: KeyId, at: DateTime<Utc>) -> LookupFuture<'_, ()> {
        KeyLookup::touch_last_used(&self.store, id, at)
    }
    fn revoke(
        &self,
        account: AccountId,
        id: KeyId,
        by: Actor,
        at: DateTime<Utc>,
    ) -> LookupFuture<'_, Option<Revoked>> {
        KeyLookup::revoke(&self.store, account, id, by, at)
    }
}

fn small(bucket: u32) -> HttpConfig {
    HttpConfig {
        throttle: ThrottleConfig {
            unknown_keys_per_address: Bucket {
                burst: NonZeroU32::new(bucket).unwrap(),
                every: Duration::from_secs(3600),
            },
            ..ThrottleConfig::default()
        },
        ..config()
    }
}

fn from(req: test::TestRequest, peer: &str) -> test::TestRequest {
    req.peer_addr(peer.parse::<SocketAddr>().unwrap())
}

fn unknown_key() -> String {
    ApiKey::generate().unwrap().expose_secret().to_owned()
}

#[actix_web::test]
async fn unknown_keys_past_the_throttle_get_429_without_a_lookup_and_keys_in_memory_pass() {
    let f = fixture().await;
    let (known, _) = key(&f.store, f.account, "read").await;
    let (remembered, _) = key(&f.store, f.account, "read").await;
    let lookup = Arc::new(Counting {
        store: f.store.clone(),
        reads: AtomicU64::new(0),
        in_memory: Mutex::new(HashSet::from([ApiKey::parse(&remembered).unwrap().hash()])),
    });
    let state = AppState::new(f.store.clone(), small(3))
        .unwrap()
        .with_key_lookup(lookup.clone());
    let app = app(state).await;
    let here = "192.0.2.1:4000";
    let ping = |key: &str, peer: &str| from(bearer(get(PING), key), peer);

    // Keys found do not count; four unknown keys are looked up and refused, the fourth
    // finding the bucket empty.
    for _ in 0..5 {
        assert_eq!(send(&app, ping(&known, here)).await.0, StatusCode::OK);
    }
    for _ in 0..4 {
        let (status, _, body) = send(&app, ping(&unknown_key(), here)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
        );
    }
    let reads = lookup.reads.load(Ordering::SeqCst);
    assert_eq!(reads, 9);

    // Now no key this replica would have to read is looked up for that address: 429, never
    // 401, with the time to wait — a valid key included, and from the IPv4-mapped form.
    for peer in [here, "[::ffff:192.0.2.1]:4001"] {
        for key in [unknown_key(), known.clone()] {
            let (status, headers, body) = send(&app, ping(&key, peer)).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")),
                "{peer}"
            );
            assert!(headers.contains_key(header::RETRY_AFTER));
        }
    }
    assert_eq!(
        lookup.reads.load(Ordering::SeqCst),
        reads,
        "no lookup was made"
    );

    // A key answered from memory passes; another address is not held up.
    assert_eq!(send(&app, ping(&remembered, here)).await.0, StatusCode::OK);
    let (status, _, _) = send(&app, ping(&unknown_key(), "192.0.2.2:4000")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(&app, ping(&known, "192.0.2.2:4000")).await.0,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn every_login_checks_one_password_whether_the_email_is_known_or_not() {
    let f = fixture().await;
    let state = web::Data::new(AppState::new(f.store.clone(), config()).unwrap());
    let app = test::init_service(App::new().configure({
        let state = state.clone();
        move |cfg| configure(cfg, state)
    }))
    .await;
    let login = |email: &str, password: &str| {
        from(
            test::TestRequest::post()
                .uri("/api/v1/auth/login/")
                .set_json(json!({"email": email, "password": password})),
            "192.0.2.9:4000",
        )
    };
    let mut answers = Vec::new();
    for (email, password) in [
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("not an e-mail address", PASSWORD),
    ] {
        let before = state.password_checks();
        let (status, _, body) = send(&app, login(email, password)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{email}");
        assert_eq!(state.password_checks(), before + 1, "{email}");
        answers.push(body);
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]));
    let before = state.password_checks();
    assert_eq!(
        send(&app, login("ada@example.com", PASSWORD)).await.0,
        StatusCode::OK
    );
    assert_eq!(state.password_checks(), before + 1);
}
