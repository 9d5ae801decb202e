//! sea-orm entities, one per table. Private to the crate: callers get domain types.

pub(crate) mod accounts;
pub(crate) mod api_keys;
pub(crate) mod event_contexts;
pub(crate) mod events;
pub(crate) mod sessions;
pub(crate) mod traces;
pub(crate) mod usage_periods;
pub(crate) mod users;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};

use crate::AccountId;

/// A table whose rows belong to one account. Reads and updates of such rows start from
/// [`OfAccount::of_account`] (as svix's `secure_find`), so that the tenant's scope is part of
/// building the query, and a query without it — `find()` — is the one that
/// looks wrong in review (the few that are right say why: a key found by its hash, say).
pub(crate) trait OfAccount: EntityTrait {
    /// The column naming the owning account.
    fn account_column() -> Self::Column;

    /// Rows of `account` only.
    fn of_account(account: AccountId) -> Select<Self> {
        Self::find().filter(Self::account_column().eq(account.0))
    }
}

macro_rules! of_account {
    ($($table:ident),* $(,)?) => {$(
        impl OfAccount for $table::Entity {
            fn account_column() -> $table::Column {
                $table::Column::AccountId
            }
        }
    )*};
}

of_account!(api_keys, event_contexts, events, traces, usage_periods);
