//! [`IngestError`]: why a request's events are refused. Nothing of a refused request is stored.

/// A request that cannot be ingested. Each variant's doc names its HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// 400 `bad_request`: malformed or invalid; the message names the field, with the batch
    /// index (`batch[7].type: …`) or the OTLP path.
    #[error("{0}")]
    Invalid(String),
    /// 413 `payload_too_large`: over the limit, before or after decompression.
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415 `unsupported_media_type`: a content type or encoding the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
}
