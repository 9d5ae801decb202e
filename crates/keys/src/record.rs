//! A stored key as every layer sees it, and what revoking it did.

use chrono::{DateTime, TimeDelta, Utc};

use crate::{AccountId, Expiry, KeyId, KeyPrefix, KeyStatus, RateLimit, Scopes, UserId};

/// A key's `last_used_at` is noted at most this often: it is a hint, not an audit log, and a
/// busy key costs one write a minute, not one a request.
pub const LAST_USED_GRANULARITY: TimeDelta = TimeDelta::seconds(60);

/// A stored key as the API shows it and verification reads it: never the key, never its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// Row id.
    pub id: KeyId,
    /// The owning account.
    pub account_id: AccountId,
    /// The user who created it, if it was made by a user (not the CLI or another key).
    pub created_by: Option<UserId>,
    /// Human name, e.g. "production".
    pub name: String,
    /// `av_` + 8 hex, unique.
    pub prefix: KeyPrefix,
    /// What the key may do.
    pub scopes: Scopes,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expiry: Expiry,
    /// Last successful authentication, to within [`LAST_USED_GRANULARITY`].
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Its own request rate, enforced per replica; `None`: only the plan's monthly events
    /// limit it.
    pub rate_limit: Option<RateLimit>,
}

impl KeyRecord {
    /// Active, expired or revoked at `now`.
    #[must_use]
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        KeyStatus::at(self.expiry, self.revoked_at, now)
    }
}

/// The result of a revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked by this call.
    Now,
    /// It was revoked already (revoking twice is not an error).
    Already,
}

/// Who changed a key, as the key's change log records it (and, later, its audit log).
///
/// ```
/// use agentvista_keys::{Actor, KeyPrefix, UserId};
///
/// assert_eq!(Actor::User(UserId(7)).to_string(), "user:7");
/// let prefix = KeyPrefix::parse("av_0123abcd").unwrap();
/// assert_eq!(Actor::Key(prefix).to_string(), "key:av_0123abcd");
/// assert_eq!(Actor::Cli.to_string(), "cli");
/// assert_eq!(Actor::LeakReport.to_string(), "leak_report");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user of the dashboard or the session API.
    User(UserId),
    /// An API key (an `admin` key, or the key revoking itself), named by its prefix.
    Key(KeyPrefix),
    /// An operator, with the command-line interface.
    Cli,
    /// Whoever found the key where it was leaked and reported it (a secret scanner): no one
    /// the server knows.
    LeakReport,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::Key(prefix) => write!(f, "key:{prefix}"),
            Actor::Cli => f.write_str("cli"),
            Actor::LeakReport => f.write_str("leak_report"),
        }
    }
}
