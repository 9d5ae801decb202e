//! [`MemoryBudget`]: one budget of memory for every request in flight, so that the server's
//! peak memory is a formula of its settings whatever any number of clients send.
//!
//! A request that may allocate in proportion to what it reads or answers takes a [`Grant`]
//! first and grows it before each allocation: ingestion before it reads a body (all of it when
//! the length is declared and the body is not compressed, else a step at a time) and before it
//! decodes; large reads before they build their answer. The grant is held until the answer has
//! been written, then released. A step that cannot be granted within the wait (1 s) makes the
//! request release everything it holds and answer 503 `overloaded`.
//!
//! Fairness: a grant is taken from its account's share first (at most `account_share` of the
//! budget, so one tenant's flood leaves room for the others), then from the process budget,
//! whose last quarter is a reserve that only accounts holding less than a sixteenth of the
//! budget may use — a flood cannot take it, so a small tenant's request still finds room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentvista_keys::AccountId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits are counted in KiB: a `u32` of them covers 4 TiB, and a small request costs one.
const KIB: usize = 1024;

/// The budget's settings (`limits.memory_budget_bytes`, `limits.account_share`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetLimits {
    /// What all requests in flight may hold together.
    pub memory_budget_bytes: usize,
    /// The largest part of the budget one account's requests may hold, from 0 to 1.
    pub account_share: f64,
    /// How long a request waits for its next step before it is answered 503 `overloaded`.
    pub wait: Duration,
}

impl Default for BudgetLimits {
    /// The contract's defaults: 256 MiB, a quarter per account, a wait of one second.
    fn default() -> Self {
        BudgetLimits {
            memory_budget_bytes: 256 * 1024 * 1024,
            account_share: 0.25,
            wait: Duration::from_secs(1),
        }
    }
}

impl BudgetLimits {
    /// The most one account may hold, in bytes.
    #[must_use]
    pub fn account_bytes(&self) -> usize {
        // The share is checked to be in (0, 1] by whoever reads configuration; a float is
        // the contract's form of it, and a budget fits an f64 exactly below 2^53.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a share of a byte count, clamped to it"
        )]
        let bytes = (self.memory_budget_bytes as f64 * self.account_share.clamp(0.0, 1.0)) as usize;
        bytes.min(self.memory_budget_bytes)
    }
}

/// The refusal: the budget, or the account's share of it, stayed taken for the whole wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the server's memory budget is taken by requests in flight")]
pub struct Overloaded;

/// The process-wide budget. Cheap to clone: clones share one budget.
#[derive(Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("total_kib", &self.inner.total_kib)
            .field("in_use_bytes", &self.in_use_bytes())
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// The budget less the reserve.
    general: Arc<Semaphore>,
    /// The last quarter, for accounts holding less than `small_kib`.
    reserve: Arc<Semaphore>,
    total_kib: u32,
    account_kib: u32,
    small_kib: u32,
    wait: Duration,
    /// Each account with a grant alive, and its share (removed with its last grant).
    accounts: Mutex<HashMap<AccountId, Arc<Semaphore>>>,
}

