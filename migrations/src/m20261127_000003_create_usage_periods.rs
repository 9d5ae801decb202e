use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000001_create_accounts_users_sessions::Accounts;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsagePeriods::Table)
                    .col(big_integer(UsagePeriods::AccountId))
                    // First day of the calendar month (UTC).
                    .col(date(UsagePeriods::PeriodStart))
                    .col(big_integer(UsagePeriods::EventsUsed).default(0))
                    .primary_key(
                        Index::create()
                            .col(UsagePeriods::AccountId)
                            .col(UsagePeriods::PeriodStart),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(UsagePeriods::Table, UsagePeriods::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsagePeriods::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UsagePeriods {
    Table,
    AccountId,
    PeriodStart,
    EventsUsed,
}
