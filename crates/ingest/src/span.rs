//! [`SpanFields`]: what makes events a tree with durations — parent, end time, status — and
//! what a model call reports — model and token usage. The batch API sends them as fields; an
//! OTLP span carries them as its parent span id, end time, status and the OpenTelemetry GenAI
//! attributes, read here by one mapping for ingestion and for spans stored before it existed.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::MAX_ID_CHARS;

/// How an event ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It succeeded (OTLP `STATUS_CODE_OK`).
    Ok,
    /// It failed (OTLP `STATUS_CODE_ERROR`).
    Error,
}

impl SpanFields {
    /// `self` boxed, or `None` when it holds nothing, as [`Event::span`](crate::Event::span)
    /// keeps it.
    #[must_use]
    pub fn boxed(self) -> Option<Box<SpanFields>> {
        (self != SpanFields::default()).then(|| Box::new(self))
    }
}

impl Status {
    /// The name stored and shown in the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }
}

/// Most tokens one event may report of each kind: far beyond any model's window, and low
/// enough that a trace's sums stay exact in a 64-bit column over billions of events.
pub const MAX_TOKENS: u64 = u32::MAX as u64;

/// Tokens a model call used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Tokens of the prompt.
    pub input_tokens: u64,
    /// Tokens of the completion.
    pub output_tokens: u64,
}

/// The fields that place an event in its trace's tree and describe its outcome; all absent for
/// log records, data points, and events that do not send them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanFields {
    /// The id of its parent event in the same trace (for OTLP, `<trace id>-<parent span id>`).
    pub parent_id: Option<String>,
    /// When it ended; never before the event's timestamp.
    pub end_time: Option<DateTime<Utc>>,
    /// Whether it succeeded, when it says.
    pub status: Option<Status>,
    /// What its status says, in words.
    pub status_message: Option<String>,
    /// The model a generation called.
    pub model: Option<String>,
    /// The tokens a generation used.
    pub usage: Option<Usage>,
}

/// An attribute's value, as much of it as the mapping reads: from the protobuf value at
/// ingestion, or from the JSON it was stored as.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Attr<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Other,
}

/// What an OTLP span says of its place and outcome, before the mapping.
pub(crate) struct OtlpSpan<'a, F> {
    /// Lowercase hex.
    pub(crate) trace_id: &'a str,
    /// Lowercase hex; empty when the span is a root.
    pub(crate) parent_span_id: &'a str,
    pub(crate) start_unix_nano: u64,
    pub(crate) end_unix_nano: u64,
    /// `0` unset, `1` ok, `2` error.
    pub(crate) status_code: i32,
    pub(crate) status_message: &'a str,
    /// The span's attribute named by the argument, if it has one.
    pub(crate) attribute: F,
}

/// OpenTelemetry's GenAI attributes: the model that answered, else the one asked for.
const MODEL_KEYS: [&str; 2] = ["gen_ai.response.model", "gen_ai.request.model"];
/// Token counts, the current names first, then the ones they replaced.
const INPUT_KEYS: [&str; 2] = ["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"];
const OUTPUT_KEYS: [&str; 2] = [
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
];

impl<'a, F: Fn(&str) -> Option<Attr<'a>>> OtlpSpan<'a, F> {
    /// The fields: an end time of zero or before the start, or of a span without a start, is
    /// none (one exporter's odd span must not refuse its whole batch), a parent span id that is
    /// not 8 bytes is none, UNSET is no status, a model name that is empty or longer than an id
    /// may be is none, and token counts that are not whole numbers from 0 to [`MAX_TOKENS`] are
    /// none.
    pub(crate) fn fields(&self) -> SpanFields {
        let parent_id = (self.parent_span_id.len() == 16 && !is_zero(self.parent_span_id))
            .then(|| format!("{}-{}", self.trace_id, self.parent_span_id));
        let end_time = (self.start_unix_nano != 0
            && self.end_unix_nano != 0
            && self.end_unix_nano >= self.start_unix_nano)
            .then(|| i64::try_from(self.end_unix_nano).ok())
            .flatten()
            .map(DateTime::from_timestamp_nanos);
        let status = match self.status_code {
            1 => Some(Status::Ok),
            2 => Some(Status::Error),
            _ => None,
        };
        let status_message = (status.is_some() && !self.status_message.is_empty())
            .then(|| self.status_message.to_owned());
        let model = MODEL_KEYS
            .iter()
            .find_map(|key| match (self.attribute)(key) {
                Some(Attr::Str(model))
                    if !model.trim().is_empty() && model.chars().count() <= MAX_ID_CHARS =>
                {
                    Some(model.to_owned())
                }
                _ => None,
            });
        let tokens = |keys: [&str; 2]| keys.iter().find_map(|key| count((self.attribute)(key)?));
        let (input, output) = (tokens(INPUT_KEYS), tokens(OUTPUT_KEYS));
        let usage = (input.is_some() || output.is_some()).then(|| Usage {
            input_tokens: input.unwrap_or(0),
            output_tokens: output.unwrap_or(0),
        });
        SpanFields {
            parent_id,
            end_time,
            status,
            status_message,
            model,
            usage,
        }
    }
}

/// A token count: a whole number from 0 to [`MAX_TOKENS`].
fn count(value: Attr<'_>) -> Option<u64> {
    let n = match value {
        Attr::Int(n) => u64::try_from(n).ok(),
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked whole, non-negative and below 2^53 first"
        )]
        Attr::Double(x) if x.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&x) => {
            Some(x as u64)
        }
        _ => None,
    };
    n.filter(|n| *n <= MAX_TOKENS)
}

