#![doc = include_str!("../README.md")]

mod accounts;
mod audit;
mod barrier;
mod changes;
mod daily;
mod db;
mod entities;
mod error;
mod events;
mod group;
#[cfg(test)]
mod group_tests;
mod ids;
mod invitations;
mod keys;
mod ledger;
mod locks;
mod lookup;
mod memberships;
mod replica;
mod revoke;
mod roll;
mod sessions;
mod setup;
mod span;
mod sql;
mod store;
mod sweep;
mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
mod trace_page;
mod users;

pub use accounts::{Account, Accounts};
pub use agentvista_keys::{MAX_ROLL_GRACE, RateLimitChange, RollError, RollTerms, Rolled};
pub use audit::{
    AuditAction, AuditEntry, AuditLog, AuditPage, MAX_AUDIT_PAGE, MAX_USER_AGENT_CHARS,
    NewAuditEntry, Origin,
};
pub use daily::{DailyUsage, KeyUsage};
pub use db::{DEFAULT_LEASE, MAX_LEASE, MIN_LEASE, SqliteSync, StoreOptions};
pub use error::{ConnectFailure, StoreError};
pub use events::{
    CursorError, EventCursor, EventPage, Events, NAME_SEARCH_WINDOW, StoredEvent, TraceCursor,
    TraceFilter, TracePage, TraceSummary, in_storable_range,
};
pub use ids::{AccountId, KeyId, UserId};
pub use invitations::{Acceptance, Invitation, Invitations, NewInvitation, PendingInvitation};
pub use keys::{Keys, NewKey};
pub use ledger::{EventBatch, NewContext, NewEvent};
pub use memberships::{ChangedBy, Member, MemberChange, Membership, Memberships};
pub use replica::{Replica, ReplicaOptions};
pub use sessions::{
    CurrentAccount, LAST_SEEN_GRANULARITY, NewSession, Session, SessionInfo, Sessions,
};
pub use setup::FirstUser;
pub use span::{SpanFields, SpanStatus, TokenUsage};
pub use store::Store;
pub use sweep::{Filled, SpanMapping, Sweep, Swept};
pub use telemetry::describe_metrics;
pub use trace_page::{PageContext, PageEvent, TraceEventsPage, TraceEventsPlan};
pub use users::{PasswordChange, User, UserCredentials, Users};
