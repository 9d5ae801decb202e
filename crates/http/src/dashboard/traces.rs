//! The traces list (search, time range, errors only; paging in the URL) and a trace's page: a
//! tree of its events beside a waterfall on one time axis, and each event's details.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use actix_web::{HttpRequest, HttpResponse, web};
use agentvista_store::{PageEvent, SpanStatus, TraceFilter, TraceSummary};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde_json::value::RawValue;

use super::format::{duration, moment, thousands};
use super::{page, redirect, tree, viewer};
use crate::trace_page::Merged;
use crate::{ApiError, AppState};

/// Traces per page of the list.
const TRACES_SHOWN: u64 = 50;

/// Events shown on a trace's page; the API pages through the rest.
const TRACE_PAGE_EVENTS: u64 = 200;

/// Deepest indentation shown: a deeper event is drawn at this depth (its depth is in the row).
const MAX_INDENT: usize = 24;

/// Characters of a long value shown before the rest is folded away.
const PREVIEW_CHARS: usize = 600;

pub(crate) async fn traces(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(viewer) = viewer(&req).await? else {
        return Ok(redirect("/login"));
    };
    let (filter, listed) = match crate::handlers::traces::list_query(req.query_string(), true) {
        Ok((filter, cursor, _)) => {
            let listed = state
                .store
                .events()
                .traces(viewer.account.id, &filter, cursor.as_ref(), TRACES_SHOWN)
                .await
                .map_err(ApiError::from);
            (filter, listed)
        }
        Err(err) => (TraceFilter::default(), Err(err)),
    };
    let (listed, problem) = match listed {
        Ok(listed) => (Some(listed), None),
        Err(ApiError::BadRequest(message)) => (None, Some(message)),
        Err(other) => return Err(other),
    };
    let filtered = filter != TraceFilter::default();
    let form_time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_default()
    };
    let markup = html! {
        h1 { "Traces" }
        form.filters id="trace-filters" method="get" action="/traces" role="search" {
            div {
                label for="filter-name" { "Name contains" }
                input id="filter-name" type="search" name="name" maxlength="256" value=(filter.name.as_deref().unwrap_or(""));
            }
            div {
                label for="filter-from" { "Started from (UTC)" }
                input id="filter-from" type="datetime-local" name="from" value=(form_time(filter.from));
            }
            div {
                label for="filter-to" { "Started before (UTC)" }
                input id="filter-to" type="datetime-local" name="to" value=(form_time(filter.to));
            }
            div.choice {
                input id="filter-errors" type="checkbox" name="status" value="error" checked[filter.errors_only];
                label for="filter-errors" { "Errors only" }
            }
            div.filter-actions {
                button.primary type="submit" { "Filter" }
                @if filtered { a href="/traces" { "Clear" } }
            }
        }
        @if let Some(problem) = &problem {
            p.error role="alert" { (problem) }
        }
        @if let Some(listed) = &listed {
            @if listed.traces.is_empty() && !filtered && listed.next_cursor.is_none() {
                p.empty { "No traces yet. Create a key with the write scope under " a href="/settings/api-keys" { "Settings → API Keys" } " and point your SDK at this server." }
            } @else if listed.traces.is_empty() {
                p.empty { "No trace on this page matches." }
            } @else {
                div.table-wrap { table id="traces" {
                    thead { tr { th { "Name" } th { "Started" } th { "Duration" } th { "Status" } th { "Spans" } th { "Tokens (in / out)" } } }
                    tbody {
                        @for trace in &listed.traces {
                            tr data-trace=(trace.trace_id) {
                                td.wraps {
                                    a href=(trace_href(&trace.trace_id)) { (trace.name.as_deref().unwrap_or("(unnamed)")) }
                                    br; code.hint { (trace.trace_id) }
                                }
                                td.date { (moment(&trace.started_at)) }
                                td.num { (trace.duration().map_or_else(|| "—".to_owned(), duration)) }
                                td { (status_mark(trace.status)) }
                                td.num { (thousands(trace.event_count)) }
                                td.num { (tokens(trace)) }
                            }
                        }
                    }
                } }
            }
            nav.pager aria-label="Pages" {
                @if req.query_string().contains("cursor=") { a href=(list_url(&filter, None)) { "← Newest" } }
                @if let Some(next) = &listed.next_cursor {
                    a href=(list_url(&filter, Some(&next.encode()))) rel="next" { "Older →" }
                }
            }
            @if filter.name.is_some() && listed.next_cursor.is_some() && (listed.traces.len() as u64) < TRACES_SHOWN {
                p.hint { "A name search reads up to 50,000 traces a page; older traces may match too." }
            }
        }
    };
    let response = page("Traces", Some(&viewer), "traces", markup);
    Ok(if problem.is_some() {
        let mut response = response;
        *response.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
        response
    } else {
        response
    })
}