fn is_zero(hex: &str) -> bool {
    hex.bytes().all(|b| b == b'0')
}

/// The fields of an OTLP span stored before they were kept apart, read from its stored body
/// (as this crate's decoder wrote it: `parent_span_id`, `start_time_unix_nano`,
/// `end_time_unix_nano`, `status`, `attributes`) by the mapping ingestion uses.
///
/// ```
/// use agentvista_ingest::{Status, stored_span_fields};
///
/// let body = serde_json::json!({
///     "span_id": "00f067aa0ba902b7",
///     "parent_span_id": "0102030405060708",
///     "start_time_unix_nano": 1_000_000_000u64,
///     "end_time_unix_nano": 1_250_000_000u64,
///     "status": {"code": 2, "message": "boom"},
///     "attributes": {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 3},
/// });
/// let fields = stored_span_fields("4bf92f3577b34da6a3ce929d0e0e4736", &body);
/// assert_eq!(
///     fields.parent_id.as_deref(),
///     Some("4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708")
/// );
/// assert_eq!(fields.status, Some(Status::Error));
/// assert_eq!(fields.model.as_deref(), Some("m"));
/// assert_eq!(fields.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((3, 0)));
/// ```
#[must_use]
pub fn stored_span_fields(trace_id: &str, body: &serde_json::Value) -> SpanFields {
    use serde_json::Value;
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("");
    let nanos = |key: &str| body.get(key).and_then(Value::as_u64).unwrap_or(0);
    let status = body.get("status");
    let attributes = body.get("attributes").and_then(Value::as_object);
    OtlpSpan {
        trace_id,
        parent_span_id: text("parent_span_id"),
        start_unix_nano: nanos("start_time_unix_nano"),
        end_unix_nano: nanos("end_time_unix_nano"),
        status_code: status
            .and_then(|s| s.get("code"))
            .and_then(Value::as_i64)
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or(0),
        status_message: status
            .and_then(|s| s.get("message"))
            .and_then(Value::as_str)
            .unwrap_or(""),
        attribute: |key: &str| {
            attributes
                .and_then(|a| a.get(key))
                .map(|value| match value {
                    Value::String(s) => Attr::Str(s),
                    Value::Number(n) => n
                        .as_i64()
                        .map(Attr::Int)
                        .or_else(|| n.as_f64().map(Attr::Double))
                        .unwrap_or(Attr::Other),
                    _ => Attr::Other,
                })
        },
    }
    .fields()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span<'a>(
        attributes: &'a [(&'a str, Attr<'a>)],
    ) -> OtlpSpan<'a, impl Fn(&str) -> Option<Attr<'a>>> {
        OtlpSpan {
            trace_id: "t",
            parent_span_id: "",
            start_unix_nano: 100,
            end_unix_nano: 300,
            status_code: 0,
            status_message: "",
            attribute: move |key: &str| attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| *v),
        }
    }

    #[test]
    fn the_response_model_wins_and_older_token_names_are_read() {
        let attributes = [
            ("gen_ai.request.model", Attr::Str("asked")),
            ("gen_ai.response.model", Attr::Str("answered")),
            ("gen_ai.usage.prompt_tokens", Attr::Int(7)),
            ("gen_ai.usage.completion_tokens", Attr::Double(9.0)),
        ];
        let fields = span(&attributes).fields();
        assert_eq!(fields.model.as_deref(), Some("answered"));
        assert_eq!(
            fields.usage,
            Some(Usage {
                input_tokens: 7,
                output_tokens: 9
            })
        );
        let requested = [("gen_ai.request.model", Attr::Str("asked"))];
        assert_eq!(span(&requested).fields().model.as_deref(), Some("asked"));
        assert_eq!(span(&requested).fields().usage, None);
    }

    #[test]
    fn odd_values_are_left_out_rather_than_refused() {
        let attributes = [
            ("gen_ai.response.model", Attr::Str(" ")),
            ("gen_ai.request.model", Attr::Int(4)),
            ("gen_ai.usage.input_tokens", Attr::Int(-1)),
            ("gen_ai.usage.output_tokens", Attr::Double(1.5)),
            (
                "gen_ai.usage.prompt_tokens",
                Attr::Int(i64::from(u32::MAX) + 1),
            ),
        ];
        let mut odd = span(&attributes);
        odd.end_unix_nano = 50;
        odd.status_code = 7;
        odd.status_message = "ignored without a status";
        assert_eq!(odd.fields(), SpanFields::default());
        odd.end_unix_nano = 0;
        assert_eq!(odd.fields().end_time, None);
    }

    #[test]
    fn a_parent_is_named_by_its_event_id_and_the_end_time_kept() {
        let mut child = span(&[]);
        child.parent_span_id = "0a0b0c0d0e0f0102";
        child.status_code = 1;
        let fields = child.fields();
        assert_eq!(fields.parent_id.as_deref(), Some("t-0a0b0c0d0e0f0102"));
        assert_eq!(fields.end_time, Some(DateTime::from_timestamp_nanos(300)));
        assert_eq!(fields.status, Some(Status::Ok));
        child.parent_span_id = "0000000000000000";
        assert_eq!(child.fields().parent_id, None);
        child.parent_span_id = "0a0b";
        assert_eq!(child.fields().parent_id, None, "not a span id");
        child.start_unix_nano = 0;
        assert_eq!(child.fields().end_time, None, "no start to end after");
    }
}
