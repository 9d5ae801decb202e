//! [`Caps`] and the structural limits every decoded request is held to: they bound what a
//! request costs in memory while it is decoded, whatever its size on the wire.

/// Deepest nesting of one value: an OTLP attribute value (or log body) is depth 1 and each
/// `arrayValue` or `kvlistValue` inside it adds one; a batch event's `body` object is depth 1
/// and each JSON array or object inside it adds one.
pub const MAX_DEPTH: usize = 32;

/// Most elements of one container: an OTLP `arrayValue` or `kvlistValue`, an attribute list,
/// a JSON array or object inside a batch event's `body` (its top level included).
pub const MAX_ELEMENTS: usize = 10_000;

/// Longest `id`, `trace_id`, `name`, `parent_id` or `model` accepted, in characters (and the
/// longest OTLP metric name or GenAI model name kept).
pub const MAX_ID_CHARS: usize = 256;

/// Most attribute values in one OTLP request: every `KeyValue` and every `AnyValue` (a log
/// body, an element of an array) at any depth. Counted before the message is decoded, since
/// an empty value is 2 bytes on the wire and tens of bytes decoded.
pub const MAX_ATTRIBUTE_VALUES: usize = 100_000;

/// Most nested entries in one OTLP request: span events and links, exemplars, summary quantile
/// values, resource entity references and their keys, histogram bucket counts and explicit
/// bounds (a packed list counts each of its elements). Counted before the message is decoded,
/// like [`MAX_ATTRIBUTE_VALUES`], for the same reason: each is a few bytes on the wire and many
/// more decoded.
pub const MAX_NESTED_ENTRIES: usize = 50_000;

/// The limits that are settings rather than constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Longest single value, in bytes: an OTLP string or bytes value at any depth (a log
    /// body's string included; bytes counted before hex encoding), or one top-level member of
    /// a batch event's `body` (the length of its JSON text).
    pub max_attribute_bytes: usize,
}

impl Default for Caps {
    /// 1 MiB per value.
    fn default() -> Self {
        Caps {
            max_attribute_bytes: 1_048_576,
        }
    }
}
