//! Two rules of a key's life:
//!
//! - `api_keys.successor_id`: the key a roll made from this one. A key rolls once; a second
//!   roll finds its successor and is refused.
//! - No key row is ever removed with its account: removing a key without a change in the key
//!   change log would leave replicas holding it. PostgreSQL: the foreign key from `api_keys`
//!   to `accounts` becomes `ON DELETE RESTRICT`. SQLite cannot alter a foreign key without
//!   rebuilding the table, and a rebuild would fire `events.api_key_id … ON DELETE SET NULL`
//!   and erase which key sent every event: a `BEFORE DELETE` trigger on `accounts` refuses
//!   instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::big_integer_null;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261127_000002_create_api_keys::ApiKeys;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The SQLite trigger that keeps an account with keys.
const TRIGGER: &str = "accounts_keep_their_keys";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(big_integer_null(Successor::SuccessorId))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE api_keys DROP CONSTRAINT api_keys_account_id_fkey, \
                     ADD CONSTRAINT api_keys_account_id_fkey FOREIGN KEY (account_id) \
                     REFERENCES accounts (id) ON DELETE RESTRICT",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER {TRIGGER} BEFORE DELETE ON accounts \
                     WHEN EXISTS (SELECT 1 FROM api_keys WHERE account_id = OLD.id) \
                     BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: \
                     an account with API keys cannot be deleted'); END"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE api_keys DROP CONSTRAINT api_keys_account_id_fkey, \
                     ADD CONSTRAINT api_keys_account_id_fkey FOREIGN KEY (account_id) \
                     REFERENCES accounts (id) ON DELETE CASCADE",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {TRIGGER}"))
                    .await?;
            }
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(Successor::SuccessorId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Successor {
    SuccessorId,
}
