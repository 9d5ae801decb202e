//! Row identifiers: the domain's own (`agentvista-keys`), re-exported where storage callers
//! have always found them.

pub use agentvista_keys::{AccountId, KeyId, UserId};
