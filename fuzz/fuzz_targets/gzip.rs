//! Every decoder behind `ContentEncoding::Gzip` (or `Deflate`): the first byte picks the
//! encoding and the decoder (batch, or an OTLP signal and format); the inflated body never
//! passes the limit, and what decodes holds the same invariants as without compression.
#![no_main]

#[path = "ingest_common.rs"]
mod ingest_common;

use agentvista_ingest::{ContentEncoding, IngestError};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let encoding = if selector & 0x40 == 0 {
        ContentEncoding::Gzip
    } else {
        ContentEncoding::Deflate
    };
    match encoding.decode(body, LIMIT) {
        Ok(inflated) => {
            assert!(inflated.len() <= LIMIT);
            if selector & 0x20 == 0 {
                ingest_common::check_batch(&inflated);
            } else {
                let (signal, format) = ingest_common::otlp(selector);
                ingest_common::check_otlp(signal, format, &inflated);
            }
        }
        Err(IngestError::Invalid(_) | IngestError::TooLarge { .. }) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
});
