//! `usage_daily`: the events counted per account, API key and day (UTC), written by the same
//! transaction that counts them in `usage_periods`, so the days of a month always add up to its
//! count. `key_id` 0 stands for events sent with a dashboard session rather than a key. Filled
//! here from the events stored so far (each counts on the day it was received).

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageDaily::Table)
                    .col(big_integer(UsageDaily::AccountId))
                    .col(date(UsageDaily::Day))
                    .col(big_integer(UsageDaily::KeyId))
                    .col(big_integer(UsageDaily::Events).default(0))
                    // A month's days and keys are one range of the key.
                    .primary_key(
                        Index::create()
                            .col(UsageDaily::AccountId)
                            .col(UsageDaily::Day)
                            .col(UsageDaily::KeyId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(UsageDaily::Table, UsageDaily::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let day = match manager.get_database_backend() {
            DbBackend::Postgres => "CAST(received_at AT TIME ZONE 'UTC' AS DATE)",
            // Stored in UTC as text that starts with the date.
            _ => "substr(received_at, 1, 10)",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO usage_daily (account_id, day, key_id, events) \
                 SELECT account_id, {day}, COALESCE(api_key_id, 0), COUNT(*) FROM events \
                 GROUP BY account_id, {day}, COALESCE(api_key_id, 0)"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsageDaily::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UsageDaily {
    Table,
    AccountId,
    Day,
    KeyId,
    Events,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}
