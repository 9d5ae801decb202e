#![doc = include_str!("../README.md")]

pub mod format;
pub mod password;
pub mod session;

mod email;
mod expiry;
mod hash;
mod ids;
mod invitation;
mod key;
mod lookup;
mod names;
mod origin;
mod prefix;
mod rate_limit;
mod record;
mod redact;
mod role;
mod roll;
mod scope;

pub use email::{Email, EmailError};
pub use expiry::{Expiry, ExpiryInPast, KeyStatus};
pub use hash::{HashHexError, KeyHash};
pub use ids::{AccountId, KeyId, UserId};
pub use invitation::{INVITATION_MARKER, INVITATION_SECRET_LEN, InvitationHash, InvitationToken};
pub use key::{ApiKey, GenerateError, ParseError};
pub use lookup::{
    AccountClosing, Asked, KeyLookup, LeakReport, LookupError, LookupFuture, ReportedKey,
    RollFuture,
};
pub use names::{AccountName, AccountNameError, KeyName, KeyNameError};
pub use origin::{MAX_USER_AGENT_CHARS, Origin};
pub use prefix::{KeyPrefix, PrefixError};
pub use rate_limit::{RateLimit, RateLimitError};
pub use record::{Actor, KeyRecord, LAST_USED_GRANULARITY, Revoked};
pub use redact::redact_keys;
pub use role::{Role, RoleError};
pub use roll::{MAX_ROLL_GRACE, RateLimitChange, RollError, RollTerms, Rolled};
pub use scope::{Scope, ScopeError, Scopes};

/// The repository README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct RepositoryReadme;
