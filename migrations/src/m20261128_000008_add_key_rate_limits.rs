//! `api_keys.rate_limit_per_second` and `rate_limit_burst`: a key's own GCRA rate limit, both
//! set or both null (no limit beyond the plan's monthly events).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000002_create_api_keys::ApiKeys;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum RateLimit {
    RateLimitPerSecond,
    RateLimitBurst,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite alters a table one change at a time.
        for column in [RateLimit::RateLimitPerSecond, RateLimit::RateLimitBurst] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .add_column(integer_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [RateLimit::RateLimitBurst, RateLimit::RateLimitPerSecond] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
