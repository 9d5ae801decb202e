//! The AgentVista schema as sea-orm migrations. They run on SQLite and PostgreSQL, each has a
//! `down`, and a released migration is never edited: a change is a new file.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_accounts_users_sessions;
mod m20261127_000002_create_api_keys;
mod m20261127_000003_create_usage_periods;
mod m20261127_000004_create_events;
mod m20261128_000005_create_event_contexts_and_traces;
mod m20261128_000006_create_key_changes_and_replicas;
mod m20261128_000007_create_audit_log;
mod m20261128_000008_add_key_rate_limits;
mod m20261128_000009_create_usage_daily;
mod m20261206_000010_sweeps_and_orphaned_contexts;
mod m20261206_000011_key_successors_and_kept_keys;
mod m20261206_000012_memberships;
mod m20261206_000013_invitations_and_closed_accounts;
mod m20261206_000014_span_fields;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_accounts_users_sessions::Migration),
            Box::new(m20261127_000002_create_api_keys::Migration),
            Box::new(m20261127_000003_create_usage_periods::Migration),
            Box::new(m20261127_000004_create_events::Migration),
            Box::new(m20261128_000005_create_event_contexts_and_traces::Migration),
            Box::new(m20261128_000006_create_key_changes_and_replicas::Migration),
            Box::new(m20261128_000007_create_audit_log::Migration),
            Box::new(m20261128_000008_add_key_rate_limits::Migration),
            Box::new(m20261128_000009_create_usage_daily::Migration),
            Box::new(m20261206_000010_sweeps_and_orphaned_contexts::Migration),
            Box::new(m20261206_000011_key_successors_and_kept_keys::Migration),
            Box::new(m20261206_000012_memberships::Migration),
            Box::new(m20261206_000013_invitations_and_closed_accounts::Migration),
            Box::new(m20261206_000014_span_fields::Migration),
        ]
    }
}
