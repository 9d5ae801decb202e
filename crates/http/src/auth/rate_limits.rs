//! Per-key rate limits: a key with a `rate_limit` has a GCRA bucket (the `governor` crate) in
//! this replica's memory, checked once the key is verified and before anything else runs.
//!
//! The bucket is per replica: with N replicas behind a balancer that spreads a key's requests,
//! the key gets up to N × `per_second` sustained and N × `burst` at once in all. That is the
//! price of a check that costs no round trip; the monthly event quota, which is exact, bounds
//! what the key can cost.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use agentvista_keys::{KeyId, RateLimit};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::ApiError;
use crate::rate_limit::RateLimitStatus;
use crate::throttle::OncePerSecond;

/// Keys tracked by one limiter before those whose buckets are full again are forgotten. A
/// tracked key is a key that exists and was used, so this only bounds the clean-up's work.
const MAX_TRACKED: usize = 100_000;

/// Distinct limits held before the limiters whose keys are all idle are dropped.
const MAX_LIMITS: usize = 10_000;

type Limiter =
    RateLimiter<KeyId, DefaultKeyedStateStore<KeyId>, DefaultClock, StateInformationMiddleware>;

/// The buckets of one replica: one keyed limiter per distinct limit, each key in its own.
pub(crate) struct RateLimits {
    by_limit: RwLock<HashMap<RateLimit, Arc<Limiter>>>,
    clock: DefaultClock,
    /// Clean-ups of idle keys: one a second at most.
    cleanups: OncePerSecond,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            by_limit: RwLock::new(HashMap::new()),
            clock: DefaultClock::default(),
            cleanups: OncePerSecond::new(),
        }
    }
}

impl RateLimits {
    /// Counts one request of key `key`, whose limit is `limit`.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] when the key's bucket is empty.
    pub(crate) fn check(&self, key: KeyId, limit: RateLimit) -> Result<RateLimitStatus, ApiError> {
        let limiter = self.limiter(limit);
        if limiter.len() > MAX_TRACKED {
            self.cleanup();
        }
        let burst = limit.burst().get();
        let every = Duration::from_secs(1) / limit.per_second().get();
        match limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(RateLimitStatus {
                    limit: burst,
                    remaining,
                    reset_secs: whole_seconds(every * (burst - remaining)),
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(ApiError::RateLimited {
                    limit,
                    // At least 1: a client told to wait 0 s would retry in a loop.
                    retry_after_secs: whole_seconds(wait).max(1),
                    reset_secs: whole_seconds(wait + every * (burst - 1)).max(1),
                })
            }
        }
    }

    fn limiter(&self, limit: RateLimit) -> Arc<Limiter> {
        if let Some(limiter) = self
            .by_limit
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&limit)
        {
            return Arc::clone(limiter);
        }
        let mut by_limit = self
            .by_limit
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if by_limit.len() >= MAX_LIMITS {
            by_limit.retain(|_, limiter| {
                limiter.retain_recent();
                !limiter.is_empty()
            });
        }
        let quota = Quota::per_second(limit.per_second()).allow_burst(limit.burst());
        Arc::clone(by_limit.entry(limit).or_insert_with(|| {
            Arc::new(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
        }))
    }

    /// Forgets the keys whose buckets are full again, at most once a second.
    fn cleanup(&self) {
        if self.cleanups.open() {
            let limiters: Vec<_> = self
                .by_limit
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .cloned()
                .collect();
            for limiter in limiters {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

/// `d` in whole seconds, rounded up: retrying at the stated second must succeed.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(result: Result<RateLimitStatus, ApiError>) -> (u64, u64) {
        match result {
            Err(ApiError::RateLimited {
                retry_after_secs,
                reset_secs,
                ..
            }) => (retry_after_secs, reset_secs),
            other => panic!("expected rate_limited, got {other:?}"),
        }
    }

    #[test]
    fn a_key_gets_its_burst_then_is_refused_and_other_keys_are_not() {
        let limits = RateLimits::default();
        // One a minute would need per_second below 1; one a second with a burst of 3 is slow
        // enough that the loop below cannot earn a fourth.
        let limit = RateLimit::new(1, 3).unwrap();
        let statuses: Vec<_> = (0..3)
            .map(|_| limits.check(KeyId(1), limit).unwrap())
            .collect();
        assert_eq!(
            statuses.iter().map(|s| s.remaining).collect::<Vec<_>>(),
            [2, 1, 0]
        );
        assert!(statuses.iter().all(|s| s.limit == 3));
        assert!((1..=3).contains(&statuses[2].reset_secs), "{statuses:?}");
        let (retry_after, reset) = refused(limits.check(KeyId(1), limit));
        assert_eq!(retry_after, 1);
        assert!((retry_after..=3).contains(&reset), "Reset {reset}");
        // Another key with the same limit has its own bucket; another limit its own limiter.
        assert_eq!(limits.check(KeyId(2), limit).unwrap().remaining, 2);
        let other = RateLimit::new(10, 1).unwrap();
        assert_eq!(limits.check(KeyId(1), other).unwrap().remaining, 0);
    }

    #[test]
    fn idle_limiters_are_dropped_once_there_are_too_many() {
        let limits = RateLimits::default();
        // Rates near the maximum refill a cell in about a microsecond: by the time the map is
        // full, the first buckets are full again, and their limiters idle.
        let count = u32::try_from(MAX_LIMITS).unwrap();
        for n in 0..count {
            let limit = RateLimit::new(RateLimit::MAX - n, 2).unwrap();
            limits.check(KeyId(i64::from(n)), limit).unwrap();
        }
        assert_eq!(limits.by_limit.read().unwrap().len(), MAX_LIMITS);
        limits
            .check(KeyId(0), RateLimit::new(1, 1).unwrap())
            .unwrap();
        assert!(limits.by_limit.read().unwrap().len() < MAX_LIMITS);
    }
}