/// The list's URL under `filter`, from `cursor` on: what a person bookmarks or shares.
fn list_url(filter: &TraceFilter, cursor: Option<&str>) -> String {
    let mut query = url_query(filter);
    if let Some(cursor) = cursor {
        query.push(("cursor", cursor.to_owned()));
    }
    let mut url = String::from("/traces");
    for (i, (key, value)) in query.iter().enumerate() {
        let _ = write!(
            url,
            "{}{key}={}",
            if i == 0 { '?' } else { '&' },
            percent_encoding::utf8_percent_encode(value, SEGMENT)
        );
    }
    url
}

/// The filter as the list's query parameters, in the form's own formats.
fn url_query(filter: &TraceFilter) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(name) = &filter.name {
        query.push(("name", name.clone()));
    }
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    if let Some(from) = filter.from {
        query.push(("from", time(from)));
    }
    if let Some(to) = filter.to {
        query.push(("to", time(to)));
    }
    if filter.errors_only {
        query.push(("status", "error".to_owned()));
    }
    query
}

fn tokens(trace: &TraceSummary) -> String {
    trace.usage.map_or_else(
        || "—".to_owned(),
        |u| {
            format!(
                "{} / {}",
                thousands(u.input_tokens),
                thousands(u.output_tokens)
            )
        },
    )
}

/// A status in colour and in words.
fn status_mark(status: Option<SpanStatus>) -> Markup {
    html! {
        @match status {
            Some(SpanStatus::Error) => span.status.failed { "Error" },
            Some(SpanStatus::Ok) => span.status.active { "OK" },
            None => span.hint { "—" },
        }
    }
}

/// `/traces/{trace_id}`: a trace's page.
pub(crate) async fn trace(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    show_trace(state, req, path.into_inner()).await
}

/// The query of `/trace?id=…`.
#[derive(serde::Deserialize)]
pub(crate) struct TraceById {
    id: Option<String>,
}

/// `/trace?id=…`: the same page, for the trace ids no path can carry (`.` and `..`, which
/// browsers resolve as the current and the parent directory, escaped or not).
pub(crate) async fn trace_by_id(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<TraceById>,
) -> Result<HttpResponse, ApiError> {
    // No id names no trace: the same 404 (after the sign-in check) as an unknown one.
    show_trace(state, req, query.into_inner().id.unwrap_or_default()).await
}

