//! [`Event`]: one unit of usage, decoded and validated, ready to store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::SpanFields;

/// What an event is. The batch API sends the first five; OTLP produces `span`, `log` and
/// `metric`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A whole trace.
    Trace,
    /// A span (batch API, or one OTLP span).
    Span,
    /// An LLM generation.
    Generation,
    /// A point-in-time event.
    Event,
    /// A score attached to a trace.
    Score,
    /// One OTLP log record.
    Log,
    /// One OTLP metric data point.
    Metric,
}

impl EventKind {
    /// The name stored and shown in the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Trace => "trace",
            EventKind::Span => "span",
            EventKind::Generation => "generation",
            EventKind::Event => "event",
            EventKind::Score => "score",
            EventKind::Log => "log",
            EventKind::Metric => "metric",
        }
    }
}

/// One event: counted once, stored once per `(account, id)`.
#[derive(Clone, Debug)]
pub struct Event {
    /// The client's id (`<trace>-<span>` for OTLP spans); a repeat of a stored id is a
    /// duplicate. `None` for log records and data points.
    pub id: Option<String>,
    /// What it is.
    pub kind: EventKind,
    /// The trace it belongs to (lowercase hex for OTLP).
    pub trace_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// When it happened, by the sender's clock.
    pub timestamp: DateTime<Utc>,
    /// Everything else: the text of a JSON object, kept as text from the request to the
    /// database (a tree of values costs many times its text). For OTLP events, without the
    /// fields shared with other events of the request (resource, scope, unit, description):
    /// those are in `context`.
    pub body: Option<Box<serde_json::value::RawValue>>,
    /// Index into [`Decoded::contexts`](crate::Decoded::contexts) of the shared fields that
    /// complete `body` (see [`Decoded::body_of`](crate::Decoded::body_of)); `None` for batch
    /// events.
    pub context: Option<usize>,
    /// Its parent, end, status, model and usage; `None` when it has none of them (boxed: most
    /// events of a large request are log records or data points, which never do).
    pub span: Option<Box<SpanFields>>,
}

/// Bodies compare by their text: two decoders that write the same fields write the same text.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        fn text(e: &Event) -> Option<&str> {
            e.body.as_deref().map(serde_json::value::RawValue::get)
        }
        self.id == other.id
            && self.kind == other.kind
            && self.trace_id == other.trace_id
            && self.name == other.name
            && self.timestamp == other.timestamp
            && text(self) == text(other)
            && self.context == other.context
            && self.span == other.span
    }
}
