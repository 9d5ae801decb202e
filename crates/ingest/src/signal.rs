//! Which OTLP signal a request carries, and in which encoding.

use crate::IngestError;

/// The three OTLP signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `/v1/traces`: one event per span.
    Traces,
    /// `/v1/logs`: one event per log record.
    Logs,
    /// `/v1/metrics`: one event per data point.
    Metrics,
}

/// The two OTLP/HTTP encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (the OTLP JSON mapping: hex ids, lowerCamelCase, enums as numbers).
    Json,
}

impl Format {
    /// The format named by a `Content-Type` header (parameters such as `charset` ignored).
    ///
    /// # Errors
    /// [`IngestError::UnsupportedMediaType`] for anything else, or no header.
    pub fn from_content_type(header: Option<&str>) -> Result<Self, IngestError> {
        let essence = header
            .and_then(|h| h.split(';').next())
            .map(|h| h.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("application/x-protobuf" | "application/protobuf") => Ok(Format::Protobuf),
            Some("application/json") => Ok(Format::Json),
            _ => Err(IngestError::UnsupportedMediaType(
                "OTLP takes Content-Type application/x-protobuf or application/json".into(),
            )),
        }
    }

    /// The `Content-Type` of answers in this format.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}
