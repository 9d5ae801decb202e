//! What the ledger remembers between transactions, so that a job whose account and contexts
//! it has seen before skips the transaction's opening read (one statement, and on PostgreSQL
//! one round trip, of the four or five the transaction makes).
//!
//! Neither memory can make the count wrong:
//! - **Terms** (plan and spend cap) may be stale: a job that uses remembered terms has the
//!   counting statement confirm them against the account row, under its lock on PostgreSQL and
//!   under the write lock on SQLite (`usage::count`); if they changed, the terms are read again
//!   and the count runs once more, as when a change races the opening read.
//! - **Context ids** are never those of deleted rows: an id is remembered only once the
//!   transaction that read or inserted it has committed, together with the day that transaction
//!   saw in the row's `last_seen` (or wrote there), and it is reused only by jobs received on
//!   that day or before. The retention sweep deletes only contexts whose `last_seen` is past
//!   their plan's retention, which a day a job was received on never is; a job of a later day
//!   reads the row again and raises its `last_seen`.

use chrono::NaiveDate;
use quick_cache::sync::Cache;

use super::batch::HashedContext;
use super::usage::Terms;
use crate::AccountId;

/// Accounts whose terms are remembered: beyond this the least used are forgotten.
const TERMS: usize = 16_384;
/// Contexts whose ids are remembered (about 150 bytes each: 10 MB in all).
const CONTEXTS: usize = 65_536;

/// The remembered terms and context ids, bounded (see the module documentation).
pub(super) struct Memo {
    terms: Cache<AccountId, Terms>,
    /// Row id, and the `last_seen` day the row is known to have.
    contexts: Cache<(AccountId, String), (i64, NaiveDate)>,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("terms", &self.terms.len())
            .field("contexts", &self.contexts.len())
            .finish()
    }
}

/// What a job starts from when the memo knows its account and every one of its contexts.
pub(super) struct Remembered {
    pub(super) terms: Terms,
    /// Row ids of the job's contexts, by index.
    pub(super) context_ids: Vec<i64>,
}

/// What a committed job read or wrote that the memo may keep.
#[derive(Debug)]
pub(crate) struct Learned {
    pub(super) terms: Terms,
    /// Content hash and row id of each context the job did not find in the memo.
    pub(super) contexts: Vec<(String, i64)>,
    /// The `last_seen` day the job left those contexts with (at least).
    pub(super) seen: NaiveDate,
}

impl Memo {
    pub(super) fn new() -> Self {
        Memo {
            terms: Cache::new(TERMS),
            contexts: Cache::new(CONTEXTS),
        }
    }

    /// The account's terms and the ids of all of `contexts`, if the memo has them all as seen
    /// on `day` or later.
    pub(super) fn recall(
        &self,
        account: AccountId,
        contexts: &[HashedContext],
        day: NaiveDate,
    ) -> Option<Remembered> {
        let terms = self.terms.get(&account)?;
        let context_ids = contexts
            .iter()
            .map(|c| {
                self.contexts
                    .get(&(account, c.hash.clone()))
                    .filter(|(_, seen)| *seen >= day)
                    .map(|(id, _)| id)
            })
            .collect::<Option<Vec<i64>>>()?;
        Some(Remembered { terms, context_ids })
    }

    /// Keeps what a job learned; call only once its transaction has committed.
    pub(super) fn learn(&self, account: AccountId, learned: Learned) {
        self.terms.insert(account, learned.terms);
        for (hash, id) in learned.contexts {
            self.contexts.insert((account, hash), (id, learned.seen));
        }
    }
}
