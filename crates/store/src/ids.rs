//! Row identifiers, one type each so that a key id cannot be passed as a user id.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use agentvista_quota::AccountId;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user of the dashboard.
    UserId
);
id_type!(
    /// An API key's row (the `id` of the API's key object).
    KeyId
);
