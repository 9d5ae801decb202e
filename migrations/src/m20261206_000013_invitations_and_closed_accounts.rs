//! Invitations, and accounts that are closed rather than deleted.
//!
//! - `invitations`: an admin invites an e-mail to an account with a role; the link's token is
//!   kept as its SHA-256 only. A pending invitation is one neither accepted nor revoked and
//!   not yet expired; a new one for the same e-mail and account replaces the pending one.
//! - `accounts.deleted_at`, `deleted_by`, `purged_at`: a deleted account's row stays as its
//!   tombstone (who deleted it, when, and when its data was all removed), so that no
//!   deletion ever reaches a person's login or a key's row before its time.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, string, string_len_uniq, string_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

use crate::m20261127_000001_create_accounts_users_sessions::Accounts;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(big_pk_auto(Invitations::Id))
                    .col(big_integer(Invitations::AccountId))
                    .col(string(Invitations::Email))
                    .col(string(Invitations::Role))
                    .col(string_len_uniq(Invitations::TokenHash, 64))
                    .col(big_integer_null(Invitations::InvitedBy))
                    .col(timestamp_with_time_zone(Invitations::CreatedAt))
                    .col(timestamp_with_time_zone(Invitations::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Invitations::AcceptedAt))
                    .col(timestamp_with_time_zone_null(Invitations::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_invitations_account_email")
                    .table(Invitations::Table)
                    .col(Invitations::AccountId)
                    .col(Invitations::Email)
                    .to_owned(),
            )
            .await?;
        // SQLite alters one column per statement.
        for column in [
            timestamp_with_time_zone_null(Tombstone::DeletedAt),
            string_null(Tombstone::DeletedBy),
            timestamp_with_time_zone_null(Tombstone::PurgedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Tombstone::PurgedAt,
            Tombstone::DeletedBy,
            Tombstone::DeletedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Invitations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tombstone {
    DeletedAt,
    DeletedBy,
    PurgedAt,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    AccountId,
    Email,
    Role,
    TokenHash,
    InvitedBy,
    CreatedAt,
    ExpiresAt,
    AcceptedAt,
    RevokedAt,
}
