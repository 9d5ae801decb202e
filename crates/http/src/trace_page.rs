//! A page of one trace's events, read within the memory budget and written within
//! `limits.max_response_bytes`: planned from stored sizes, paid for, read as JSON text, then
//! written event by event, each event's body merged with its contexts' fields straight from
//! the one parsed copy of each context — never a tree of values per event.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use agentvista_store::{EventCursor, PageEvent, SpanStatus, TraceEventsPage};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::{ApiError, AppState, Grant};

/// What an API page costs beyond its rows, per byte of what it shows: the page as written, and
/// the copy the server's write buffer takes.
pub(crate) const API_MULTIPLE: usize = 2;
/// What the dashboard's page costs beyond its rows, per byte of JSON it shows: pretty-printed
/// and HTML-escaped (a quote becomes six bytes) in a page of markup, and that page copied.
/// The page shows at most its `max_bytes` of bodies; a larger body is named, not shown.
pub(crate) const DASHBOARD_MULTIPLE: usize = 15;
const READ_SLACK: usize = 64 * 1024;

/// Plans, pays for (the rows, and `multiple` times what the page shows: the plan's bytes, or
/// `shown` at most) and reads one page of `trace_id`'s events. `None` when the trace has no
/// event past the cursor.
///
/// # Errors
/// 503 `overloaded` when the budget cannot grant the page; the store's errors.
pub(crate) async fn read(
    state: &AppState,
    account: agentvista_keys::AccountId,
    trace_id: &str,
    page: Bounds<'_>,
    endpoint: &'static str,
) -> Result<Option<(TraceEventsPage, Grant)>, ApiError> {
    let mut grant = state.budget.grant(account, endpoint);
    let plan = state
        .store
        .plan_trace_page(account, trace_id, page.after, page.limit, page.max_bytes)
        .await?;
    if plan.is_empty() {
        return Ok(None);
    }
    grant
        .hold(
            plan.bytes() + plan.bytes().min(page.shown).saturating_mul(page.multiple) + READ_SLACK,
        )
        .await
        .map_err(|_| ApiError::Overloaded)?;
    let page = state.store.read_trace_page(plan).await?;
    Ok(Some((page, grant)))
}

/// Which page to read, and what it may weigh.
pub(crate) struct Bounds<'a> {
    /// The previous page's cursor.
    pub(crate) after: Option<&'a EventCursor>,
    /// Most events.
    pub(crate) limit: u64,
    /// Most bytes, as planned from stored sizes (at least one event).
    pub(crate) max_bytes: usize,
    /// What answering costs, as a multiple of the bytes shown.
    pub(crate) multiple: usize,
    /// The most bytes of bodies the answer shows (the API shows every event it read).
    pub(crate) shown: usize,
}

/// One event as the API shows it (the OpenAPI document's `Event`).
#[derive(Serialize)]
struct EventOut<'a> {
    id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    name: Option<&'a str>,
    timestamp: DateTime<Utc>,
    received_at: DateTime<Utc>,
    body: Option<Merged<'a>>,
    parent_id: Option<&'a str>,
    end_time: Option<DateTime<Utc>>,
    duration_ms: Option<f64>,
    status: Option<&'static str>,
    status_message: Option<&'a str>,
    model: Option<&'a str>,
    usage: Option<Usage>,
}

/// Tokens a model call used.
// `TokenUsage` in the OpenAPI document, whose `Usage` is the month's usage object.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TokenUsage)]
pub(crate) struct Usage {
    /// Tokens of the prompt.
    pub(crate) input_tokens: u64,
    /// Tokens of the completion.
    pub(crate) output_tokens: u64,
}

