//! sea-orm entities, one per table. Private to the crate: callers get domain types.

pub(crate) mod accounts;
pub(crate) mod api_keys;
pub(crate) mod event_contexts;
pub(crate) mod events;
pub(crate) mod sessions;
pub(crate) mod traces;
pub(crate) mod usage_periods;
pub(crate) mod users;