impl MemoryBudget {
    /// A budget of `limits.memory_budget_bytes` (at least 1 KiB).
    #[must_use]
    pub fn new(limits: BudgetLimits) -> Self {
        let total_kib = kib(limits.memory_budget_bytes).max(1);
        let account_kib = kib(limits.account_bytes()).clamp(1, total_kib);
        let reserve_kib = total_kib / 4;
        MemoryBudget {
            inner: Arc::new(Inner {
                general: Arc::new(Semaphore::new((total_kib - reserve_kib) as usize)),
                reserve: Arc::new(Semaphore::new(reserve_kib as usize)),
                total_kib,
                account_kib,
                small_kib: total_kib / 16,
                wait: limits.wait,
                accounts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// An empty grant for a request of `account` on `endpoint` (the label of
    /// `agentvista_overloaded_total` when it is refused); it holds nothing until it grows.
    #[must_use]
    pub fn grant(&self, account: AccountId, endpoint: &'static str) -> Grant {
        let share = {
            let mut accounts = lock(&self.inner.accounts);
            Arc::clone(
                accounts
                    .entry(account)
                    .or_insert_with(|| Arc::new(Semaphore::new(self.inner.account_kib as usize))),
            )
        };
        Grant {
            budget: Arc::clone(&self.inner),
            account,
            share,
            endpoint,
            permits: Permits::default(),
        }
    }

    /// Bytes held by requests in flight.
    #[must_use]
    pub fn in_use_bytes(&self) -> usize {
        self.inner.in_use_kib() as usize * KIB
    }

    /// The most one request (one account) may hold, in bytes.
    #[must_use]
    pub fn account_bytes(&self) -> usize {
        self.inner.account_kib as usize * KIB
    }
}

impl Inner {
    fn in_use_kib(&self) -> u32 {
        let free = self.general.available_permits() + self.reserve.available_permits();
        self.total_kib
            .saturating_sub(u32::try_from(free).unwrap_or(u32::MAX))
    }

    fn report(&self) {
        metrics::gauge!("agentvista_memory_budget_in_use_bytes")
            .set(f64::from(self.in_use_kib()) * KIB as f64);
    }
}

#[derive(Default)]
struct Permits {
    share: Option<OwnedSemaphorePermit>,
    general: Option<OwnedSemaphorePermit>,
    reserve: Option<OwnedSemaphorePermit>,
    kib: u32,
}

/// What one request holds of the budget; dropping it gives everything back. Move it into the
/// response body of a large answer, so that it is released once the body has been sent (or the
/// client has gone), not when the handler returns.
pub struct Grant {
    budget: Arc<Inner>,
    account: AccountId,
    share: Arc<Semaphore>,
    endpoint: &'static str,
    permits: Permits,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("account", &self.account)
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl Grant {
    /// Bytes held.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.permits.kib as usize * KIB
    }

    /// Grows the grant until it holds at least `bytes` in all (nothing to do if it already
    /// does).
    ///
    /// # Errors
    /// [`Overloaded`] if the step cannot be granted within the wait, or could never be (more
    /// than the account's share). The caller then drops the grant, releasing what it held.
    pub async fn hold(&mut self, bytes: usize) -> Result<(), Overloaded> {
        let want = kib(bytes);
        if want <= self.permits.kib {
            return Ok(());
        }
        self.grow_kib(want - self.permits.kib).await
    }

    /// Grows the grant by `bytes` more.
    ///
    /// # Errors
    /// As [`Grant::hold`].
    pub async fn grow(&mut self, bytes: usize) -> Result<(), Overloaded> {
        self.grow_kib(kib(bytes)).await
    }

    async fn grow_kib(&mut self, n: u32) -> Result<(), Overloaded> {
        if n == 0 {
            return Ok(());
        }
        let budget = Arc::clone(&self.budget);
        if self.permits.kib.saturating_add(n) > budget.account_kib {
            return Err(self.refused());
        }
        let step = async {
            let share = Arc::clone(&self.share)
                .acquire_many_owned(n)
                .await
                .map_err(|_| Overloaded)?;
            let held = budget.account_kib as usize - self.share.available_permits();
            let general = Arc::clone(&budget.general).acquire_many_owned(n);
            let from_budget = if held < budget.small_kib as usize {
                let reserve = Arc::clone(&budget.reserve).acquire_many_owned(n);
                // The general part first, so that the reserve is spent only once it is gone.
                tokio::select! {
                    biased;
                    permit = general => permit.map(|p| (p, false)),
                    permit = reserve => permit.map(|p| (p, true)),
                }
            } else {
                general.await.map(|p| (p, false))
            };
            let (permit, is_reserve) = from_budget.map_err(|_| Overloaded)?;
            Ok::<_, Overloaded>((share, permit, is_reserve))
        };
        let Ok(Ok((share, permit, is_reserve))) = tokio::time::timeout(budget.wait, step).await
        else {
            return Err(self.refused());
        };
        merge(&mut self.permits.share, share);
        if is_reserve {
            merge(&mut self.permits.reserve, permit);
        } else {
            merge(&mut self.permits.general, permit);
        }
        self.permits.kib += n;
        budget.report();
        Ok(())
    }

    /// Counts a refusal; the grant is to be dropped by the caller.
    fn refused(&self) -> Overloaded {
        metrics::counter!("agentvista_overloaded_total", "endpoint" => self.endpoint).increment(1);
        Overloaded
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        let held = std::mem::take(&mut self.permits).kib;
        if held > 0 {
            self.budget.report();
        }
        // The account's share goes with its last grant; the map holds one reference, this
        // grant another.
        let mut accounts = lock(&self.budget.accounts);
        if Arc::strong_count(&self.share) == 2 {
            accounts.remove(&self.account);
        }
    }
}

fn merge(slot: &mut Option<OwnedSemaphorePermit>, permit: OwnedSemaphorePermit) {
    match slot {
        Some(held) => held.merge(permit),
        None => *slot = Some(permit),
    }
}

/// Whole KiB, rounded up, saturating.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(KIB)).unwrap_or(u32::MAX)
}

/// The map's lock, whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn budget(total_mib: usize, share: f64) -> MemoryBudget {
        MemoryBudget::new(BudgetLimits {
            memory_budget_bytes: total_mib * MIB,
            account_share: share,
            wait: Duration::from_millis(50),
        })
    }

    #[tokio::test]
    async fn grants_add_up_and_are_released_when_dropped() {
        let budget = budget(16, 0.5);
        let mut a = budget.grant(AccountId(1), "test");
        a.grow(3 * MIB).await.unwrap();
        a.hold(2 * MIB).await.unwrap();
        assert_eq!(a.bytes(), 3 * MIB);
        a.hold(4 * MIB + 1).await.unwrap();
        assert_eq!(a.bytes(), 4 * MIB + KIB);
        assert_eq!(budget.in_use_bytes(), 4 * MIB + KIB);
        drop(a);
        assert_eq!(budget.in_use_bytes(), 0);
        assert!(lock(&budget.inner.accounts).is_empty());
    }

    #[tokio::test]
    async fn one_account_holds_at_most_its_share_and_others_still_get_room() {
        let budget = budget(16, 0.25);
        let mut flood = budget.grant(AccountId(1), "test");
        flood.grow(4 * MIB).await.unwrap();
        // Past its share, whether in one step or another grant of the same account.
        let mut more = budget.grant(AccountId(1), "test");
        assert_eq!(more.grow(KIB).await, Err(Overloaded));
        assert_eq!(flood.grow(KIB).await, Err(Overloaded));
        let mut other = budget.grant(AccountId(2), "test");
        other.grow(4 * MIB).await.unwrap();
        // More than a share can never be granted: refused at once, not after the wait.
        let mut huge = budget.grant(AccountId(3), "test");
        assert_eq!(huge.grow(5 * MIB).await, Err(Overloaded));
    }

    #[tokio::test]
    async fn the_last_quarter_is_kept_for_accounts_holding_little() {
        // 16 MiB: 12 general, 4 in reserve; one account may hold 8, a small one under 1.
        let budget = budget(16, 0.5);
        let mut big = budget.grant(AccountId(1), "test");
        big.grow(8 * MIB).await.unwrap();
        let mut second = budget.grant(AccountId(2), "test");
        second.grow(4 * MIB).await.unwrap();
        // The general part is gone; account 2 holds 4 MiB, too much for the reserve.
        assert_eq!(second.grow(KIB).await, Err(Overloaded));
        // A small account still gets the reserve.
        let mut small = budget.grant(AccountId(3), "test");
        small.grow(512 * KIB).await.unwrap();
        assert_eq!(budget.in_use_bytes(), 12 * MIB + 512 * KIB);
    }

    #[tokio::test]
    async fn a_waiting_step_is_granted_when_room_is_released() {
        let budget = MemoryBudget::new(BudgetLimits {
            memory_budget_bytes: 4 * MIB,
            account_share: 1.0,
            wait: Duration::from_secs(30),
        });
        let mut first = budget.grant(AccountId(1), "test");
        first.grow(3 * MIB).await.unwrap();
        let mut second = budget.grant(AccountId(2), "test");
        let waiting =
            tokio::spawn(async move { second.grow(2 * MIB).await.map(|()| second.bytes()) });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        assert_eq!(waiting.await.unwrap(), Ok(2 * MIB));
    }
}
