//! The `/api/v1/traces/batch/` body: `{"batch": [event, …]}`, 1 to 1000 events.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::{
    Caps, Decoded, Event, EventKind, IngestError, MAX_DEPTH, MAX_ELEMENTS, MAX_ID_CHARS,
    MAX_TOKENS, SpanFields, Status, Usage,
};

/// Most events one batch may carry.
pub const MAX_BATCH_EVENTS: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Items<'a>,
}

/// A field this server does not know is refused, naming it and the fields it knows: a field
/// silently dropped is data the sender believes was kept.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    kind: BatchKind,
    trace_id: String,
    timestamp: DateTime<Utc>,
    #[serde(default)]
    name: Option<String>,
    /// Borrowed from the request, unparsed: it is checked before anything is built from it.
    #[serde(default, borrow)]
    body: Option<&'a RawValue>,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    status_message: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
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

/// The first [`MAX_BATCH_EVENTS`] items, and how many there are in all: the rest are counted
/// unread, so an oversized batch costs no more than a full one.
struct Items<'a> {
    items: Vec<BatchItem<'a>>,
    total: usize,
}

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ItemsVisitor<'a> {
            type Value = Items<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of events")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<'a>, A::Error> {
                let mut items = Vec::new();
                let mut total = 0usize;
                loop {
                    let more = if items.len() < MAX_BATCH_EVENTS {
                        seq.next_element::<BatchItem<'a>>()?
                            .map(|item| items.push(item))
                            .is_some()
                    } else {
                        seq.next_element::<IgnoredAny>()?.is_some()
                    };
                    if !more {
                        return Ok(Items { items, total });
                    }
                    total += 1;
                }
            }
        }

        deserializer.deserialize_seq(ItemsVisitor(std::marker::PhantomData))
    }
}

/// Decodes and validates a batch body. All or nothing: the first invalid event refuses the
/// whole batch, naming its index and field. Every event's `body` is checked (its shape, its
/// depth, its sizes, its strings) before any of them is built.
///
/// ```
/// use agentvista_ingest::{Caps, decode_batch};
///
/// let body = br#"{"batch":[{"type":"span","trace_id":"t1","timestamp":"2026-11-27T12:00:00Z"}]}"#;
/// let decoded = decode_batch(body, &Caps::default())?;
/// assert_eq!(decoded.events.len(), 1);
/// assert!(decoded.contexts.is_empty());
///
/// let bad = br#"{"batch":[{"type":"span","trace_id":"t1","timestamp":"2026-11-27T12:00:00Z"},{"type":"spam","trace_id":"t","timestamp":"2026-11-27T12:00:00Z"}]}"#;
/// let err = decode_batch(bad, &Caps::default()).unwrap_err();
/// assert!(err.to_string().starts_with("batch[1].type:"));
///
/// let big = br#"{"batch":[{"type":"span","trace_id":"t1","timestamp":"2026-11-27T12:00:00Z","body":{"a":{"b":"0123456789"}}}]}"#;
/// let err = decode_batch(big, &Caps { max_attribute_bytes: 16 }).unwrap_err();
/// assert_eq!(err.to_string(), "batch[0].body.a: longer than the limit of 16 bytes");
/// # Ok::<(), agentvista_ingest::IngestError>(())
/// ```
///
/// # Errors
/// [`IngestError::Invalid`] naming the offending field: a NUL character in any string (or
/// body key) is one (`batch[3].body.x: must not contain NUL characters`); so is a `body`
/// that is not an object, that nests deeper than [`MAX_DEPTH`] (the body is depth 1), that
/// holds an array or object of more than [`MAX_ELEMENTS`] (its own top level included), or a
/// top-level member whose JSON text is longer than `caps.max_attribute_bytes`.
pub fn decode_batch(body: &[u8], caps: &Caps) -> Result<Decoded, IngestError> {
    let parsed: BatchBody<'_> = crate::json::parse_object(body)?;
    let count = parsed.batch.total;
    if count == 0 || count > MAX_BATCH_EVENTS {
        return Err(IngestError::Invalid(format!(
            "batch: 1 to {MAX_BATCH_EVENTS} events, got {count}"
        )));
    }
    let items = parsed.batch.items;
    let mut path = Vec::new();
    for (i, item) in items.iter().enumerate() {
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
        if let Some(parent_id) = &item.parent_id {
            text("parent_id", parent_id)?;
        }
        if item.end_time.is_some_and(|end| end < item.timestamp) {
            return Err(invalid("end_time", "must not be before timestamp"));
        }
        if let Some(message) = &item.status_message {
            if message.contains('\0') {
                return Err(invalid("status_message", "must not contain NUL characters"));
            }
            if message.len() > caps.max_attribute_bytes {
                let limit = caps.max_attribute_bytes;
                return Err(invalid(
                    "status_message",
                    &format!("longer than the limit of {limit} bytes"),
                ));
            }
        }
        if !matches!(item.kind, BatchKind::Generation) {
            for (field, present) in [
                ("model", item.model.is_some()),
                ("usage", item.usage.is_some()),
            ] {
                if present {
                    return Err(invalid(field, "only a generation event may carry it"));
                }
            }
        }
        if let Some(model) = &item.model {
            text("model", model)?;
        }
        if let Some(usage) = item.usage {
            for (field, n) in [
                ("usage.input_tokens", usage.input_tokens),
                ("usage.output_tokens", usage.output_tokens),
            ] {
                if n > MAX_TOKENS {
                    return Err(invalid(field, &format!("at most {MAX_TOKENS}")));
                }
            }
        }
        if let Some(raw) = item.body {
            check_body(raw, caps, &mut path)
                .map_err(|(at, problem)| invalid(&format!("body{at}"), &problem))?;
        }
    }
    let events = items
        .into_iter()
        .map(|item| {
            // Checked above; kept as the text it came as.
            let body = item.body.map(RawValue::to_owned);
            Event {
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
                span: SpanFields {
                    parent_id: item.parent_id,
                    end_time: item.end_time,
                    status: item.status,
                    status_message: item.status_message,
                    model: item.model,
                    usage: item.usage,
                }
                .boxed(),
            }
        })
        .collect();
    Ok(Decoded {
        contexts: Vec::new(),
        events,
    })
}

