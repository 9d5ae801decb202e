#![doc = include_str!("../README.md")]

mod accounts;
mod connect;
mod entities;
mod error;
mod events;
mod group;
mod ids;
mod keys;
mod ledger;
mod sessions;
mod setup;
#[cfg(feature = "test-support")]
pub mod testing;
mod users;

pub use accounts::{Account, Accounts};
pub use connect::{SqliteSync, Store, StoreOptions};
pub use error::StoreError;
pub use events::{
    CursorError, EventBatch, EventCursor, EventPage, Events, NewContext, NewEvent, StoredEvent,
    TraceCursor, TracePage, TraceSummary,
};
pub use ids::{AccountId, KeyId, UserId};
pub use keys::{KeyRecord, Keys, LAST_USED_GRANULARITY, NewKey, Revoked};
pub use sessions::{Session, Sessions};
pub use setup::FirstUser;
pub use users::{User, UserCredentials, Users};
