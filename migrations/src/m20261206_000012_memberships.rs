//! Teams: a person may belong to several accounts, with a role in each.
//!
//! - `memberships (account_id, user_id, role, created_at)`: one row per person and account.
//!   Every existing user becomes the `owner` of the account they were created in.
//! - `users.account_id` stays, as the account the person last switched to: a login starts
//!   there while they are still a member of it.
//! - `sessions` gain the account they act in (`account_id`, null for a person with no account)
//!   and what the person sees of them: `last_seen_at`, `client_address`, `user_agent`.
//! - No account row is ever deleted with people in it: PostgreSQL's foreign key from `users`
//!   to `accounts` becomes `ON DELETE RESTRICT`; SQLite cannot alter a foreign key without
//!   rebuilding the table, so a `BEFORE DELETE` trigger on `accounts` refuses instead. An
//!   account's deletion hides it and removes its data, and never takes a person's login.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, string, string_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261127_000001_create_accounts_users_sessions::{Accounts, Users};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The SQLite trigger that keeps an account with people in it.
const TRIGGER: &str = "accounts_keep_their_people";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(big_integer(Memberships::AccountId))
                    .col(big_integer(Memberships::UserId))
                    .col(string(Memberships::Role))
                    .col(timestamp_with_time_zone(Memberships::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Memberships::AccountId)
                            .col(Memberships::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Memberships::Table, Memberships::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Memberships::Table, Memberships::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_memberships_user")
                    .table(Memberships::Table)
                    .col(Memberships::UserId)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "INSERT INTO memberships (account_id, user_id, role, created_at) \
             SELECT account_id, id, 'owner', created_at FROM users",
        )
        .await?;

        // SQLite alters one column per statement.
        for column in [
            big_integer_null(SessionAccount::AccountId),
            timestamp_with_time_zone_null(SessionAccount::LastSeenAt),
            string_null(SessionAccount::ClientAddress),
            string_null(SessionAccount::UserAgent),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(SessionAccount::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        db.execute_unprepared(
            "UPDATE sessions SET account_id = \
             (SELECT users.account_id FROM users WHERE users.id = sessions.user_id), \
             last_seen_at = created_at",
        )
        .await?;

        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE users DROP CONSTRAINT users_account_id_fkey, \
                     ADD CONSTRAINT users_account_id_fkey FOREIGN KEY (account_id) \
                     REFERENCES accounts (id) ON DELETE RESTRICT",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER {TRIGGER} BEFORE DELETE ON accounts \
                     WHEN EXISTS (SELECT 1 FROM users WHERE account_id = OLD.id) \
                     BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: \
                     an account with people in it cannot be deleted'); END"
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
                    "ALTER TABLE users DROP CONSTRAINT users_account_id_fkey, \
                     ADD CONSTRAINT users_account_id_fkey FOREIGN KEY (account_id) \
                     REFERENCES accounts (id) ON DELETE CASCADE",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {TRIGGER}"))
                    .await?;
            }
        }
        for column in [
            SessionAccount::UserAgent,
            SessionAccount::ClientAddress,
            SessionAccount::LastSeenAt,
            SessionAccount::AccountId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(SessionAccount::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Memberships::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    AccountId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SessionAccount {
    #[sea_orm(iden = "sessions")]
    Table,
    AccountId,
    LastSeenAt,
    ClientAddress,
    UserAgent,
}
