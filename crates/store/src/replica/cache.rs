//! The verified-key cache (`docs/architecture.md`, rules 5 and 6).
//!
//! [`quick_cache`] holds the entries: bounded by count, sharded with short read locks (a hit is
//! one hash and one shard read, tens of nanoseconds — the budget of a whole verification is
//! one microsecond), and its placeholder guard lets concurrent misses for one hash share one
//! database read. `moka` would bring per-entry expiry but also a background maintenance
//! thread and ten times the cost per hit; a time-to-live checked on each hit is all this cache
//! needs, because revocation never relies on expiry (the log evicts), only the safety net does.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use agentvista_keys::{KeyHash, KeyRecord};
use quick_cache::sync::Cache;

use super::clock::boot_nanos;

/// A verified entry's time-to-live: a safety net only — the change log evicts what changes.
const TTL_NANOS: u64 = 300 * 1_000_000_000;
/// An unknown hash's time-to-live. It cannot hide a key created afterwards: a new key is
/// drawn at random at creation (190 bits), so no one can have presented it before it existed.
const NEGATIVE_TTL_NANOS: u64 = 10 * 1_000_000_000;

/// A verified key and when (boot clock) it was read from the database.
struct Verified {
    record: KeyRecord,
    read_at: u64,
}

/// What fills compare with, changed only under the lock: evictions bump `epoch`, the
/// follower moves `applied`.
#[derive(Debug, Default)]
struct FillState {
    epoch: u64,
    applied: i64,
}

/// What a miss noted before it read the database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    epoch: u64,
}

/// Verified keys by hash, unknown hashes apart, served only while the lease runs.
pub(crate) struct VerifiedKeys {
    known: Cache<KeyHash, Arc<Verified>>,
    /// Separate and smaller, so that a flood of random well-formed keys cannot evict
    /// verified ones.
    unknown: Cache<KeyHash, u64>,
    /// Until when (boot clock, nanoseconds) the cache may serve; 0: it does not.
    serve_until: AtomicU64,
    fills: Mutex<FillState>,
    #[cfg(test)]
    pub(crate) pause_before_fill: Mutex<Option<super::tests::Pause>>,
}

impl std::fmt::Debug for VerifiedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedKeys")
            .field("known", &self.known.len())
            .field("unknown", &self.unknown.len())
            .finish_non_exhaustive()
    }
}

impl VerifiedKeys {
    /// A cache of at most `capacity` verified keys (and a tenth as many unknown hashes).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        VerifiedKeys {
            known: Cache::new(capacity),
            unknown: Cache::new((capacity / 10).max(1)),
            serve_until: AtomicU64::new(0),
            fills: Mutex::new(FillState::default()),
            #[cfg(test)]
            pause_before_fill: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FillState> {
        self.fills.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the lease lets the cache serve at `now`.
    pub(crate) fn serving(&self, now: u64) -> bool {
        now < self.serve_until.load(Ordering::Acquire)
    }

    /// Lets the cache serve until `deadline` (boot clock).
    pub(crate) fn serve_until(&self, deadline: u64) {
        self.serve_until.store(deadline, Ordering::Release);
    }

    /// Stops serving at once (lease lapsed, shutting down).
    pub(crate) fn stop_serving(&self) {
        self.serve_until.store(0, Ordering::Release);
    }

    /// The last change applied.
    pub(crate) fn applied(&self) -> i64 {
        self.lock().applied
    }

    /// The answer from memory: `Some(Some(record))` verified, `Some(None)` known to be
    /// unknown, `None` when the database must be asked.
    pub(crate) fn get(&self, hash: &KeyHash, now: u64) -> Option<Option<KeyRecord>> {
        if !self.serving(now) {
            return None;
        }
        if let Some(hit) = self.known.get(hash)
            && now.saturating_sub(hit.read_at) < TTL_NANOS
        {
            return Some(Some(hit.record.clone()));
        }
        match self.unknown.get(hash) {
            Some(read_at) if now.saturating_sub(read_at) < NEGATIVE_TTL_NANOS => Some(None),
            _ => None,
        }
    }

    /// The key of `hash`, from memory or from `read` — which answers the record and the log's
    /// head in one snapshot. Concurrent misses for one hash share a read; what a read found is
    /// kept only if no change was applied or evicted meanwhile (the fill race).
    pub(crate) async fn get_or_read<F, Fut, E>(
        &self,
        hash: &KeyHash,
        read: F,
    ) -> Result<Option<KeyRecord>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Option<KeyRecord>, i64), E>>,
    {
        if let Some(answer) = self.get(hash, boot_nanos()) {
            metrics::counter!("agentvista_key_cache_hits_total").increment(1);
            return Ok(answer);
        }
        // A miss, including a coalesced one and one while the lease has lapsed.
        metrics::counter!("agentvista_key_cache_misses_total").increment(1);
        if !self.serving(boot_nanos()) {
            return read().await.map(|(found, _)| found);
        }
        let guard = match self.known.get_value_or_guard_async(hash).await {
            Ok(hit) if boot_nanos().saturating_sub(hit.read_at) < TTL_NANOS => {
                return Ok(Some(hit.record.clone()));
            }
            // Past its time-to-live: dropped, and read again.
            Ok(_) => {
                self.known.remove(hash);
                return read().await.map(|(found, _)| found);
            }
            Err(guard) => guard,
        };
        // A waiter handed the guard after another miss found nothing.
        if let Some(None) = self.get(hash, boot_nanos()) {
            return Ok(None);
        }
        let ticket = Ticket {
            epoch: self.lock().epoch,
        };
        let (found, head) = read().await?;
        #[cfg(test)]
        super::tests::pause(self).await;
        let now = boot_nanos();
        let state = self.lock();
        // Under the lock, so that no eviction falls between the check and the insert.
        if self.serving(now) && state.epoch == ticket.epoch && head >= state.applied {
            match &found {
                Some(record) => {
                    let verified = Verified {
                        record: record.clone(),
                        read_at: now,
                    };
                    let _ = guard.insert(Arc::new(verified));
                }
                None => {
                    drop(guard);
                    self.unknown.insert(*hash, now);
                }
            }
        }
        Ok(found)
    }

    /// Drops the keys of `hashes` (changes read from the log), and records `applied` as the
    /// last change applied when given.
    pub(crate) fn evict<'a>(
        &self,
        hashes: impl IntoIterator<Item = &'a KeyHash>,
        applied: Option<i64>,
    ) {
        let mut state = self.lock();
        for hash in hashes {
            self.known.remove(hash);
            self.unknown.remove(hash);
        }
        state.epoch += 1;
        if let Some(applied) = applied {
            state.applied = applied;
        }
    }

    /// Drops everything (the lease lapsed, the listener reconnected, the log went backwards),
    /// and records `applied` when given.
    pub(crate) fn flush(&self, applied: Option<i64>) {
        let mut state = self.lock();
        self.known.clear();
        self.unknown.clear();
        state.epoch += 1;
        if let Some(applied) = applied {
            state.applied = applied;
        }
    }

    /// Verified keys held.
    pub(crate) fn len(&self) -> usize {
        self.known.len()
    }
}
