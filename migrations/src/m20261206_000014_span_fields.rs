//! What makes a trace a tree with durations, and what its model calls used:
//!
//! - `events`: `parent_id`, `end_time`, `status` (`ok` or `error`), `status_message`, `model`,
//!   `input_tokens`, `output_tokens`, written at ingestion; null for events stored before,
//!   until the span-fields job fills the OTLP spans among them;
//! - `traces`: `ended_at` (the latest end time of its events), `error_count`, `status_count`
//!   (events with a status), `usage_count` (events with token usage) and the token sums, kept
//!   with the other summaries in the accounting transaction;
//! - a partial index of the traces with an error, in the list's order, so that "errors only"
//!   reads a page of its own rows however rare they are;
//! - `backfills`: the span-fields job's progress, one row per job: it has filled the events with
//!   ids up to `after_id`, and has nothing to do past `upto_id` (the last event stored before
//!   this migration); the job's lease is a row of `sweeps`.
//!
//! Columns and indexes only: no event is rewritten here, and the one index is of `traces` (a
//! row per trace, not per event), so that the migration costs a read of the trace summaries,
//! whatever the number of events.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const TRACES_WITH_ERRORS: &str = "idx_traces_with_errors";
/// The job's name, in `backfills` and `sweeps`.
const JOB: &str = "span_fields";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        let event_columns = [
            string_null(Events::ParentId),
            timestamp_with_time_zone_null(Events::EndTime),
            string_len_null(Events::Status, 8),
            text_null(Events::StatusMessage),
            string_null(Events::Model),
            big_integer_null(Events::InputTokens),
            big_integer_null(Events::OutputTokens),
        ];
        for mut column in event_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let trace_columns = [
            timestamp_with_time_zone_null(Traces::EndedAt),
            big_integer(Traces::ErrorCount).default(0).to_owned(),
            big_integer(Traces::StatusCount).default(0).to_owned(),
            big_integer(Traces::UsageCount).default(0).to_owned(),
            big_integer(Traces::InputTokens).default(0).to_owned(),
            big_integer(Traces::OutputTokens).default(0).to_owned(),
        ];
        for mut column in trace_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Traces::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE INDEX {TRACES_WITH_ERRORS} ON traces \
             (account_id, started_at DESC, trace_id DESC) WHERE error_count > 0"
        ))
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Backfills::Table)
                    .col(string_len(Backfills::Name, 32).primary_key())
                    .col(big_integer(Backfills::AfterId))
                    .col(big_integer(Backfills::UptoId))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO backfills (name, after_id, upto_id) \
             SELECT '{JOB}', 0, COALESCE(MAX(id), 0) FROM events"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO sweeps (name, lease_until) VALUES ('{JOB}', 0)"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(&format!("DELETE FROM sweeps WHERE name = '{JOB}'"))
            .await?;
        manager
            .drop_table(Table::drop().table(Backfills::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(TRACES_WITH_ERRORS)
                    .table(Traces::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Traces::EndedAt,
            Traces::ErrorCount,
            Traces::StatusCount,
            Traces::UsageCount,
            Traces::InputTokens,
            Traces::OutputTokens,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Traces::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Events::ParentId,
            Events::EndTime,
            Events::Status,
            Events::StatusMessage,
            Events::Model,
            Events::InputTokens,
            Events::OutputTokens,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    ParentId,
    EndTime,
    Status,
    StatusMessage,
    Model,
    InputTokens,
    OutputTokens,
}

#[derive(DeriveIden)]
enum Traces {
    Table,
    EndedAt,
    ErrorCount,
    StatusCount,
    UsageCount,
    InputTokens,
    OutputTokens,
}

#[derive(DeriveIden)]
enum Backfills {
    Table,
    Name,
    AfterId,
    UptoId,
}
