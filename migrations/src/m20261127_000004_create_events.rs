use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000001_create_accounts_users_sessions::Accounts;
use crate::m20261127_000002_create_api_keys::ApiKeys;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Id))
                    .col(big_integer(Events::AccountId))
                    .col(big_integer_null(Events::ApiKeyId))
                    // The client's id (batch `id`, or `<trace>-<span>` for OTLP spans).
                    .col(string_null(Events::ClientEventId))
                    .col(string(Events::EventType))
                    .col(string_null(Events::TraceId))
                    .col(string_null(Events::Name))
                    .col(timestamp_with_time_zone(Events::Timestamp))
                    .col(json_binary_null(Events::Body))
                    .col(timestamp_with_time_zone(Events::ReceivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::ApiKeyId)
                            .to(ApiKeys::Table, ApiKeys::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // Duplicate detection. NULL ids never conflict, on SQLite and PostgreSQL alike.
        manager
            .create_index(
                Index::create()
                    .name("uq_events_account_client_id")
                    .table(Events::Table)
                    .col(Events::AccountId)
                    .col(Events::ClientEventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // "Events of one trace, oldest first" and "traces of an account" (grouped by trace).
        manager
            .create_index(
                Index::create()
                    .name("idx_events_account_trace_time")
                    .table(Events::Table)
                    .col(Events::AccountId)
                    .col(Events::TraceId)
                    .col(Events::Timestamp)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    AccountId,
    ApiKeyId,
    ClientEventId,
    EventType,
    TraceId,
    Name,
    Timestamp,
    Body,
    ReceivedAt,
}