async fn show_trace(
    state: web::Data<AppState>,
    req: HttpRequest,
    trace_id: String,
) -> Result<HttpResponse, ApiError> {
    let Some(viewer) = viewer(&req).await? else {
        return Ok(redirect("/login"));
    };
    if trace_id.contains('\0') {
        return Err(ApiError::NotFound);
    }
    // A quarter of an API page's bytes: escaped and pretty-printed in markup, the JSON it
    // shows grows several times over.
    let max_bytes = state.config.max_response_bytes / 4;
    let Some((page_of, grant)) = crate::trace_page::read(
        &state,
        viewer.account.id,
        &trace_id,
        crate::trace_page::Bounds {
            after: None,
            limit: TRACE_PAGE_EVENTS,
            max_bytes,
            multiple: crate::trace_page::DASHBOARD_MULTIPLE,
            shown: max_bytes,
        },
        "dashboard_trace",
    )
    .await?
    else {
        return Err(ApiError::NotFound);
    };
    let summary = state
        .store
        .events()
        .summary(viewer.account.id, &trace_id)
        .await?;
    let contexts = crate::trace_page::Contexts::of(&page_of)?;
    let events = &page_of.events;
    // Details are shown up to the page's bytes (what its budget paid for), each body counted
    // twice (its fields, and its input and output drawn out of them), and so is the status
    // message (its preview and its whole); a larger one is named with its size, for the API to
    // read.
    let mut room = max_bytes;
    let shown: Vec<Result<Option<Shown>, usize>> = events
        .iter()
        .map(|event| {
            let Some(body) = contexts.body(event) else {
                return Ok(None);
            };
            let message = event.span.status_message.as_ref().map_or(0, String::len);
            let len = agentvista_ingest::json::written_len(&body)
                .saturating_mul(2)
                .saturating_add(message.saturating_mul(2));
            if len > room {
                return Err(len);
            }
            room -= len;
            Ok(Some(Shown::of(&body)))
        })
        .collect();
    let rows = tree::rows(
        &events
            .iter()
            .map(|e| (e.client_event_id.as_deref(), e.span.parent_id.as_deref()))
            .collect::<Vec<_>>(),
    );
    let axis = Axis::of(events);
    let title = summary
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_else(|| trace_id.clone());
    let total = summary
        .as_ref()
        .map_or(events.len() as u64, |s| s.event_count);
    let response = page(
        "Trace",
        Some(&viewer),
        "traces",
        html! {
            p { a href="/traces" { "← Traces" } }
            h1 { "Trace " (title) }
            p.trace-facts {
                code { (trace_id) }
                @if let Some(summary) = &summary {
                    " · " (thousands(summary.event_count)) " events"
                    @if let Some(d) = summary.duration() { " · " span id="trace-duration" { (duration(d)) } }
                    " · " (status_mark(summary.status))
                    @if summary.error_count > 0 { " " span.hint { (thousands(summary.error_count)) " failed" } }
                    @if summary.usage.is_some() { " · tokens " (tokens(summary)) }
                }
            }
            @if (events.len() as u64) < total || page_of.next_cursor.is_some() {
                p.hint id="trace-truncated" { "Showing the first " (thousands(events.len() as u64)) " of " (thousands(total.max(events.len() as u64))) " events; the API pages through all of them." }
            }
            div.trace-layout {
                div.table-wrap { table id="trace-events" aria-label="Events as a tree, with a waterfall of their times" {
                    thead { tr { th { "Name" } th { "Type" } th { "Duration" } th { "Status" } th.lane-head { "0" span { (duration(axis.span)) } } } }
                    tbody {
                        @for row in &rows {
                            @let event = &events[row.index];
                            @let failed = event.span.status == Some(SpanStatus::Error);
                            tr.failed[failed] data-depth=(row.depth) data-name=(event.name.as_deref().unwrap_or("")) {
                                td.name {
                                    // Indented by elements, not a style attribute: the pages'
                                    // policy runs no inline style.
                                    @for _ in 0..row.depth.min(MAX_INDENT) { span.indent {} }
                                    @if row.depth > 0 { span.branch aria-hidden="true" { "└ " } }
                                    a href=(format!("#event-{}", row.index)) title=(event.name.as_deref().unwrap_or("(unnamed)")) { (event.name.as_deref().unwrap_or("(unnamed)")) }
                                }
                                td { span.tag { (event.event_type) } }
                                td.num { (event.span.duration_from(event.timestamp).map_or_else(|| "—".to_owned(), duration)) }
                                td { (status_mark(event.span.status)) }
                                td.lane { (axis.bar(event)) }
                            }
                        }
                    }
                } }
                div.details-pane {
                    p.hint.pick { "Select an event to see its details." }
                    @for (index, event) in events.iter().enumerate() {
                        (details(index, event, &shown[index]))
                    }
                }
            }
        },
    );
    // The page holds its budget until it has been sent.
    Ok(response
        .map_body(|_, body| {
            use actix_web::body::MessageBody;
            crate::trace_page::Granted::new(body.try_into_bytes().unwrap_or_default(), grant)
        })
        .map_into_boxed_body())
}

