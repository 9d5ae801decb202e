//! What a roll asks for and answers: a new secret for the same grant, and the old key ending
//! after a grace — as Stripe rolls keys, so that a deployment can switch over without an
//! outage. Rolls go through the [`KeyLookup`](crate::KeyLookup) port, like revocations.

use std::time::Duration;

use crate::{ApiKey, KeyRecord, LookupError, RateLimit};

/// The longest grace a roll may give the old key: seven days.
pub const MAX_ROLL_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a roll asks for besides a new secret.
///
/// ```
/// use std::time::Duration;
/// use agentvista_keys::{RateLimitChange, RollTerms};
///
/// let terms = RollTerms { grace: Duration::from_secs(3600), ..RollTerms::default() };
/// assert_eq!(terms.rate_limit, RateLimitChange::Keep);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RollTerms {
    /// How long the old key keeps working, at most [`MAX_ROLL_GRACE`]; zero revokes it.
    pub grace: Duration,
    /// The new key's rate limit.
    pub rate_limit: RateLimitChange,
}

/// The new key's rate limit on a roll.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RateLimitChange {
    /// The old key's, whatever it is (none included).
    #[default]
    Keep,
    /// This one; `None` removes it.
    Set(Option<RateLimit>),
}

/// What a roll did.
#[derive(Debug)]
pub struct Rolled {
    /// The new key: the only copy of its secret, to hand to its owner once.
    pub key: ApiKey,
    /// The new key's record.
    pub record: KeyRecord,
    /// The old key's record, with its new expiry (or, with no grace, its revocation).
    pub old: KeyRecord,
}

/// Why a key could not be rolled.
#[derive(Debug, thiserror::Error)]
pub enum RollError {
    /// The grace is longer than [`MAX_ROLL_GRACE`].
    #[error("grace_seconds: at most {} (7 days)", MAX_ROLL_GRACE.as_secs())]
    GraceTooLong,
    /// The account has no such key, or its revocation has committed: a revoked key never
    /// gets a successor.
    #[error("no such key")]
    NotFound,
    /// The key has a successor already: it rolls once.
    #[error("this key was rolled already")]
    AlreadyRolled,
    /// The key expired: there is nothing to hand over from.
    #[error("only an active key can be rolled; this one is expired")]
    Expired,
    /// The account holds its most active keys already.
    #[error("the account holds {limit} active keys, the most it may")]
    TooManyKeys {
        /// The most active keys an account may hold.
        limit: u32,
    },
    /// The lookup does not roll keys.
    #[error("this key lookup does not roll keys")]
    Unsupported,
    /// The lookup failed.
    #[error(transparent)]
    Lookup(#[from] LookupError),
}