/// A duration in milliseconds, to the microsecond (three decimals).
#[allow(
    clippy::cast_precision_loss,
    reason = "exact below 2^53 microseconds: 285 years"
)]
pub(crate) fn millis(duration: chrono::TimeDelta) -> f64 {
    duration.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// An event's body: as stored, or merged with its contexts' fields.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum Merged<'a> {
    /// As stored (no context, or a body that is not an object).
    Raw(&'a RawValue),
    /// The event's own fields, then those of each context that it lacks, nearest first.
    Fields(BTreeMap<Cow<'a, str>, &'a RawValue>),
}

/// Each context's fields, parsed once (keys owned, values borrowed from the page).
pub(crate) struct Contexts<'a> {
    parsed: HashMap<i64, (Option<i64>, BTreeMap<String, &'a RawValue>)>,
}

impl<'a> Contexts<'a> {
    /// Parses the page's contexts.
    ///
    /// # Errors
    /// 500 for a context that is not a JSON object (the write path never stores one).
    pub(crate) fn of(page: &'a TraceEventsPage) -> Result<Self, ApiError> {
        let parsed = page
            .contexts
            .iter()
            .map(|(id, context)| {
                let fields: BTreeMap<String, &RawValue> =
                    serde_json::from_str(context.fields.get()).map_err(ApiError::internal)?;
                Ok((*id, (context.parent, fields)))
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(Contexts { parsed })
    }

    /// `event`'s body, merged with its contexts' fields under keys it lacks.
    pub(crate) fn body(&'a self, event: &'a PageEvent) -> Option<Merged<'a>> {
        let Some(mut next) = event.context else {
            return event.body.as_deref().map(Merged::Raw);
        };
        let mut fields: BTreeMap<Cow<'a, str>, &RawValue> = match event.body.as_deref() {
            None => BTreeMap::new(),
            Some(raw) if raw.get() == "null" => BTreeMap::new(),
            // Keys are owned (one may hold an escape), values borrowed from the row.
            Some(raw) => match serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) {
                Ok(own) => own.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect(),
                // Not an object: nothing to merge into (the write path never pairs these).
                Err(_) => return Some(Merged::Raw(raw)),
            },
        };
        // Bounded by the number of contexts, so that even a corrupt cycle ends.
        for _ in 0..=self.parsed.len() {
            let Some((parent, context)) = self.parsed.get(&next) else {
                break;
            };
            for (key, value) in context {
                fields.entry(Cow::Borrowed(key.as_str())).or_insert(value);
            }
            match parent {
                Some(parent) => next = *parent,
                None => break,
            }
        }
        Some(Merged::Fields(fields))
    }
}

/// The page as the API answers it: `{"trace_id", "events", "next_cursor"}`, written event by
/// event and ended before the event that would take it past `max_bytes` (never before the
/// first), whose cursor is then the next page's.
///
/// # Errors
/// 500 if a stored body cannot be written.
pub(crate) fn write(
    trace_id: &str,
    page: &TraceEventsPage,
    max_bytes: usize,
) -> Result<Vec<u8>, ApiError> {
    let contexts = Contexts::of(page)?;
    let mut out = Vec::with_capacity(max_bytes.min(64 * 1024));
    out.extend_from_slice(b"{\"trace_id\":");
    serde_json::to_writer(&mut out, trace_id).map_err(ApiError::internal)?;
    out.extend_from_slice(b",\"events\":[");
    let mut next_cursor = page.next_cursor.clone();
    for (i, event) in page.events.iter().enumerate() {
        let before = out.len();
        if i > 0 {
            out.push(b',');
        }
        let item = EventOut {
            id: event.client_event_id.as_deref(),
            kind: &event.event_type,
            name: event.name.as_deref(),
            timestamp: event.timestamp,
            received_at: event.received_at,
            body: contexts.body(event),
            parent_id: event.span.parent_id.as_deref(),
            end_time: event.span.end_time,
            duration_ms: event.span.duration_from(event.timestamp).map(millis),
            status: event.span.status.map(SpanStatus::as_str),
            status_message: event.span.status_message.as_deref(),
            model: event.span.model.as_deref(),
            usage: event.span.usage.map(|u| Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
            }),
        };
        serde_json::to_writer(&mut out, &item).map_err(ApiError::internal)?;
        if i > 0 && out.len() > max_bytes {
            out.truncate(before);
            next_cursor = page.events.get(i - 1).map(PageEvent::cursor);
            break;
        }
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    serde_json::to_writer(&mut out, &next_cursor.map(|c| c.encode()))
        .map_err(ApiError::internal)?;
    out.push(b'}');
    Ok(out)
}