/// One event's details, shown when its row is selected (the panel is the URL's target).
fn details(index: usize, event: &PageEvent, shown: &Result<Option<Shown>, usize>) -> Markup {
    let span = &event.span;
    html! {
        section.event-detail id=(format!("event-{index}")) tabindex="-1" aria-label=(event.name.as_deref().unwrap_or("event")) {
            h2 { (event.name.as_deref().unwrap_or("(unnamed)")) " " span.tag { (event.event_type) } }
            dl {
                dt { "Started" } dd { (event.timestamp.format("%Y-%m-%d %H:%M:%S%.3f UTC")) }
                @if let Some(d) = span.duration_from(event.timestamp) { dt { "Duration" } dd { (duration(d)) } }
                dt { "Status" } dd { (status_mark(span.status)) }
                @if let Some(message) = &span.status_message { dt { "Status message" } dd { (long_text(message)) } }
                @if let Some(model) = &span.model { dt { "Model" } dd.model { (model) } }
                @if let Some(usage) = span.usage {
                    dt { "Tokens" }
                    dd.tokens { (thousands(usage.input_tokens)) " in / " (thousands(usage.output_tokens)) " out" }
                }
                @if let Some(id) = &event.client_event_id { dt { "Id" } dd { code { (id) } } }
                @if let Some(parent) = &span.parent_id { dt { "Parent" } dd { code { (parent) } } }
            }
            @match shown {
                Ok(Some(shown)) => {
                    @for (label, text) in &shown.io { h3 { (label) } (long_text(text)) }
                    details { summary { "All fields" } pre.wrap { code { (shown.fields) } } }
                }
                Ok(None) => {}
                Err(len) => { p.hint { "Details of " (thousands(*len as u64)) " bytes: too large to show here; the API returns them." } }
            }
        }
    }
}

/// A value as wrapped, preformatted text; past [`PREVIEW_CHARS`], its start, with the whole
/// one click away.
fn long_text(text: &str) -> Markup {
    let cut = text.char_indices().nth(PREVIEW_CHARS).map(|(at, _)| at);
    html! {
        @match cut {
            None => pre.wrap { (text) },
            Some(at) => details.long {
                summary { pre.wrap { (&text[..at]) "…" } span.hint { "Show all " (thousands(text.chars().count() as u64)) " characters" } }
                pre.wrap { (text) }
            },
        }
    }
}

/// What a shown event's details draw from its body.
struct Shown {
    /// Input and output, labelled, as text.
    io: Vec<(&'static str, String)>,
    /// All its fields, pretty-printed.
    fields: String,
}

impl Shown {
    /// The SDK's input and output (`agentvista.input`/`output`), a model call's messages
    /// (`gen_ai.input.messages`/`output.messages`), or a batch event's `input`/`output`.
    fn of(body: &Merged<'_>) -> Self {
        const IO: [(&str, &str); 6] = [
            ("agentvista.input", "Input"),
            ("gen_ai.input.messages", "Input messages"),
            ("input", "Input"),
            ("agentvista.output", "Output"),
            ("gen_ai.output.messages", "Output messages"),
            ("output", "Output"),
        ];
        let fields = serde_json::to_string_pretty(body).unwrap_or_default();
        let mut io = Vec::new();
        if let Merged::Fields(top) = body {
            let attributes: BTreeMap<String, &RawValue> = top
                .get("attributes")
                .and_then(|a| serde_json::from_str(a.get()).ok())
                .unwrap_or_default();
            for (key, label) in IO {
                let value = attributes
                    .get(key)
                    .copied()
                    .or_else(|| top.get(key).copied());
                if let Some(value) = value {
                    io.push((label, readable(value)));
                }
            }
        }
        Shown { io, fields }
    }
}

/// A value as a person reads it: a string as its text (pretty-printed when it holds JSON, as
/// the SDK records arguments), anything else pretty-printed.
fn readable(value: &RawValue) -> String {
    let parsed: serde_json::Value = serde_json::from_str(value.get()).unwrap_or_default();
    match parsed {
        serde_json::Value::String(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(inner @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                serde_json::to_string_pretty(&inner).unwrap_or(text)
            }
            _ => text,
        },
        other => serde_json::to_string_pretty(&other).unwrap_or_default(),
    }
}

/// The waterfall's time axis: from the page's first start to its last end.
struct Axis {
    start: DateTime<Utc>,
    span: chrono::TimeDelta,
}

impl Axis {
    fn of(events: &[PageEvent]) -> Self {
        let start = events.iter().map(|e| e.timestamp).min().unwrap_or_default();
        let end = events
            .iter()
            .map(|e| e.span.end_time.unwrap_or(e.timestamp).max(e.timestamp))
            .max()
            .unwrap_or(start);
        Axis {
            start,
            span: end - start,
        }
    }

