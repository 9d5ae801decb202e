//! What one request brings to the ledger: its events and the contexts they share, as the
//! decoder hands them over, and as the transaction takes them (checked, hashed, deduplicated).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::{KeyId, SpanFields};

/// Rows per INSERT statement: 17 values each stays far below both databases' parameter limits
/// (32,766 for SQLite, 65,535 for PostgreSQL).
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// Fields shared by many events of one request (an OTLP resource and scope, or a metric's unit
/// and description), stored once per account however many events and requests carry them.
#[derive(Clone, Debug)]
pub struct NewContext {
    /// Index in [`EventBatch::contexts`] of a context this one adds to; it must come earlier.
    pub parent: Option<usize>,
    /// The shared fields, the text of a JSON object with its keys sorted at every level (as
    /// `serde_json` writes a map), merged into the body of every event that points here.
    pub fields: Box<serde_json::value::RawValue>,
}

/// An event to store, already decoded and validated.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// The client's id: a duplicate of one already stored for the account is skipped.
    pub client_event_id: Option<String>,
    /// `trace`, `span`, `generation`, `event`, `score`, `log` or `metric`.
    pub event_type: String,
    /// The trace it belongs to; events without one are stored and counted but not listed.
    pub trace_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// When it happened, by the client's clock.
    pub timestamp: DateTime<Utc>,
    /// Free-form JSON payload, the text of an object: the event's own fields only. Kept as
    /// text from the request to the database, so that storing a body never builds a tree of
    /// values from it.
    pub body: Option<Box<serde_json::value::RawValue>>,
    /// Index in [`EventBatch::contexts`] of the context whose fields (and its parents') the
    /// event's body is read back with.
    pub context: Option<usize>,
    /// Its parent, end time, status, model and usage; `None` when it has none of them.
    pub span: Option<Box<SpanFields>>,
}

/// Events received in one request: stored and counted all together, or not at all.
#[derive(Clone, Debug)]
pub struct EventBatch {
    /// The key that sent them, if a key did.
    pub api_key_id: Option<KeyId>,
    /// When the server received them (this decides the period they count in).
    pub received_at: DateTime<Utc>,
    /// Contexts the events point at by index; a parent comes before its children.
    pub contexts: Vec<NewContext>,
    /// The events, in the order received.
    pub events: Vec<NewEvent>,
}

/// A context with its content hash, computed before the transaction so that hashing a large
/// resource never holds the write lock.
pub(crate) struct HashedContext {
    pub(crate) parent: Option<usize>,
    pub(crate) hash: String,
    pub(crate) body: Box<RawValue>,
}

/// Says what is wrong when a context or an event points at a context that is not before it.
pub(crate) fn bad_references(contexts: &[NewContext], events: &[NewEvent]) -> Option<String> {
    for (i, context) in contexts.iter().enumerate() {
        if context.parent.is_some_and(|p| p >= i) {
            return Some(format!(
                "context {i} names a parent that does not precede it"
            ));
        }
    }
    events
        .iter()
        .position(|e| e.context.is_some_and(|c| c >= contexts.len()))
        .map(|i| format!("event {i} names a context the batch does not have"))
}

/// Hashes each context over its parent's hash and its fields' canonical JSON: equal contexts
/// of an account share one row, and a hash never needs the parent's row id.
pub(crate) fn hashed(contexts: Vec<NewContext>) -> Vec<HashedContext> {
    let mut out: Vec<HashedContext> = Vec::with_capacity(contexts.len());
    for context in contexts {
        let mut hasher = Sha256::new();
        if let Some(parent) = context.parent.and_then(|p| out.get(p)) {
            hasher.update(parent.hash.as_bytes());
        }
        hasher.update(b"\n");
        // Compact JSON with the keys of every object in order, as the decoder writes it.
        let body = context.fields;
        hasher.update(body.get().as_bytes());
        out.push(HashedContext {
            parent: context.parent,
            hash: hex::encode(hasher.finalize()),
            body,
        });
    }
    out
}

/// Drops repeats of a client id within the batch (the first occurrence wins) and sorts the
/// rest by id, so concurrent batches sharing ids take PostgreSQL's index locks in the same
/// order and cannot deadlock. Returns the events and the number of repeats dropped.
pub(crate) fn without_repeats(events: Vec<NewEvent>) -> (Vec<NewEvent>, u64) {
    let total = events.len();
    let mut seen = HashSet::new();
    let mut kept: Vec<NewEvent> = events
        .into_iter()
        .filter(|e| match &e.client_event_id {
            Some(id) => seen.insert(id.clone()),
            None => true,
        })
        .collect();
    let repeats = (total - kept.len()) as u64;
    kept.sort_by(|a, b| a.client_event_id.cmp(&b.client_event_id));
    (kept, repeats)
}

#[cfg(test)]
mod tests {
    use serde_json::value::{RawValue, to_raw_value};
    use serde_json::{Value, json};

    use super::{NewContext, hashed};

    fn raw(value: &Value) -> Box<RawValue> {
        to_raw_value(value).unwrap()
    }

    #[test]
    fn equal_contexts_hash_alike_and_a_parent_is_part_of_the_hash() {
        // serde_json writes a map's keys sorted, whatever order they were inserted in.
        let a: Value =
            serde_json::from_str(r#"{"service":"shop","resource":{"b":1,"a":[2]}}"#).unwrap();
        let b = json!({"resource": {"a": [2], "b": 1}, "service": "shop"});
        let context = |fields: &Value, parent| NewContext {
            parent,
            fields: raw(fields),
        };
        let hashes = hashed(vec![
            context(&a, None),
            context(&b, None),
            context(&b, Some(0)),
        ]);
        assert_eq!(hashes[0].hash, hashes[1].hash);
        assert_ne!(hashes[2].hash, hashes[1].hash);
        let other = hashed(vec![context(&json!({"service": "shop!"}), None)]);
        assert_ne!(other[0].hash, hashes[0].hash);
    }
}
