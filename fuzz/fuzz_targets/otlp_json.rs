//! `decode_otlp` on JSON bodies (the signal from the first byte) never panics, and what it
//! accepts holds the invariants: at most `MAX_OTLP_EVENTS` events, contexts that point back.
#![no_main]

#[path = "ingest_common.rs"]
mod ingest_common;

use agentvista_ingest::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&selector, body)) = data.split_first() {
        let (signal, _) = ingest_common::otlp(selector);
        ingest_common::check_otlp(signal, Format::Json, body);
    }
});
