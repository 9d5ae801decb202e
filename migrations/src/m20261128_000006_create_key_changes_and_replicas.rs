//! The revocation barrier's tables (`docs/architecture.md`, "Verified keys in memory"):
//!
//! - `key_log_head`: one row, the last `seq` handed out. Taken with `UPDATE … RETURNING` in the
//!   transaction that changes a key, so its row lock orders `seq` by commit (a sequence or an
//!   identity column hands out numbers in the order transactions *ask*, not the order they
//!   commit, and a follower reading "everything after n" could then miss a late committer).
//! - `key_changes`: append-only, one row per change that can stop a key from working.
//! - `replicas`: every running server that verifies keys from memory, how far it has applied
//!   the log, and until when (database clock, milliseconds since the epoch) its lease runs.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KeyLogHead::Table)
                    .col(integer(KeyLogHead::Id).primary_key())
                    .col(big_integer(KeyLogHead::Seq))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(KeyLogHead::Table)
                    .columns([KeyLogHead::Id, KeyLogHead::Seq])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(KeyChanges::Table)
                    .col(big_integer(KeyChanges::Seq).primary_key())
                    .col(big_integer(KeyChanges::KeyId))
                    // SHA-256 (hex) of the key: what a replica's cache is keyed by.
                    .col(string_len(KeyChanges::KeyHash, 64))
                    .col(big_integer(KeyChanges::AccountId))
                    // What changed: `revoked` today; `expiry`, `rolled`, `deleted` to come.
                    .col(string_len(KeyChanges::Kind, 32))
                    // Who: `user:<id>`, `key:<prefix>`, `cli`.
                    .col(string_len(KeyChanges::Actor, 64))
                    .col(timestamp_with_time_zone(KeyChanges::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_key_changes_key")
                    .table(KeyChanges::Table)
                    .col(KeyChanges::KeyId)
                    .col(KeyChanges::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Replicas::Table)
                    // 32 random hex digits, drawn at start-up.
                    .col(string_len(Replicas::Id, 32).primary_key())
                    .col(big_integer(Replicas::AppliedSeq))
                    // Milliseconds since the epoch, on the database's clock.
                    .col(big_integer(Replicas::LeaseUntil))
                    // Its `auth.lease_ms`: a revocation waits out the longest lease it sees,
                    // so a server configured apart from the others cannot be outwaited.
                    .col(big_integer(Replicas::LeaseMs))
                    .col(timestamp_with_time_zone(Replicas::StartedAt))
                    // host:port, for the log line that names a replica delaying a revocation.
                    .col(string(Replicas::Label))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Replicas::Table.into_iden(),
            KeyChanges::Table.into_iden(),
            KeyLogHead::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum KeyLogHead {
    Table,
    Id,
    Seq,
}

#[derive(DeriveIden)]
enum KeyChanges {
    Table,
    Seq,
    KeyId,
    KeyHash,
    AccountId,
    Kind,
    Actor,
    At,
}

#[derive(DeriveIden)]
enum Replicas {
    Table,
    Id,
    AppliedSeq,
    LeaseUntil,
    LeaseMs,
    StartedAt,
    Label,
}
