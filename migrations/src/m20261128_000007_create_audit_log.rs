//! `audit_log`: append-only, one row per action on an account's credentials and terms — keys
//! created, rolled and revoked, logins that succeeded or failed, the first-run setup, spend-cap
//! and plan changes — with who did it, from where and with what client.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(big_pk_auto(AuditLog::Id))
                    .col(big_integer(AuditLog::AccountId))
                    .col(timestamp_with_time_zone(AuditLog::At))
                    // `key.created`, `key.rolled`, `key.revoked`, `login.succeeded`, …
                    .col(string_len(AuditLog::Action, 48))
                    // `user:<id>`, `key:<prefix>`, `cli`, or `email:<address>` for a failed login.
                    .col(string_len(AuditLog::Actor, 320))
                    // What was acted on: a key's prefix, a user's e-mail.
                    .col(string_len_null(AuditLog::Target, 320))
                    .col(string_len_null(AuditLog::ClientAddress, 45))
                    .col(string_len_null(AuditLog::UserAgent, 256))
                    // The action's particulars as JSON text (`{"grace_seconds": 3600}`).
                    .col(text_null(AuditLog::Detail))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuditLog::Table, AuditLog::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The log's pages: newest first, per account.
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_log_account")
                    .table(AuditLog::Table)
                    .col(AuditLog::AccountId)
                    .col((AuditLog::Id, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    AccountId,
    At,
    Action,
    Actor,
    Target,
    ClientAddress,
    UserAgent,
    Detail,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}