/// One step of the path to a value inside a body.
enum Step<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

/// Checks an event's `body`: a JSON object within the caps, no NUL in any string or key.
/// `path` is scratch space, reused from one body to the next. On failure, the offending
/// value's path (`.a.b[2]`, `""` for the body itself) and what is wrong with it.
fn check_body<'de>(
    raw: &'de RawValue,
    caps: &Caps,
    path: &mut Vec<Step<'de>>,
) -> Result<(), (String, String)> {
    path.clear();
    let mut walk = Walk {
        path: std::mem::take(path),
        failure: None,
        max_member_bytes: caps.max_attribute_bytes,
    };
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let result = Node {
        walk: &mut walk,
        depth: 1,
    }
    .deserialize(&mut de);
    let failure = walk.failure.take();
    *path = walk.path;
    match (result, failure) {
        (_, Some(failure)) => Err(failure),
        (Ok(()), None) => Ok(()),
        // The request's parser read this text already; only an allocation failure (or a bug)
        // could get here.
        (Err(e), None) => Err((String::new(), e.to_string())),
    }
}

/// The state of one body's check: where it is, and why it stopped.
struct Walk<'de> {
    path: Vec<Step<'de>>,
    failure: Option<(String, String)>,
    max_member_bytes: usize,
}

impl Walk<'_> {
    /// Records what is wrong at the current path (plus `last`, if given); the error returned
    /// only unwinds the parser.
    fn fail<E: de::Error>(&mut self, last: Option<Step<'_>>, problem: String) -> E {
        let mut at = String::new();
        for step in self.path.iter().chain(last.as_ref()) {
            match step {
                Step::Key(key) => {
                    at.push('.');
                    at.push_str(&key.replace('\0', "\\u0000"));
                }
                Step::Index(i) => at.push_str(&format!("[{i}]")),
            }
        }
        self.failure = Some((at, problem));
        E::custom("invalid body")
    }

    fn nul<E: de::Error>(&mut self, last: Option<Step<'_>>) -> E {
        self.fail(last, "must not contain NUL characters".into())
    }

    fn too_many<E: de::Error>(&mut self) -> E {
        self.fail(None, format!("more than {MAX_ELEMENTS} elements"))
    }
}

