//! Invariants every decoded request must hold, shared by the ingestion fuzz targets.
// Each target uses part of these helpers.
#![allow(dead_code)]

use agentvista_ingest::{
    Caps, Decoded, Format, MAX_BATCH_EVENTS, MAX_OTLP_EVENTS, Signal, contains_nul, decode_batch,
    decode_otlp,
};
use chrono::DateTime;

/// The signal and format chosen by a selector byte.
pub fn otlp(selector: u8) -> (Signal, Format) {
    let signal = match (selector & 0x0f) % 3 {
        0 => Signal::Traces,
        1 => Signal::Logs,
        _ => Signal::Metrics,
    };
    let format = if selector & 0x80 == 0 {
        Format::Protobuf
    } else {
        Format::Json
    };
    (signal, format)
}

/// Decodes `body` as OTLP and checks what comes out.
pub fn check_otlp(signal: Signal, format: Format, body: &[u8]) {
    if let Ok(decoded) = decode_otlp(signal, format, body, DateTime::UNIX_EPOCH, &Caps::default()) {
        assert!(decoded.events.len() <= MAX_OTLP_EVENTS);
        check(&decoded);
        for event in &decoded.events {
            assert!(event.context.is_some(), "every OTLP event has a context");
        }
    }
}

/// Decodes `body` as a batch and checks what comes out.
pub fn check_batch(body: &[u8]) {
    if let Ok(decoded) = decode_batch(body, &Caps::default()) {
        assert!((1..=MAX_BATCH_EVENTS).contains(&decoded.events.len()));
        assert!(decoded.contexts.is_empty());
        assert!(decoded.events.iter().all(|e| e.context.is_none()));
        check(&decoded);
    }
}

fn check(decoded: &Decoded) {
    for (index, context) in decoded.contexts.iter().enumerate() {
        if let Some(parent) = context.parent {
            assert!(parent < index, "a parent comes before its child");
        }
        let fields: serde_json::Value = serde_json::from_str(context.fields.get()).unwrap();
        assert!(fields.is_object());
        assert!(!contains_nul(&fields));
    }
    for (i, event) in decoded.events.iter().enumerate() {
        if let Some(context) = event.context {
            assert!(context < decoded.contexts.len());
        }
        for text in [&event.id, &event.trace_id, &event.name].into_iter().flatten() {
            assert!(!text.contains('\0'));
        }
        if let Some(body) = &event.body {
            let body: serde_json::Value = serde_json::from_str(body.get()).unwrap();
            assert!(body.is_object());
            assert!(!contains_nul(&body));
        }
        let merged = decoded.body_of(i);
        assert_eq!(merged.is_some(), event.body.is_some() || event.context.is_some());
    }
}
