//! The decoder's span fields as the store keeps them, for ingestion and for the job that fills
//! OTLP spans stored before they had columns (one mapping for both).

use agentvista_store::{Filled, SpanFields, SpanStatus, Store, StoreError, Sweep, TokenUsage};

/// `span` as the store keeps it.
pub(crate) fn stored(span: agentvista_ingest::SpanFields) -> SpanFields {
    SpanFields {
        parent_id: span.parent_id,
        end_time: span.end_time,
        status: span.status.map(|status| match status {
            agentvista_ingest::Status::Ok => SpanStatus::Ok,
            agentvista_ingest::Status::Error => SpanStatus::Error,
        }),
        status_message: span.status_message,
        model: span.model,
        usage: span.usage.map(|usage| TokenUsage {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
        }),
    }
}

/// Gives the OTLP spans stored before their parent, end, status, model and usage had columns
/// those fields, read from their stored bodies as ingestion reads a span, and recomputes their
/// traces; `sweep`'s batch and pause, on one replica at a time. Run it until
/// [`Filled::done`]: afterwards it costs one read.
///
/// # Errors
/// The store's; what was filled stays filled, and the next run goes on from there.
pub async fn fill_span_fields(store: &Store, sweep: &Sweep) -> Result<Filled, StoreError> {
    store
        .fill_span_fields(sweep, &|trace_id, body| {
            stored(agentvista_ingest::stored_span_fields(trace_id, body))
        })
        .await
}
