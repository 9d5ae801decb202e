//! `decode_batch` never panics, and what it accepts holds the batch invariants.
#![no_main]

#[path = "ingest_common.rs"]
mod ingest_common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ingest_common::check_batch(data));
