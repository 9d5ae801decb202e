//! [`Decoded`]: what one request decodes to. Fields that many events share (an OTLP resource
//! and scope, a metric's unit and description) are held once, in a [`Context`], instead of
//! being copied into every event's body: a request whose 1 MiB resource is shared by 10,000
//! spans stays about 1 MiB, not 10 GiB.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::Event;

/// What one request decodes to: shared contexts and the events that point into them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    /// Shared fields; an entry's `parent` is always an earlier index.
    pub contexts: Vec<Context>,
    /// The events, in request order; [`Event::context`] indexes `contexts`.
    pub events: Vec<Event>,
}

/// Fields shared by many events (an OTLP resource + scope; for metrics also unit and description),
/// stored once. `parent` indexes an earlier entry of `Decoded::contexts` whose fields also apply.
#[derive(Clone, Debug)]
pub struct Context {
    /// An earlier context whose fields also apply (with lower precedence), or `None`.
    pub parent: Option<usize>,
    /// The shared fields, the text of a JSON object, merged into each body that points here.
    pub fields: Box<RawValue>,
}

/// Contexts compare by their text (and parent).
impl PartialEq for Context {
    fn eq(&self, other: &Self) -> bool {
        self.parent == other.parent && self.fields.get() == other.fields.get()
    }
}

impl Decoded {
    /// The body of event `i` as the API shows it: its own body, plus the fields of its context
    /// and of that context's parents (the event's own keys win, then the nearest context).
    /// `None` when there is no event `i`, or when it has neither a body nor a context.
    ///
    /// This rebuilds one body; it is for reading back, never for storing every event (that
    /// would copy the shared fields once per event again).
    #[must_use]
    pub fn body_of(&self, i: usize) -> Option<Value> {
        let event = self.events.get(i)?;
        let own = event
            .body
            .as_ref()
            .map(|raw| serde_json::from_str::<Value>(raw.get()).unwrap_or(Value::Null));
        let mut body = match (own, event.context) {
            (None, None) => return None,
            (Some(Value::Object(map)), _) => map,
            (Some(other), _) => return Some(other),
            (None, Some(_)) => Map::new(),
        };
        for context in self.chain(event.context) {
            if let Ok(fields) = serde_json::from_str::<Map<String, Value>>(context.fields.get()) {
                merge_context(&mut body, &fields);
            }
        }
        Some(Value::Object(body))
    }

    /// Context `first` and its parents, nearest first. Stops at an index that does not exist or
    /// does not point strictly backwards, so a malformed value cannot loop.
    pub fn chain(&self, first: Option<usize>) -> impl Iterator<Item = &Context> {
        let mut next = first;
        std::iter::from_fn(move || {
            let index = next?;
            let context = self.contexts.get(index)?;
            next = context.parent.filter(|parent| *parent < index);
            Some(context)
        })
    }
}

/// Adds to `body` each field of `context_fields` that `body` does not already have: an event's
/// own keys win over its context. To rebuild a body from a chain of contexts, call it for each
/// context from the nearest to the farthest (as [`Decoded::body_of`] does).
pub fn merge_context(body: &mut Map<String, Value>, context_fields: &Map<String, Value>) {
    for (key, value) in context_fields {
        if !body.contains_key(key) {
            body.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;
    use serde_json::json;

    fn object(value: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    fn event(body: Option<Value>, context: Option<usize>) -> Event {
        let body = body.map(|b| serde_json::value::to_raw_value(&b).unwrap());
        Event {
            id: None,
            kind: EventKind::Metric,
            trace_id: None,
            name: None,
            timestamp: chrono::DateTime::UNIX_EPOCH,
            body,
            context,
            span: None,
        }
    }

    #[test]
    fn own_keys_win_then_the_nearest_context() {
        let decoded = Decoded {
            contexts: vec![
                Context {
                    parent: None,
                    fields: object(json!({"resource": {"a": 1}, "unit": "far"})),
                },
                Context {
                    parent: Some(0),
                    fields: object(json!({"unit": "near", "description": "d"})),
                },
            ],
            events: vec![
                event(Some(json!({"description": "own"})), Some(1)),
                event(None, Some(0)),
                event(None, None),
                event(Some(json!({"x": 1})), None),
            ],
        };
        assert_eq!(
            decoded.body_of(0),
            Some(json!({"resource": {"a": 1}, "unit": "near", "description": "own"}))
        );
        assert_eq!(
            decoded.body_of(1),
            Some(json!({"resource": {"a": 1}, "unit": "far"}))
        );
        assert_eq!(decoded.body_of(2), None);
        assert_eq!(decoded.body_of(3), Some(json!({"x": 1})));
        assert_eq!(decoded.body_of(4), None);
    }

    #[test]
    fn a_parent_that_does_not_point_backwards_ends_the_chain() {
        let decoded = Decoded {
            contexts: vec![Context {
                parent: Some(0),
                fields: object(json!({"a": 1})),
            }],
            events: vec![event(None, Some(0))],
        };
        assert_eq!(decoded.chain(Some(0)).count(), 1);
        assert_eq!(decoded.chain(Some(7)).count(), 0);
        assert_eq!(decoded.body_of(0), Some(json!({"a": 1})));
    }
}
