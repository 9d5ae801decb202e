//! What decoding one request may cost in memory at most, the body itself included: what to
//! reserve from a memory budget before decoding it.
//!
//! A body's text and bytes cost a small multiple of their size (the body, the decoded message's
//! strings, the bodies written out as JSON text); what costs far more than its size on the wire
//! is structure — an empty span is 2 bytes of protobuf and a few hundred decoded. So the cost is
//! a multiple of the body plus a price per entry of each kind the pre-decode scan counts
//! (events, groups, attribute values, nested entries), never a multiple alone: 10,000 empty data
//! points are 20 kB on the wire and 9 MB decoded.
//!
//! The constants are held to what `tests/memory.rs` measures — the worst requests we could
//! build, each a case whose peak allocation must stay within [`otlp`] or [`batch`] — counted in
//! bytes asked of the allocator (a `realloc` counted as a new block plus the old one). They hold
//! because of the caps ([`MAX_OTLP_EVENTS`],
//! [`MAX_ATTRIBUTE_VALUES`],
//! [`MAX_NESTED_ENTRIES`], [`MAX_DEPTH`](crate::MAX_DEPTH),
//! [`MAX_ELEMENTS`](crate::MAX_ELEMENTS), [`Caps`](crate::Caps)): changing one, or how a body is
//! decoded, means measuring again.

use crate::count::Counts;
use crate::{
    Format, IngestError, MAX_ATTRIBUTE_VALUES, MAX_NESTED_ENTRIES, MAX_OTLP_EVENTS, Signal,
};

/// The batch endpoint, per byte of body: the body, each event's body kept as the JSON text it
/// came as (a copy), the events' other fields, and the request's own structures.
pub const BATCH_JSON: usize = 6;

/// OTLP, per request: what any request costs, however small (the decoded message's outer
/// entries, the answer's vectors).
pub const OTLP_PER_REQUEST: usize = 8 * 1024;
/// OTLP, per byte of body: the body, the decoded message's strings and bytes, and the events'
/// bodies written out as JSON (bytes values as hex, twice their size).
pub const OTLP_PER_BYTE: usize = 5;
/// OTLP, per event (span, log record, data point): the decoded message's entry, the event, its
/// id and its body's fixed fields.
pub const OTLP_PER_EVENT: usize = 900;
/// OTLP, per resource, scope or metric entry: the decoded entry and its context.
pub const OTLP_PER_GROUP: usize = 300;
/// OTLP, per attribute value (an `AnyValue` or a `KeyValue`, at any depth).
pub const OTLP_PER_VALUE: usize = 160;
/// OTLP, per nested entry (span event or link, exemplar, quantile, bucket, entity reference).
pub const OTLP_PER_ENTRY: usize = 200;

/// What decoding a batch body of `len` bytes costs at most.
#[must_use]
pub const fn batch(len: usize) -> usize {
    len.saturating_mul(BATCH_JSON)
}

/// What decoding the OTLP request `body` costs at most, from a scan of it that allocates
/// nothing. The request is refused here already if it is unreadable or past a count cap.
///
/// # Errors
/// [`IngestError::Invalid`], as [`decode_otlp`](crate::decode_otlp) would answer.
pub fn otlp(signal: Signal, format: Format, body: &[u8]) -> Result<usize, IngestError> {
    let counts = crate::count::scan(signal, format, body)?;
    crate::otlp::check_counts(signal, counts)?;
    Ok(of(body.len(), counts))
}

fn of(len: usize, counts: Counts) -> usize {
    len.saturating_mul(OTLP_PER_BYTE)
        .saturating_add(OTLP_PER_REQUEST)
        .saturating_add(counts.events.saturating_mul(OTLP_PER_EVENT))
        .saturating_add(counts.groups.saturating_mul(OTLP_PER_GROUP))
        .saturating_add(counts.values.saturating_mul(OTLP_PER_VALUE))
        .saturating_add(counts.entries.saturating_mul(OTLP_PER_ENTRY))
}

/// The most decoding any one request of at most `max_body_bytes` can cost: every cap reached
/// at once. A server whose account share of its memory budget is below this would answer such
/// a request 503 for ever.
///
/// ```
/// use agentvista_ingest::expansion;
/// assert!(expansion::worst(5 * 1024 * 1024) <= 64 * 1024 * 1024);
/// assert!(expansion::worst(1024) >= expansion::batch(1024));
/// ```
#[must_use]
pub fn worst(max_body_bytes: usize) -> usize {
    let counts = Counts {
        events: MAX_OTLP_EVENTS,
        groups: MAX_OTLP_EVENTS,
        values: MAX_ATTRIBUTE_VALUES,
        entries: MAX_NESTED_ENTRIES,
    };
    of(max_body_bytes, counts).max(batch(max_body_bytes))
}
