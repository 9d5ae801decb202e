#![doc = include_str!("../README.md")]

mod batch;
mod encoding;
mod error;
mod event;
pub mod json;
mod otlp;

pub use batch::{MAX_BATCH_EVENTS, MAX_ID_CHARS, decode_batch};
pub use encoding::ContentEncoding;
pub use error::IngestError;
pub use event::{Event, EventKind};
pub use otlp::{Format, Signal, decode_otlp, export_response};
