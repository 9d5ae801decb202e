//! Row identifiers, one type each so that a key id cannot be passed as a user id. Every crate
//! speaks these; storage maps them to its rows.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    /// An account: the tenant that keys, users, events and usage belong to.
    ///
    /// ```
    /// use agentvista_keys::AccountId;
    /// assert_eq!(AccountId(7).to_string(), "7");
    /// ```
    AccountId
);
id_type!(
    /// A user of the dashboard.
    UserId
);
id_type!(
    /// An API key's row (the `id` of the API's key object).
    KeyId
);
