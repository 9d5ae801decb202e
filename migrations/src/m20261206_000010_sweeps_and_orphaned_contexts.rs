//! What the retention sweep needs to bound disk and to run on one replica at a time:
//!
//! - `event_contexts.last_seen`: the latest day (UTC) an event referring to the context was
//!   received, raised by ingestion; a context whose day is past its plan's retention has no
//!   event left. Existing contexts start at the day of this migration.
//! - `event_contexts.orphaned_at`: when a sweep found the context unreferenced (milliseconds
//!   since the epoch on the database's clock); a later sweep deletes it if it is still marked
//!   and still unreferenced, and an ingestion that reuses it clears the mark;
//! - contexts indexed by `parent_id` (whether a context has children; PostgreSQL's cascade
//!   from a parent would otherwise scan the table) and by `orphaned_at`;
//! - `sweeps`: one row per sweep, leased by one replica at a time on the database's clock.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const CONTEXTS_BY_PARENT: &str = "idx_event_contexts_parent";
const CONTEXTS_BY_MARK: &str = "idx_event_contexts_orphaned";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(EventContexts::Table)
                    .add_column(big_integer_null(EventContexts::OrphanedAt))
                    .to_owned(),
            )
            .await?;
        // SQLite adds no column with a default that is not a constant: fill it afterwards.
        manager
            .alter_table(
                Table::alter()
                    .table(EventContexts::Table)
                    .add_column(date_null(EventContexts::LastSeen))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE event_contexts SET last_seen = CURRENT_DATE")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CONTEXTS_BY_PARENT)
                    .table(EventContexts::Table)
                    .col(EventContexts::ParentId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CONTEXTS_BY_MARK)
                    .table(EventContexts::Table)
                    .col(EventContexts::OrphanedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sweeps::Table)
                    .col(string_len(Sweeps::Name, 32).primary_key())
                    // Who holds the lease: a random id per process.
                    .col(string_len_null(Sweeps::Holder, 64))
                    // Milliseconds since the epoch on the database's clock; 0: free.
                    .col(big_integer(Sweeps::LeaseUntil).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Sweeps::Table)
                    .columns([Sweeps::Name, Sweeps::LeaseUntil])
                    .values_panic(["retention".into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sweeps::Table).to_owned())
            .await?;
        for name in [CONTEXTS_BY_MARK, CONTEXTS_BY_PARENT] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(EventContexts::Table)
                        .to_owned(),
                )
                .await?;
        }
        for column in [EventContexts::OrphanedAt, EventContexts::LastSeen] {
            manager
                .alter_table(
                    Table::alter()
                        .table(EventContexts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum EventContexts {
    Table,
    ParentId,
    OrphanedAt,
    LastSeen,
}

#[derive(DeriveIden)]
enum Sweeps {
    Table,
    Name,
    Holder,
    LeaseUntil,
}
