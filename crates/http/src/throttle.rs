//! Throttles on the password endpoints (login, first-run setup): attempts per client address
//! and per account, and a bound on the password hashes running at once.
//!
//! argon2id is slow and memory-hard on purpose (tens of milliseconds, 19 MiB a hash), so an
//! unbounded stream of logins is both a way to guess passwords and a way to take the server's
//! CPU. Each attempt first passes the address's and the account's GCRA buckets (the `governor`
//! crate), then takes a hashing permit without waiting; whichever is exhausted answers 429
//! `too_many_attempts` with `Retry-After` before any hash runs.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agentvista_keys::Email;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiError;

/// How many distinct keys a throttle tracks before it forgets those whose buckets are full
/// again. Keys are bounded in size (an address, or a normalised e-mail of at most 254 bytes),
/// and a live key costs its owner an attempt at least every refill period, so what an
/// attacker can keep alive is bounded by its own address buckets.
const MAX_TRACKED: usize = 100_000;

/// A bucket: `burst` attempts at once, then one more every `every`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Attempts allowed back to back.
    pub burst: NonZeroU32,
    /// How often one more attempt is allowed once the burst is spent.
    pub every: Duration,
}

/// The limits on password attempts. The defaults let a person mistype many times and stop a
/// guesser at a few attempts a minute per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Per client address (the TCP peer; behind a proxy, the proxy's): default 30 at once,
    /// then one every 2 s.
    pub per_address: Bucket,
    /// Per account and client address: default 10 at once, then one every 30 s. This is
    /// the guesser's limit; keyed on the pair, so that a stranger who knows an e-mail address
    /// cannot lock its owner out from elsewhere.
    pub per_account_and_address: Bucket,
    /// Per account from all addresses together: default 100 at once, then one every 3 s —
    /// what stops a guesser spread over many addresses, at the cost that such a spread attack
    /// can delay the owner's login too.
    pub per_account: Bucket,
    /// Password hashes running at once; one more is refused at once. Default: twice the
    /// cores.
    pub concurrent_hashes: usize,
    /// Leaked-key reports per client address: default 60 at once, then one a second — room
    /// for a secret scanner's bursts, and at most 100 lookups a report.
    pub leak_reports_per_address: Bucket,
    /// Lookups of well-formed keys that found no key, per client address: default 60 at
    /// once, then one a second. Past it, a key this replica cannot answer for from memory is
    /// answered 429 `too_many_attempts` without a lookup (a key in memory, verified or known
    /// to be unknown, is answered as ever).
    pub unknown_keys_per_address: Bucket,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        ThrottleConfig {
            per_address: Bucket {
                burst: NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN),
                every: Duration::from_secs(2),
            },
            per_account_and_address: Bucket {
                burst: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
                every: Duration::from_secs(30),
            },
            per_account: Bucket {
                burst: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
                every: Duration::from_secs(3),
            },
            concurrent_hashes: 2 * cores,
            leak_reports_per_address: Bucket {
                burst: NonZeroU32::new(60).unwrap_or(NonZeroU32::MIN),
                every: Duration::from_secs(1),
            },
            unknown_keys_per_address: Bucket {
                burst: NonZeroU32::new(60).unwrap_or(NonZeroU32::MIN),
                every: Duration::from_secs(1),
            },
        }
    }
}

/// Lookups of unknown keys per client address: only lookups that found nothing count, and an
/// address over its bucket is refused lookups until the bucket has room again.
pub(crate) struct UnknownKeys {
    misses: Keyed<IpAddr>,
    /// Addresses over the bucket, and until when (bounded: past [`MAX_TRACKED`] entries the
    /// expired ones go, and a new one is not kept if none has).
    over: Mutex<HashMap<IpAddr, Instant>>,
    /// Whether `over` may hold an entry: while it is empty, a check takes no lock.
    any_over: AtomicBool,
}

impl UnknownKeys {
    pub(crate) fn new(bucket: Bucket) -> Self {
        UnknownKeys {
            misses: Keyed::new(bucket),
            over: Mutex::new(HashMap::new()),
            any_over: AtomicBool::new(false),
        }
    }

