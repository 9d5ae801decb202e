//! [`SpanFields`]: an event's place in its trace's tree (parent, end time) and its outcome
//! (status, model, token usage), as stored in their own columns.

use chrono::{DateTime, Utc};

/// How an event ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanStatus {
    /// It succeeded.
    Ok,
    /// It failed.
    Error,
}

impl SpanStatus {
    /// The stored and shown name: `ok` or `error`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
        }
    }

    /// Reads a stored name back; anything else is `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ok" => Some(SpanStatus::Ok),
            "error" => Some(SpanStatus::Error),
            _ => None,
        }
    }
}

/// Tokens a model call used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Tokens of the prompt.
    pub input_tokens: u64,
    /// Tokens of the completion.
    pub output_tokens: u64,
}

/// What places an event in its trace's tree and says how it went; all `None` for events that
/// did not send them (and for batch events stored before they were kept).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanFields {
    /// The id of its parent event in the same trace.
    pub parent_id: Option<String>,
    /// When it ended; never before its timestamp.
    pub end_time: Option<DateTime<Utc>>,
    /// Whether it succeeded, when it says.
    pub status: Option<SpanStatus>,
    /// What its status says, in words.
    pub status_message: Option<String>,
    /// The model a generation called.
    pub model: Option<String>,
    /// The tokens a generation used.
    pub usage: Option<TokenUsage>,
}

impl SpanFields {
    /// How long it took, from `start` to its end: `None` without an end time.
    #[must_use]
    pub fn duration_from(&self, start: DateTime<Utc>) -> Option<chrono::TimeDelta> {
        self.end_time.map(|end| end - start)
    }

    /// The fields of a stored row.
    pub(crate) fn from_columns(columns: SpanColumns) -> Self {
        let tokens = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
        let usage = match (tokens(columns.input_tokens), tokens(columns.output_tokens)) {
            (None, None) => None,
            (input, output) => Some(TokenUsage {
                input_tokens: input.unwrap_or(0),
                output_tokens: output.unwrap_or(0),
            }),
        };
        SpanFields {
            parent_id: columns.parent_id,
            end_time: columns.end_time,
            status: columns.status.as_deref().and_then(SpanStatus::parse),
            status_message: columns.status_message,
            model: columns.model,
            usage,
        }
    }
}

impl SpanFields {
    /// The values of its columns, in [`SpanColumns::SELECT`]'s order, as written: the mirror
    /// of [`SpanFields::from_columns`].
    pub(crate) fn column_values(fields: Option<&SpanFields>) -> [sea_orm::Value; 7] {
        let usage = fields.and_then(|f| f.usage);
        [
            fields.and_then(|f| f.parent_id.clone()).into(),
            fields
                .and_then(|f| f.end_time.map(crate::db::db_time))
                .into(),
            fields.and_then(|f| f.status.map(SpanStatus::as_str)).into(),
            fields.and_then(|f| f.status_message.clone()).into(),
            fields.and_then(|f| f.model.clone()).into(),
            usage.map(|u| stored_tokens(u.input_tokens)).into(),
            usage.map(|u| stored_tokens(u.output_tokens)).into(),
        ]
    }
}

/// A token count as stored: counts past `i64::MAX` are kept at it.
pub(crate) fn stored_tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The span fields' columns of one row, as read.
pub(crate) struct SpanColumns {
    pub(crate) parent_id: Option<String>,
    pub(crate) end_time: Option<DateTime<Utc>>,
    pub(crate) status: Option<String>,
    pub(crate) status_message: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) input_tokens: Option<i64>,
    pub(crate) output_tokens: Option<i64>,
}

impl SpanColumns {
    /// The columns' names, in the order [`SpanColumns::read`] reads them.
    pub(crate) const SELECT: &'static str =
        "parent_id, end_time, status, status_message, model, input_tokens, output_tokens";

    /// Reads the columns [`SpanColumns::SELECT`] names from a raw row.
    pub(crate) fn read(row: &sea_orm::QueryResult) -> Result<Self, sea_orm::DbErr> {
        Ok(SpanColumns {
            parent_id: row.try_get("", "parent_id")?,
            end_time: row.try_get("", "end_time")?,
            status: row.try_get("", "status")?,
            status_message: row.try_get("", "status_message")?,
            model: row.try_get("", "model")?,
            input_tokens: row.try_get("", "input_tokens")?,
            output_tokens: row.try_get("", "output_tokens")?,
        })
    }
}