    /// `event`'s bar: where it starts and how long it lasts on the axis, drawn in SVG (whose
    /// geometry is markup, not a style the pages' policy would block); a short mark for an
    /// event without an end.
    fn bar(&self, event: &PageEvent) -> Markup {
        /// Units of the drawing's width.
        const WIDTH: f64 = 1000.0;
        let micros = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(i64::MAX) as f64;
        let whole = micros(self.span).max(1.0);
        let x = (micros(event.timestamp - self.start) / whole * WIDTH).clamp(0.0, WIDTH - 4.0);
        let lasted = event.span.duration_from(event.timestamp);
        let width = lasted.map_or(4.0, |d| (micros(d) / whole * WIDTH).clamp(4.0, WIDTH - x));
        let kind = match (event.span.status, event.event_type.as_str()) {
            (Some(SpanStatus::Error), _) => "bar failed",
            (_, "generation") => "bar generation",
            _ if event.span.model.is_some() => "bar generation",
            _ if lasted.is_none() => "bar point",
            _ => "bar",
        };
        let label = match lasted {
            Some(d) => format!(
                "from {} for {}",
                duration(event.timestamp - self.start),
                duration(d)
            ),
            None => format!("at {}", duration(event.timestamp - self.start)),
        };
        html! {
            svg viewBox="0 0 1000 12" preserveAspectRatio="none" role="img" aria-label=(label) {
                title { (label) }
                rect class=(kind) x=(format!("{x:.1}")) y="2" width=(format!("{width:.1}")) height="8" {}
            }
        }
    }
}

/// Everything but RFC 3986's unreserved characters, escaped: a trace id is the client's text
/// and may hold `/`, `?`, `#` or `%`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as one URL path segment.
fn path_segment(text: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(text, SEGMENT)
}

/// The link to trace `id`'s page: `/traces/<id>`, or `/trace?id=<id>` for an id that a path
/// cannot hold.
fn trace_href(id: &str) -> String {
    if id == "." || id == ".." {
        format!("/trace?id={}", path_segment(id))
    } else {
        format!("/traces/{}", path_segment(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_escaped_as_one_path_segment() {
        assert_eq!(path_segment("abc-1.2_~").to_string(), "abc-1.2_~");
        assert_eq!(
            path_segment("a/b?c#d%e f").to_string(),
            "a%2Fb%3Fc%23d%25e%20f"
        );
        assert_eq!(path_segment("é").to_string(), "%C3%A9");
        assert_eq!(trace_href("a/b"), "/traces/a%2Fb");
        assert_eq!(trace_href("..."), "/traces/...");
        assert_eq!(trace_href(".."), "/trace?id=..");
        assert_eq!(trace_href("."), "/trace?id=.");
    }

    #[test]
    fn a_shared_list_url_carries_its_filters_and_cursor() {
        let filter = TraceFilter {
            name: Some("run agent&co".into()),
            from: DateTime::from_timestamp(1_796_558_400, 0),
            to: None,
            errors_only: true,
        };
        assert_eq!(
            list_url(&filter, Some("abc")),
            "/traces?name=run%20agent%26co&from=2026-12-06T12%3A00%3A00Z&status=error&cursor=abc"
        );
        let url = list_url(&filter, None);
        let query = url.split_once('?').unwrap().1;
        let (parsed, cursor, _) = crate::handlers::traces::list_query(query, true).unwrap();
        assert_eq!((parsed, cursor), (filter, None));
    }

    #[test]
    fn long_values_fold_after_their_start() {
        let short = long_text("short").into_string();
        assert!(!short.contains("<details"));
        let long = "é".repeat(PREVIEW_CHARS + 1);
        let folded = long_text(&long).into_string();
        assert!(folded.contains("<details"));
        assert!(folded.contains(&format!("Show all {} characters", PREVIEW_CHARS + 1)));
    }
}
