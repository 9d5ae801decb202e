//! The `/api/v1/traces/batch/` body: `{"batch": [event, …]}`, 1 to 1000 events.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{Decoded, Event, EventKind, IngestError};

/// Most events one batch may carry.
pub const MAX_BATCH_EVENTS: usize = 1000;
/// Longest `id`, `trace_id` or `name` accepted, in characters.
pub const MAX_ID_CHARS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    batch: Vec<BatchItem>,
}

/// Unknown fields in an item are ignored, so newer SDKs can send more than this server knows.
#[derive(Deserialize)]
struct BatchItem {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    kind: BatchKind,
    trace_id: String,
    timestamp: DateTime<Utc>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    body: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum BatchKind {
    Trace,
    Span,
    Generation,
    Event,
    Score,
}

/// Decodes and validates a batch body. All or nothing: the first invalid event refuses the
/// whole batch, naming its index and field.
///
/// ```
/// let body = br#"{"batch":[{"type":"span","trace_id":"t1","timestamp":"2026-11-27T12:00:00Z"}]}"#;
/// let decoded = agentvista_ingest::decode_batch(body)?;
/// assert_eq!(decoded.events.len(), 1);
/// assert!(decoded.contexts.is_empty());
///
/// let bad = br#"{"batch":[{"type":"span","trace_id":"t1","timestamp":"2026-11-27T12:00:00Z"},{"type":"spam","trace_id":"t","timestamp":"2026-11-27T12:00:00Z"}]}"#;
/// let err = agentvista_ingest::decode_batch(bad).unwrap_err();
/// assert!(err.to_string().starts_with("batch[1].type:"));
/// # Ok::<(), agentvista_ingest::IngestError>(())
/// ```
///
/// # Errors
/// [`IngestError::Invalid`] naming the offending field; a NUL character in any string (or
/// body key) is one (`batch[3].body.x: must not contain NUL characters`).
pub fn decode_batch(body: &[u8]) -> Result<Decoded, IngestError> {
    let parsed: BatchBody = crate::json::parse_object(body)?;
    let count = parsed.batch.len();
    if count == 0 || count > MAX_BATCH_EVENTS {
        return Err(IngestError::Invalid(format!(
            "batch: 1 to {MAX_BATCH_EVENTS} events, got {count}"
        )));
    }
    let events = parsed
        .batch
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let invalid = |field: &str, problem: &str| {
                IngestError::Invalid(format!("batch[{i}].{field}: {problem}"))
            };
            let text = |field: &str, value: &str| {
                if value.trim().is_empty() {
                    Err(invalid(field, "must not be empty"))
                } else if value.contains('\0') {
                    Err(invalid(field, "must not contain NUL characters"))
                } else if value.chars().count() > MAX_ID_CHARS {
                    Err(invalid(field, "is longer than 256 characters"))
                } else {
                    Ok(())
                }
            };
            if let Some(id) = &item.id {
                text("id", id)?;
            }
            text("trace_id", &item.trace_id)?;
            if let Some(name) = &item.name {
                text("name", name)?;
            }
            let body = item.body.map(serde_json::Value::Object);
            if let Some(path) = body.as_ref().and_then(crate::json::nul_path) {
                return Err(invalid(
                    &format!("body{path}"),
                    "must not contain NUL characters",
                ));
            }
            Ok(Event {
                id: item.id,
                kind: match item.kind {
                    BatchKind::Trace => EventKind::Trace,
                    BatchKind::Span => EventKind::Span,
                    BatchKind::Generation => EventKind::Generation,
                    BatchKind::Event => EventKind::Event,
                    BatchKind::Score => EventKind::Score,
                },
                trace_id: Some(item.trace_id),
                name: item.name,
                timestamp: item.timestamp,
                body,
                context: None,
            })
        })
        .collect::<Result<Vec<Event>, IngestError>>()?;
    Ok(Decoded {
        contexts: Vec::new(),
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(extra: &str) -> String {
        format!(r#"{{"type":"span","trace_id":"t1","timestamp":"2026-11-27T12:00:00Z"{extra}}}"#)
    }

    fn batch(items: &[String]) -> Vec<u8> {
        format!(r#"{{"batch":[{}]}}"#, items.join(",")).into_bytes()
    }

    fn error(body: &[u8]) -> String {
        decode_batch(body).unwrap_err().to_string()
    }

    #[test]
    fn a_full_item_decodes() {
        let events = decode_batch(&batch(&[item(
            r#","id":"e1","name":"llm","body":{"tokens":3}"#,
        )]))
        .unwrap()
        .events;
        assert_eq!(events[0].id.as_deref(), Some("e1"));
        assert_eq!(events[0].kind, EventKind::Span);
        assert_eq!(events[0].trace_id.as_deref(), Some("t1"));
        assert_eq!(events[0].body, Some(serde_json::json!({"tokens": 3})));
    }

    #[test]
    fn errors_name_the_index_and_the_field() {
        let good = item("");
        assert!(error(&batch(&[good.clone(), item(r#","type":"x""#)])).starts_with("batch[1]"));
        let cases = [
            (
                r#"{"type":"spam","trace_id":"t","timestamp":"2026-11-27T12:00:00Z"}"#,
                "batch[1].type",
            ),
            (
                r#"{"type":"span","timestamp":"2026-11-27T12:00:00Z"}"#,
                "batch[1]: missing field `trace_id`",
            ),
            (
                r#"{"type":"span","trace_id":"t","timestamp":"yesterday"}"#,
                "batch[1].timestamp",
            ),
            (
                r#"{"type":"span","trace_id":"","timestamp":"2026-11-27T12:00:00Z"}"#,
                "batch[1].trace_id",
            ),
            (
                r#"{"type":"span","trace_id":"t","timestamp":"2026-11-27T12:00:00Z","id":""}"#,
                "batch[1].id",
            ),
            (
                r#"{"type":"span","trace_id":"t","timestamp":"2026-11-27T12:00:00Z","body":[1]}"#,
                "batch[1].body",
            ),
            (
                r#"{"type":"span","trace_id":7,"timestamp":"2026-11-27T12:00:00Z"}"#,
                "batch[1].trace_id",
            ),
        ];
        for (bad, expected) in cases {
            let message = error(&batch(&[good.clone(), bad.to_owned()]));
            assert!(
                message.starts_with(expected),
                "{message} does not start with {expected}"
            );
        }
    }

    #[test]
    fn batches_hold_1_to_1000_events() {
        assert!(error(br#"{"batch":[]}"#).starts_with("batch: 1 to 1000 events, got 0"));
        let full: Vec<String> = (0..1000).map(|_| item("")).collect();
        assert_eq!(decode_batch(&batch(&full)).unwrap().events.len(), 1000);
        let over: Vec<String> = (0..1001).map(|_| item("")).collect();
        assert!(error(&batch(&over)).contains("got 1001"));
        assert!(error(b"[]").starts_with("body:"));
        assert!(error(br#"{"events":[]}"#).contains("unknown field"));
        assert!(error(b"\xff").starts_with("body:"));
    }
}
