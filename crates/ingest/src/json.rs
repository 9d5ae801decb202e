//! JSON decoding whose errors name the path of the offending field.

use serde::de::DeserializeOwned;

use crate::IngestError;

/// Deserializes `body` as JSON into `T`; an error names the first offending field's path
/// (`batch[7].type: unknown variant …`, or `body: …` for the document as a whole).
///
/// # Errors
/// [`IngestError::Invalid`].
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, IngestError> {
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