    /// Whether `address` may have a key looked up.
    ///
    /// # Errors
    /// [`ApiError::TooManyAttempts`] while the address is over its bucket.
    pub(crate) fn check(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        if !self.any_over.load(Ordering::Relaxed) {
            return Ok(());
        }
        let key = network(address);
        let now = Instant::now();
        let mut over = self.over.lock().unwrap_or_else(PoisonError::into_inner);
        match over.get(&key) {
            Some(until) if *until > now => {
                let wait = *until - now;
                Err(ApiError::TooManyAttempts {
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                })
            }
            Some(_) => {
                over.remove(&key);
                self.any_over.store(!over.is_empty(), Ordering::Relaxed);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts one lookup from `address` that found no key.
    pub(crate) fn missed(&self, address: Option<IpAddr>) {
        let key = network(address);
        if let Err(ApiError::TooManyAttempts { retry_after_secs }) = self
            .misses
            .check(&key, "unknown keys of the client address")
        {
            let now = Instant::now();
            let mut over = self.over.lock().unwrap_or_else(PoisonError::into_inner);
            if over.len() >= MAX_TRACKED {
                over.retain(|_, until| *until > now);
            }
            if over.len() < MAX_TRACKED {
                over.insert(key, now + Duration::from_secs(retry_after_secs));
            }
            self.any_over.store(!over.is_empty(), Ordering::Relaxed);
        }
    }
}

/// The throttles of one server process.
pub(crate) struct Throttles {
    by_address: Keyed<IpAddr>,
    by_account_and_address: Keyed<(Email, Option<IpAddr>)>,
    by_account: Keyed<Email>,
    hashing: Arc<Semaphore>,
    /// Hashing permits handed out: one per password checked.
    password_checks: AtomicU64,
    leak_reports: Keyed<IpAddr>,
}

/// A keyed limiter, and when it may next forget the keys whose buckets are full again.
struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    /// One scan per second at most, however many keys an attacker keeps alive.
    cleanups: OncePerSecond,
}

/// A gate that opens at most once a second, for clean-ups that many requests may ask for at
/// once: the first caller of a second gets `true`, the others `false`, without a lock.
pub(crate) struct OncePerSecond {
    /// Milliseconds since `epoch` before which the gate stays shut.
    next_ms: AtomicU64,
    epoch: Instant,
}

impl OncePerSecond {
    pub(crate) fn new() -> Self {
        OncePerSecond {
            next_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Whether this caller may run the clean-up now.
    pub(crate) fn open(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_ms.load(Ordering::Relaxed);
        now >= due
            && self
                .next_ms
                .compare_exchange(due, now + 1000, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl Throttles {
    pub(crate) fn new(config: ThrottleConfig) -> Self {
        Throttles {
            by_address: Keyed::new(config.per_address),
            by_account_and_address: Keyed::new(config.per_account_and_address),
            by_account: Keyed::new(config.per_account),
            hashing: Arc::new(Semaphore::new(config.concurrent_hashes.max(1))),
            password_checks: AtomicU64::new(0),
            leak_reports: Keyed::new(config.leak_reports_per_address),
        }
    }

    /// Counts one leaked-key report from `address`.
    ///
    /// # Errors
    /// [`ApiError::TooManyAttempts`] when the address's bucket is empty.
    pub(crate) fn leak_report(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        self.leak_reports
            .check(&network(address), "leak reports of the client address")
    }

    /// Counts one attempt from `address`; requests whose address is unknown share one bucket.
    ///
    /// # Errors
    /// [`ApiError::TooManyAttempts`] when the address's bucket is empty.
    pub(crate) fn address(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        self.by_address.check(&network(address), "client address")
    }

    /// Counts one attempt for the account named by `email` (normalised, so one account
    /// whatever the case it is typed in, and at most [`Email::MAX_BYTES`]), from `address`.
    /// Unknown and existing accounts are throttled alike, so the throttle tells nothing about
    /// which accounts exist.
    ///
    /// # Errors
    /// [`ApiError::TooManyAttempts`] when the account's bucket, or the pair's, is empty.
    pub(crate) fn account(&self, email: &Email, address: Option<IpAddr>) -> Result<(), ApiError> {
        self.by_account_and_address.check(
            &(email.clone(), address.map(|a| network(Some(a)))),
            "account and client address",
        )?;
        self.by_account.check(email, "account")
    }

    /// A permit to hash one password, taken without waiting. Take it once the body is read,
    /// so that a slow client never holds one.
    ///
    /// # Errors
    /// [`ApiError::TooManyAttempts`] when every permit is taken.
    pub(crate) fn hashing(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        let permit = Arc::clone(&self.hashing).try_acquire_owned().map_err(|_| {
            tracing::warn!("password check refused: every hashing permit is taken");
            ApiError::TooManyAttempts {
                retry_after_secs: 1,
            }
        })?;
        self.password_checks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("agentvista_password_checks_total").increment(1);
        Ok(permit)
    }

    /// Passwords checked since start (one hashing permit each).
    pub(crate) fn password_checks(&self) -> u64 {
        self.password_checks.load(Ordering::Relaxed)
    }
}

/// The unit an address is throttled as: an IPv4 address (an IPv4-mapped IPv6 address, as a
/// server bound to `[::]` sees IPv4 clients, counts as the IPv4 address it maps, not as one
/// /64 that every IPv4 client would share), or an IPv6 /64 — the smallest block a site is
/// given, so one client cannot take 2^64 fresh buckets. Requests whose address is unknown
/// share one bucket (the unspecified address) rather than escaping the throttle.
fn network(address: Option<IpAddr>) -> IpAddr {
    let Some(address) = address else {
        return IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    };
    match address.to_canonical() {
        address @ IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(bucket: Bucket) -> Self {
        let quota = Quota::with_period(bucket.every)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(bucket.burst);
        Keyed {
            limiter: RateLimiter::keyed(quota),
            cleanups: OncePerSecond::new(),
        }
    }

    fn check(&self, key: &K, what: &str) -> Result<(), ApiError> {
        if self.limiter.len() > MAX_TRACKED {
            self.cleanup();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            tracing::info!(throttle = what, "attempt throttled");
            ApiError::TooManyAttempts {
                // Rounded up: retrying at the stated second must succeed.
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Forgets the keys whose buckets are full again, at most once a second.
    fn cleanup(&self) {
        if self.cleanups.open() {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_misses_count_and_an_address_over_its_bucket_waits() {
        let unknown = UnknownKeys::new(small().unknown_keys_per_address);
        let here = Some(IpAddr::from([192, 0, 2, 1]));
        let there = Some(IpAddr::from([192, 0, 2, 2]));
        // Checks alone take nothing from the bucket.
        for _ in 0..10 {
            unknown.check(here).unwrap();
        }
        unknown.missed(here);
        unknown.missed(here);
        unknown.check(here).unwrap();
        // The third miss finds the bucket empty: the address waits, its neighbour does not.
        unknown.missed(here);
        assert!(retry_after(unknown.check(here)) >= 1);
        unknown.check(there).unwrap();
    }

    fn small() -> ThrottleConfig {
        ThrottleConfig {
            per_address: Bucket {
                burst: NonZeroU32::new(5).unwrap(),
                every: Duration::from_secs(60),
            },
            per_account_and_address: Bucket {
                burst: NonZeroU32::new(3).unwrap(),
                every: Duration::from_secs(60),
            },
            per_account: Bucket {
                burst: NonZeroU32::new(4).unwrap(),
                every: Duration::from_secs(60),
            },
            concurrent_hashes: 2,
            leak_reports_per_address: Bucket {
                burst: NonZeroU32::new(2).unwrap(),
                every: Duration::from_secs(60),
            },
            unknown_keys_per_address: Bucket {
                burst: NonZeroU32::new(2).unwrap(),
                every: Duration::from_secs(60),
            },
        }
    }

    fn retry_after<T>(result: Result<T, ApiError>) -> u64 {
        match result {
            Err(ApiError::TooManyAttempts { retry_after_secs }) => retry_after_secs,
            other => panic!("expected too_many_attempts, got {:?}", other.map(|_| ())),
        }
    }

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap()
    }

    #[test]
    fn an_account_is_throttled_per_address_first_then_across_addresses() {
        let throttles = Throttles::new(small());
        let me: IpAddr = [10, 0, 0, 1].into();
        let you: IpAddr = [10, 0, 0, 9].into();
        let ada = email("a@example.com");
        for _ in 0..3 {
            throttles.account(&ada, Some(me)).unwrap();
        }
        // The same account from the same address, whatever the case of the e-mail: refused.
        let wait = retry_after(throttles.account(&email(" A@Example.com"), Some(me)));
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        // Its owner elsewhere still gets in, until the account's own bucket is spent.
        throttles.account(&ada, Some(you)).unwrap();
        retry_after(throttles.account(&ada, Some(you)));
        // Another account is untouched.
        assert!(throttles.account(&email("b@example.com"), Some(me)).is_ok());
    }

    #[test]
    fn ipv6_addresses_are_throttled_per_64_block() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network(Some(a)), network(Some(b)));
        assert_ne!(network(Some(a)), network(Some(c)));
        let v4: IpAddr = [192, 0, 2, 1].into();
        assert_eq!(network(Some(v4)), v4);
    }

    #[test]
    fn ipv4_mapped_clients_are_throttled_apart_and_unknown_ones_together() {
        let throttles = Throttles::new(small());
        let mapped = |last: u8| -> IpAddr {
            std::net::Ipv4Addr::new(192, 0, 2, last)
                .to_ipv6_mapped()
                .into()
        };
        assert_eq!(network(Some(mapped(1))), IpAddr::from([192, 0, 2, 1]));
        // One mapped client uses up its bucket; another mapped client is untouched.
        while throttles.address(Some(mapped(1))).is_ok() {}
        assert!(throttles.address(Some(mapped(2))).is_ok());
        assert!(throttles.leak_report(Some(mapped(2))).is_ok());
        // Requests with no known address share one bucket, which runs out too.
        let mut allowed = 0;
        while throttles.address(None).is_ok() {
            allowed += 1;
            assert!(allowed < 1000, "no bucket for unknown addresses");
        }
        assert!(throttles.leak_report(None).is_ok());
        while throttles.leak_report(None).is_ok() {
            allowed += 1;
            assert!(
                allowed < 2000,
                "no leak-report bucket for unknown addresses"
            );
        }
    }

    #[test]
    fn an_address_is_throttled_and_others_are_not() {
        let throttles = Throttles::new(small());
        let me: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..5 {
            throttles.address(Some(me)).unwrap();
        }
        retry_after(throttles.address(Some(me)));
        let other: IpAddr = [10, 0, 0, 3].into();
        assert!(throttles.address(Some(other)).is_ok());
    }

    #[test]
    fn leak_reports_are_throttled_per_address_apart_from_logins() {
        let throttles = Throttles::new(small());
        let me: IpAddr = [10, 0, 0, 4].into();
        throttles.leak_report(Some(me)).unwrap();
        throttles.leak_report(Some(me)).unwrap();
        assert!((1..=60).contains(&retry_after(throttles.leak_report(Some(me)))));
        // Logins from the same address have their own bucket.
        assert!(throttles.address(Some(me)).is_ok());
        assert!(throttles.leak_report(Some([10, 0, 0, 5].into())).is_ok());
    }

    #[test]
    fn hashes_beyond_the_permits_are_refused_at_once_and_a_released_permit_is_reusable() {
        let throttles = Throttles::new(ThrottleConfig {
            concurrent_hashes: 2,
            ..ThrottleConfig::default()
        });
        let first = throttles.hashing().unwrap();
        let _second = throttles.hashing().unwrap();
        assert_eq!(retry_after(throttles.hashing()), 1);
        drop(first);
        assert!(throttles.hashing().is_ok());
    }
}
