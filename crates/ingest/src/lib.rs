#![doc = include_str!("../README.md")]

mod batch;
mod caps;
mod count;
mod decoded;
mod encoding;
mod error;
mod event;
pub mod expansion;
pub mod json;
mod otlp;
mod signal;
mod span;
mod tree;

pub use batch::{MAX_BATCH_EVENTS, decode_batch};
pub use caps::{
    Caps, MAX_ATTRIBUTE_VALUES, MAX_DEPTH, MAX_ELEMENTS, MAX_ID_CHARS, MAX_NESTED_ENTRIES,
};
pub use decoded::{Context, Decoded, merge_context};
pub use encoding::{ContentEncoding, Inflate};
pub use error::IngestError;
pub use event::{Event, EventKind};
pub use json::contains_nul;
pub use otlp::{MAX_OTLP_EVENTS, decode_otlp, export_response};
pub use signal::{Format, Signal};
pub use span::{MAX_TOKENS, SpanFields, Status, Usage, stored_span_fields};
