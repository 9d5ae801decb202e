//! What one request brings to the ledger: its events and the contexts they share, as the
//! decoder hands them over, and as the transaction takes them (checked, hashed, deduplicated).

use std::collections::HashSet;
use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::KeyId;

/// Rows per INSERT statement: 10 values each stays far below both databases' parameter limits.
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// Fields shared by many events of one request (an OTLP resource and scope, or a metric's unit
/// and description), stored once per account however many events and requests carry them.
#[derive(Clone, Debug, PartialEq)]
pub struct NewContext {
    /// Index in [`EventBatch::contexts`] of a context this one adds to; it must come earlier.
    pub parent: Option<usize>,
    /// The shared fields, merged into the body of every event that points here.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// An event to store, already decoded and validated.
#[derive(Clone, Debug, PartialEq)]
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
    /// Free-form JSON payload: the event's own fields only.
    pub body: Option<serde_json::Value>,
    /// Index in [`EventBatch::contexts`] of the context whose fields (and its parents') the
    /// event's body is read back with.
    pub context: Option<usize>,
}

/// Events received in one request: stored and counted all together, or not at all.
#[derive(Clone, Debug, PartialEq)]
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
    pub(crate) body: Value,
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
        let body = Value::Object(context.fields);
        // Compact JSON with the keys of every object in order: serde_json's maps are sorted
        // (its `preserve_order` feature is off; `equal_contexts_hash_alike_whatever_their_key_order`
        // fails if a dependency ever turns it on). Writing to the hasher cannot fail.
        let _ = serde_json::to_writer(HashWriter(&mut hasher), &body);
        out.push(HashedContext {
            parent: context.parent,
            hash: hex::encode(hasher.finalize()),
            body,
        });
    }
    out
}

/// Feeds the hasher directly: no serialized copy of a context is built.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
    use serde_json::{Map, Value, json};

    use super::{NewContext, hashed};

    /// A map with `pairs` inserted in the order given.
    fn inserted(pairs: &[(&str, Value)]) -> Map<String, Value> {
        let mut map = Map::new();
        for (key, value) in pairs {
            map.insert((*key).to_owned(), value.clone());
        }
        map
    }

    #[test]
    fn equal_contexts_hash_alike_whatever_their_key_order() {
        let inner = |first: bool| {
            let pairs = [("b", json!(1)), ("a", json!([{"z": 0, "y": 1}]))];
            let pairs = if first {
                pairs
            } else {
                [pairs[1].clone(), pairs[0].clone()]
            };
            Value::Object(inserted(&pairs))
        };
        let context = |first: bool| NewContext {
            parent: None,
            fields: if first {
                inserted(&[("service", json!("shop")), ("resource", inner(true))])
            } else {
                inserted(&[("resource", inner(false)), ("service", json!("shop"))])
            },
        };
        let hashes = hashed(vec![context(true), context(false)]);
        assert_eq!(hashes[0].hash, hashes[1].hash);
        let other = hashed(vec![NewContext {
            parent: None,
            fields: inserted(&[("service", json!("shop!"))]),
        }]);
        assert_ne!(other[0].hash, hashes[0].hash);
    }
}
