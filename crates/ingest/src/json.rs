//! JSON decoding whose errors name the path of the offending field.

use serde::Deserialize;

use crate::IngestError;

/// Deserializes `body` as JSON into `T`, which may borrow from it; an error names the first
/// offending field's path (`batch[7].type: unknown variant …`, or `body: …` for the document
/// as a whole).
///
/// # Errors
/// [`IngestError::Invalid`].
pub fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, IngestError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let what = err.into_inner().to_string();
        // serde_json appends " at line 1 column 12"; the path says more.
        let what = what.split(" at line ").next().unwrap_or(&what).to_owned();
        if matches!(path.as_str(), "" | "." | "?") {
            IngestError::Invalid(format!("body: {what}"))
        } else {
            IngestError::Invalid(format!("{path}: {what}"))
        }
    })?;
    de.end().map_err(|_| {
        IngestError::Invalid("body: trailing characters after the JSON value".into())
    })?;
    Ok(value)
}

/// [`parse`] for a body that must be a JSON object, as every request body of the API is.
///
/// serde's derived structs also read a JSON array, field by field in declaration order, so
/// without this check `["ci", ["read"]]` would be taken for `{"name": "ci", "scopes":
/// ["read"]}`. Only the body itself is checked: nested objects are as serde reads them.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Cap { spend_cap_cents: Option<u64> }
///
/// assert!(agentvista_ingest::json::parse_object::<Cap>(br#"{"spend_cap_cents": 5}"#).is_ok());
/// let err = agentvista_ingest::json::parse_object::<Cap>(b" [5]").err().unwrap();
/// assert_eq!(err.to_string(), "body: must be a JSON object, not an array");
/// ```
///
/// # Errors
/// [`IngestError::Invalid`].
pub fn parse_object<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, IngestError> {
    let first = body
        .iter()
        .find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'));
    if first == Some(&b'[') {
        return Err(IngestError::Invalid(
            "body: must be a JSON object, not an array".into(),
        ));
    }
    parse(body)
}

/// Whether a NUL character (U+0000) appears anywhere in `value`: in a string, or in an object's
/// key, at any depth. PostgreSQL cannot store it in `text` or `jsonb`, so such input is a 400.
#[must_use]
pub fn contains_nul(value: &serde_json::Value) -> bool {
    nul_path(value).is_some()
}

/// Where the first NUL character in `value` is, as a path to append to the value's own name:
/// `""` for the value itself, `.key`, `[3]`, `.a.b[0]`. A key that itself holds the NUL is
/// shown with it escaped as `\u0000`.
#[must_use]
pub fn nul_path(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0').then(String::new),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item).map(|rest| format!("[{i}]{rest}"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(format!(".{}", key.replace('\0', "\\u0000")))
            } else {
                nul_path(item).map(|rest| format!(".{key}{rest}"))
            }
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// The length of `value` written as compact JSON, found by writing it to a counter: nothing is
/// kept, so a caller can size a buffer, or pay for one, before the value is written for real.
///
/// ```
/// assert_eq!(agentvista_ingest::json::written_len(&serde_json::json!({"a": [1, 2]})), 11);
/// ```
#[must_use]
pub fn written_len(value: &impl serde::Serialize) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; a value that cannot be written counts as what it wrote.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
