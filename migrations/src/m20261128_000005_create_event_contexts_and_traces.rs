//! Shared event contexts (an OTLP request's resource and scope, stored once per account) and
//! per-trace summaries (kept by the accounting transaction, so listing traces reads one row per
//! trace instead of aggregating every event).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000001_create_accounts_users_sessions::Accounts;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Existing events summarised per trace; `name` is that of the earliest named event, ties
/// going to the lowest id, as the accounting transaction keeps it afterwards.
const BACKFILL_TRACES: &str = "\
INSERT INTO traces (account_id, trace_id, name, name_at, started_at, last_at, event_count) \
SELECT e.account_id, e.trace_id, \
       (SELECT n.name FROM events n \
         WHERE n.account_id = e.account_id AND n.trace_id = e.trace_id AND n.name IS NOT NULL \
         ORDER BY n.timestamp, n.id LIMIT 1), \
       (SELECT n.timestamp FROM events n \
         WHERE n.account_id = e.account_id AND n.trace_id = e.trace_id AND n.name IS NOT NULL \
         ORDER BY n.timestamp, n.id LIMIT 1), \
       MIN(e.timestamp), MAX(e.timestamp), COUNT(*) \
FROM events e \
WHERE e.trace_id IS NOT NULL \
GROUP BY e.account_id, e.trace_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventContexts::Table)
                    .col(big_pk_auto(EventContexts::Id))
                    .col(big_integer(EventContexts::AccountId))
                    // The context this one adds to (a metric's unit under its scope's context).
                    .col(big_integer_null(EventContexts::ParentId))
                    // SHA-256 (hex) of the parent's hash and the body's canonical JSON.
                    .col(string_len(EventContexts::Hash, 64))
                    .col(json_binary(EventContexts::Body))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EventContexts::Table, EventContexts::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(EventContexts::Table, EventContexts::ParentId)
                            .to(EventContexts::Table, EventContexts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_event_contexts_account_hash")
                    .table(EventContexts::Table)
                    .col(EventContexts::AccountId)
                    .col(EventContexts::Hash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(big_integer_null(Events::ContextId))
                    .to_owned(),
            )
            .await?;
        // No foreign key: PostgreSQL would check it with an index probe and a row lock for
        // every event inserted (measured: a third of the accounting transaction's time at 100
        // events), and SQLite cannot add one to an existing table. The store writes the id it
        // has just read or inserted, in the same transaction, and contexts are never deleted
        // but with their account.

        manager
            .create_table(
                Table::create()
                    .table(Traces::Table)
                    .col(big_integer(Traces::AccountId))
                    .col(string(Traces::TraceId))
                    // Name of the earliest named event, and that event's timestamp.
                    .col(string_null(Traces::Name))
                    .col(timestamp_with_time_zone_null(Traces::NameAt))
                    .col(timestamp_with_time_zone(Traces::StartedAt))
                    .col(timestamp_with_time_zone(Traces::LastAt))
                    .col(big_integer(Traces::EventCount))
                    .primary_key(Index::create().col(Traces::AccountId).col(Traces::TraceId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Traces::Table, Traces::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The trace list's order, so that a page is an index range whatever the account's size.
        manager
            .create_index(
                Index::create()
                    .name("idx_traces_account_started")
                    .table(Traces::Table)
                    .col(Traces::AccountId)
                    .col((Traces::StartedAt, IndexOrder::Desc))
                    .col((Traces::TraceId, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(BACKFILL_TRACES)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Traces::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::ContextId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(EventContexts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum EventContexts {
    Table,
    Id,
    AccountId,
    ParentId,
    Hash,
    Body,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    ContextId,
}

#[derive(DeriveIden)]
enum Traces {
    Table,
    AccountId,
    TraceId,
    Name,
    NameAt,
    StartedAt,
    LastAt,
    EventCount,
}