/// One value of a body, at `depth` (the body itself is 1), checked without being built.
struct Node<'w, 'de> {
    walk: &'w mut Walk<'de>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(self
                .walk
                .fail(None, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Node<'_, 'de> {
    fn not_an_object<E: de::Error>(self) -> Result<(), E> {
        if self.depth == 1 {
            Err(self.walk.fail(None, "must be a JSON object".into()))
        } else {
            Ok(())
        }
    }

    /// The members of the body's own object: each one's size is checked on its JSON text,
    /// then the member itself in a parser of its own.
    fn top_level<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.walk;
        let mut count = 0;
        while let Some(key) = next_key(walk, &mut map, count)? {
            count += 1;
            let member: &'de RawValue = map.next_value()?;
            if member.get().len() > walk.max_member_bytes {
                let limit = walk.max_member_bytes;
                return Err(walk.fail(
                    Some(Step::Key(key)),
                    format!("longer than the limit of {limit} bytes"),
                ));
            }
            walk.path.push(Step::Key(key));
            let mut de = serde_json::Deserializer::from_str(member.get());
            Node {
                walk: &mut *walk,
                depth: 2,
            }
            .deserialize(&mut de)
            .map_err(|_| de::Error::custom("invalid body"))?;
            walk.path.pop();
        }
        Ok(())
    }
}

/// The next key of an object whose first `count` keys were read; refused (with its path) if it
/// holds a NUL, or if it is one too many.
fn next_key<'de, A: MapAccess<'de>>(
    walk: &mut Walk<'de>,
    map: &mut A,
    count: usize,
) -> Result<Option<Cow<'de, str>>, A::Error> {
    if count == MAX_ELEMENTS {
        return match map.next_key::<IgnoredAny>()? {
            Some(_) => Err(walk.too_many()),
            None => Ok(None),
        };
    }
    let Some(key) = map.next_key_seed(KeySeed)? else {
        return Ok(None);
    };
    if key.contains('\0') {
        return Err(walk.nul(Some(Step::Key(key))));
    }
    Ok(Some(key))
}

impl<'de> Visitor<'de> for Node<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth == 1 {
            return self.top_level(map);
        }
        let (walk, depth) = (self.walk, self.depth);
        let mut count = 0;
        while let Some(key) = next_key(walk, &mut map, count)? {
            count += 1;
            walk.path.push(Step::Key(key));
            map.next_value_seed(Node {
                walk: &mut *walk,
                depth: depth + 1,
            })?;
            walk.path.pop();
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth == 1 {
            return self.not_an_object();
        }
        let (walk, depth) = (self.walk, self.depth);
        for i in 0.. {
            if i == MAX_ELEMENTS {
                return match seq.next_element::<IgnoredAny>()? {
                    Some(_) => Err(walk.too_many()),
                    None => Ok(()),
                };
            }
            walk.path.push(Step::Index(i));
            let more = seq
                .next_element_seed(Node {
                    walk: &mut *walk,
                    depth: depth + 1,
                })?
                .is_some();
            walk.path.pop();
            if !more {
                break;
            }
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        if self.depth == 1 {
            return self.not_an_object();
        }
        if value.contains('\0') {
            return Err(self.walk.nul(None));
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_an_object()
    }
}

/// An object key, borrowed from the body unless it holds an escape.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
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
        decode_batch(body, &Caps::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_full_item_decodes() {
        let events = decode_batch(
            &batch(&[item(r#","id":"e1","name":"llm","body":{"tokens":3}"#)]),
            &Caps::default(),
        )
        .unwrap()
        .events;
        assert_eq!(events[0].id.as_deref(), Some("e1"));
        assert_eq!(events[0].kind, EventKind::Span);
        assert_eq!(events[0].trace_id.as_deref(), Some("t1"));
        assert_eq!(events[0].body.as_ref().unwrap().get(), r#"{"tokens":3}"#);
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
    fn the_tree_and_outcome_fields_decode() {
        let generation = r#"{"type":"generation","trace_id":"t1","timestamp":"2026-11-27T12:00:00Z","id":"g","parent_id":"root","end_time":"2026-11-27T12:00:01.5Z","status":"error","status_message":"timeout","model":"gpt-4o","usage":{"input_tokens":12,"output_tokens":34}}"#;
        let events = decode_batch(&batch(&[generation.to_owned(), item("")]), &Caps::default())
            .unwrap()
            .events;
        let span = events[0].span.as_deref().unwrap();
        assert_eq!(span.parent_id.as_deref(), Some("root"));
        assert_eq!(
            span.end_time.map(|t| t.to_rfc3339()),
            Some("2026-11-27T12:00:01.500+00:00".to_owned())
        );
        assert_eq!(span.status, Some(Status::Error));
        assert_eq!(span.status_message.as_deref(), Some("timeout"));
        assert_eq!(span.model.as_deref(), Some("gpt-4o"));
        assert_eq!(
            span.usage,
            Some(Usage {
                input_tokens: 12,
                output_tokens: 34
            })
        );
        assert_eq!(events[1].span, None);
    }

    #[test]
    fn unknown_and_misplaced_fields_are_refused_by_name() {
        let unknown = error(&batch(&[item(""), item(r#","parent":"x""#)]));
        assert!(
            unknown.starts_with(
                "batch[1].parent: unknown field `parent`, expected one of `id`, `type`"
            ),
            "{unknown}"
        );
        assert!(
            unknown.contains("`parent_id`") && unknown.contains("`usage`"),
            "{unknown}"
        );
        assert_eq!(
            error(&batch(&[item(r#","model":"m""#)])),
            "batch[0].model: only a generation event may carry it"
        );
        assert_eq!(
            error(&batch(&[item(
                r#","usage":{"input_tokens":1,"output_tokens":2}"#
            )])),
            "batch[0].usage: only a generation event may carry it"
        );
        assert_eq!(
            error(&batch(&[item(r#","end_time":"2026-11-27T11:59:59Z""#)])),
            "batch[0].end_time: must not be before timestamp"
        );
        assert!(error(&batch(&[item(r#","status":"failed""#)])).starts_with("batch[0].status:"));
        let negative = r#"{"type":"generation","trace_id":"t","timestamp":"2026-11-27T12:00:00Z","usage":{"input_tokens":-1,"output_tokens":0}}"#;
        assert!(error(&batch(&[negative.to_owned()])).starts_with("batch[0].usage.input_tokens:"));
        let huge = r#"{"type":"generation","trace_id":"t","timestamp":"2026-11-27T12:00:00Z","usage":{"input_tokens":1,"output_tokens":4294967296}}"#;
        assert_eq!(
            error(&batch(&[huge.to_owned()])),
            "batch[0].usage.output_tokens: at most 4294967295"
        );
        let extra = r#"{"type":"generation","trace_id":"t","timestamp":"2026-11-27T12:00:00Z","usage":{"input_tokens":1,"output_tokens":0,"cost":3}}"#;
        assert!(
            error(&batch(&[extra.to_owned()]))
                .starts_with("batch[0].usage.cost: unknown field `cost`")
        );
        assert_eq!(
            error(&batch(&[item(r#","parent_id":"" "#)])),
            "batch[0].parent_id: must not be empty"
        );
    }

    #[test]
    fn batches_hold_1_to_1000_events() {
        assert!(error(br#"{"batch":[]}"#).starts_with("batch: 1 to 1000 events, got 0"));
        let full: Vec<String> = (0..1000).map(|_| item("")).collect();
        assert_eq!(
            decode_batch(&batch(&full), &Caps::default())
                .unwrap()
                .events
                .len(),
            1000
        );
        let over: Vec<String> = (0..1001).map(|_| item("")).collect();
        assert!(error(&batch(&over)).contains("got 1001"));
        assert!(error(b"[]").starts_with("body:"));
        assert!(error(br#"{"events":[]}"#).contains("unknown field"));
        assert!(error(b"\xff").starts_with("body:"));
    }

    #[test]
    fn null_or_no_body_is_none_and_anything_but_an_object_is_refused() {
        let decoded = decode_batch(
            &batch(&[item(r#","body":null"#), item("")]),
            &Caps::default(),
        )
        .unwrap();
        assert!(decoded.events.iter().all(|e| e.body.is_none()));
        for body in ["[1]", r#""x""#, "3", "true", "[]"] {
            assert_eq!(
                error(&batch(&[item(""), item(&format!(r#","body":{body}"#))])),
                "batch[1].body: must be a JSON object",
                "{body}"
            );
        }
    }

    /// A batch of a valid event and one whose body is `body`, under `caps`.
    fn with_body(body: &str, caps: &Caps) -> Result<Decoded, IngestError> {
        decode_batch(
            &batch(&[item(""), item(&format!(r#","body":{body}"#))]),
            caps,
        )
    }

    fn refused(body: &str, caps: &Caps) -> String {
        match with_body(body, caps) {
            Err(IngestError::Invalid(message)) => message,
            Ok(_) => panic!("{body} accepted"),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn bodies_nest_at_most_32_deep() {
        // The body is level 1 and its member level 2, so `levels` arrays hold the 0 at level
        // `levels + 2`.
        let nested =
            |levels: usize| format!(r#"{{"a":{}0{}}}"#, "[".repeat(levels), "]".repeat(levels));
        let caps = Caps::default();
        let decoded = with_body(&nested(30), &caps).unwrap();
        assert_eq!(
            decoded.events[1].body.as_ref().unwrap().to_string(),
            nested(30)
        );
        assert_eq!(
            refused(&nested(31), &caps),
            format!(
                "batch[1].body.a{}: nested deeper than 32 levels",
                "[0]".repeat(31)
            )
        );
        let objects =
            |levels: usize| format!(r#"{}{{}}{}"#, r#"{"k":"#.repeat(levels), "}".repeat(levels));
        assert!(with_body(&objects(31), &caps).is_ok());
        assert_eq!(
            refused(&objects(32), &caps),
            format!(
                "batch[1].body{}: nested deeper than 32 levels",
                ".k".repeat(32)
            )
        );
    }

    #[test]
    fn arrays_and_objects_hold_at_most_10000_elements() {
        let caps = Caps::default();
        let array = |n: usize| format!(r#"{{"a":{{"b":[{}]}}}}"#, vec!["0"; n].join(","));
        assert!(with_body(&array(10_000), &caps).is_ok());
        assert_eq!(
            refused(&array(10_001), &caps),
            "batch[1].body.a.b: more than 10000 elements"
        );
        let object = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!(r#""k{i}":0"#)).collect();
            format!("{{{}}}", members.join(","))
        };
        assert!(with_body(&object(10_000), &caps).is_ok());
        assert_eq!(
            refused(&object(10_001), &caps),
            "batch[1].body: more than 10000 elements"
        );
        let inner = format!(r#"{{"x":[{{}},{}]}}"#, object(10_001));
        assert_eq!(
            refused(&inner, &caps),
            "batch[1].body.x[1]: more than 10000 elements"
        );
    }

    #[test]
    fn each_top_level_member_is_at_most_max_attribute_bytes_of_json() {
        let caps = Caps::default();
        // The member's JSON text: the string and its two quotes.
        let string = |len: usize| format!(r#"{{"ok":1,"s":"{}"}}"#, "x".repeat(len));
        assert!(with_body(&string(1_048_574), &caps).is_ok());
        assert_eq!(
            refused(&string(1_048_575), &caps),
            "batch[1].body.s: longer than the limit of 1048576 bytes"
        );
        let small = Caps {
            max_attribute_bytes: 7,
        };
        assert!(with_body(r#"{"a":[1, 2]}"#, &small).is_ok());
        assert_eq!(
            refused(r#"{"a":[1,   2]}"#, &small),
            "batch[1].body.a: longer than the limit of 7 bytes"
        );
        // Deeper members are part of their top-level member.
        assert_eq!(
            refused(r#"{"a":{"b":1,"c":2}}"#, &small),
            "batch[1].body.a: longer than the limit of 7 bytes"
        );
    }

    #[test]
    fn nul_characters_are_found_through_escapes() {
        let caps = Caps::default();
        assert_eq!(
            refused(r#"{"\u0061":{"b":[0,"\u0000"]}}"#, &caps),
            "batch[1].body.a.b[1]: must not contain NUL characters"
        );
        assert_eq!(
            refused(r#"{"a":{"b\u0000c":1}}"#, &caps),
            "batch[1].body.a.b\\u0000c: must not contain NUL characters"
        );
        // The first problem in the document is the one named.
        assert_eq!(
            refused(r#"{"a":"\u0000","b":{"k":"\u0000"}}"#, &caps),
            "batch[1].body.a: must not contain NUL characters"
        );
    }

    #[test]
    fn a_batch_over_the_limit_is_counted_without_being_read() {
        let over: Vec<String> = (0..5000).map(|_| item("")).collect();
        assert_eq!(error(&batch(&over)), "batch: 1 to 1000 events, got 5000");
        // Items past the limit are not even checked.
        let mut over: Vec<String> = (0..1000).map(|_| item("")).collect();
        over.push("5".into());
        assert_eq!(error(&batch(&over)), "batch: 1 to 1000 events, got 1001");
    }
}