/// A response body that holds its budget grant until it has been sent or the client has gone.
pub(crate) struct Granted {
    bytes: Bytes,
    grant: Option<Grant>,
}

impl Granted {
    pub(crate) fn new(bytes: impl Into<Bytes>, grant: Grant) -> Self {
        Granted {
            bytes: bytes.into(),
            grant: Some(grant),
        }
    }
}

impl MessageBody for Granted {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.bytes.len() as u64)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.bytes.is_empty() {
            this.grant = None;
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(std::mem::take(&mut this.bytes))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentvista_store::PageContext;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn event(body: Option<&str>, context: Option<i64>) -> PageEvent {
        PageEvent {
            id: 1,
            client_event_id: None,
            event_type: "span".into(),
            name: None,
            timestamp: chrono::DateTime::UNIX_EPOCH,
            received_at: chrono::DateTime::UNIX_EPOCH,
            body: body.map(raw),
            context,
            span: agentvista_store::SpanFields::default(),
        }
    }

    #[test]
    fn own_keys_win_then_the_nearest_context() {
        let page = TraceEventsPage {
            events: vec![
                event(Some(r#"{"scope":"own","value":3}"#), Some(2)),
                event(None, Some(1)),
                event(Some("[1]"), Some(1)),
                event(Some(r#"{"a": 1}"#), None),
                event(None, None),
            ],
            contexts: HashMap::from([
                (
                    1,
                    PageContext {
                        parent: None,
                        fields: raw(r#"{"resource": {"big": "r"}, "scope": "s", "unit": "x"}"#),
                    },
                ),
                (
                    2,
                    PageContext {
                        parent: Some(1),
                        fields: raw(r#"{"unit":"ms","description":"d"}"#),
                    },
                ),
            ]),
            next_cursor: None,
        };
        let written: serde_json::Value =
            serde_json::from_slice(&write("t", &page, 1 << 20).unwrap()).unwrap();
        let bodies: Vec<_> = written["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["body"].clone())
            .collect();
        assert_eq!(
            bodies,
            [
                serde_json::json!({"value": 3, "scope": "own", "unit": "ms", "description": "d", "resource": {"big": "r"}}),
                serde_json::json!({"resource": {"big": "r"}, "scope": "s", "unit": "x"}),
                serde_json::json!([1]),
                serde_json::json!({"a": 1}),
                serde_json::Value::Null,
            ]
        );
        assert_eq!(written["trace_id"], "t");
        assert_eq!(written["next_cursor"], serde_json::Value::Null);
    }

    #[test]
    fn a_page_ends_before_the_event_that_would_pass_the_bound_but_never_before_the_first() {
        let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(1000));
        let page = TraceEventsPage {
            events: (0..5).map(|_| event(Some(&big), None)).collect(),
            contexts: HashMap::new(),
            next_cursor: None,
        };
        let written = write("t", &page, 2800).unwrap();
        assert!(written.len() <= 2800, "{}", written.len());
        let parsed: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(parsed["events"].as_array().unwrap().len(), 2);
        assert!(parsed["next_cursor"].is_string());
        // A bound below one event still sends that event.
        let parsed: serde_json::Value =
            serde_json::from_slice(&write("t", &page, 10).unwrap()).unwrap();
        assert_eq!(parsed["events"].as_array().unwrap().len(), 1);
        assert!(parsed["next_cursor"].is_string());
    }
}
