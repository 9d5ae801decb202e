//! [`Json`]: what an OTLP request's attributes and bodies become before they are written out as
//! JSON text — the strings and bytes moved out of the decoded message, objects as sorted
//! vectors. A `serde_json::Value` object is a B-tree whose smallest node is over 600 bytes, so
//! a one-key kvlist (a few bytes on the wire) would cost that much; here it costs one entry.
//! The text written is what `serde_json::Value` would write: keys sorted, a repeated key's last
//! value kept, a number that is not finite written as `null`.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::IngestError;

/// A JSON value, checked and ready to write.
#[derive(Debug)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    /// Bytes, written as lowercase hex.
    Hex(Vec<u8>),
    Array(Vec<Json>),
    Object(Object),
}

/// An object's members, sorted by key, each key once.
#[derive(Debug, Default)]
pub(crate) struct Object(Vec<(String, Json)>);

impl Object {
    /// The members, as `serde_json::Map` would keep them: sorted, the last of a repeated key.
    pub(crate) fn from_members(mut members: Vec<(String, Json)>) -> Self {
        // A stable sort keeps repeated keys in their order, so the last is the last of its run.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, Json)> = Vec::with_capacity(members.len());
        for (key, value) in members {
            match out.last_mut() {
                Some(last) if last.0 == key => last.1 = value,
                _ => out.push((key, value)),
            }
        }
        Object(out)
    }
}

/// Fields of an event's body or of a context, gathered in any order.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(String, Json)>);

impl Fields {
    pub(crate) fn new() -> Self {
        Fields(Vec::new())
    }

    pub(crate) fn insert(&mut self, key: &str, value: impl Into<Json>) {
        self.0.push((key.to_owned(), value.into()));
    }

    pub(crate) fn into_object(self) -> Json {
        Json::Object(Object::from_members(self.0))
    }

    /// The fields as the text of one JSON object.
    pub(crate) fn into_raw(self) -> Result<Box<RawValue>, IngestError> {
        self.into_object().into_raw()
    }
}

impl Json {
    /// An object of these members.
    pub(crate) fn object<const N: usize>(members: [(&str, Json); N]) -> Json {
        Json::Object(Object::from_members(
            members
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        ))
    }

    /// The value as JSON text, in a buffer of exactly its size: written once to count its
    /// bytes, then for real (a growing buffer would hold up to twice the text, and three times
    /// while it moves).
    pub(crate) fn into_raw(self) -> Result<Box<RawValue>, IngestError> {
        let failed = |e: &dyn std::fmt::Display| {
            IngestError::Invalid(format!("body: cannot be written as JSON: {e}"))
        };
        let mut text = Vec::with_capacity(crate::json::written_len(&self));
        serde_json::to_writer(&mut text, &self).map_err(|e| failed(&e))?;
        let text = String::from_utf8(text).map_err(|e| failed(&e))?;
        RawValue::from_string(text).map_err(|e| failed(&e))
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::I64(i) => serializer.serialize_i64(*i),
            Json::U64(u) => serializer.serialize_u64(*u),
            // As `serde_json::Value` holds it: a number that is not finite is `null`.
            Json::F64(f) if f.is_finite() => serializer.serialize_f64(*f),
            Json::F64(_) => serializer.serialize_unit(),
            Json::Str(s) => serializer.serialize_str(s),
            Json::Hex(bytes) => serializer.collect_str(&Hex(bytes)),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(Object(members)) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// Lowercase hex, written without building the string.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl From<bool> for Json {
    fn from(value: bool) -> Self {
        Json::Bool(value)
    }
}

impl From<i32> for Json {
    fn from(value: i32) -> Self {
        Json::I64(value.into())
    }
}

impl From<i64> for Json {
    fn from(value: i64) -> Self {
        Json::I64(value)
    }
}

impl From<u32> for Json {
    fn from(value: u32) -> Self {
        Json::U64(value.into())
    }
}

impl From<u64> for Json {
    fn from(value: u64) -> Self {
        Json::U64(value)
    }
}

impl From<f64> for Json {
    fn from(value: f64) -> Self {
        Json::F64(value)
    }
}

impl From<String> for Json {
    fn from(value: String) -> Self {
        Json::Str(value)
    }
}

impl From<&str> for Json {
    fn from(value: &str) -> Self {
        Json::Str(value.to_owned())
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(value: Option<T>) -> Self {
        value.map_or(Json::Null, Into::into)
    }
}

impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(values: Vec<T>) -> Self {
        Json::Array(values.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The text written is `serde_json::Value`'s, whatever the order and repeats of keys.
    #[test]
    fn it_writes_what_a_value_would() {
        let tree = Json::object([
            ("z", Json::F64(f64::NAN)),
            ("a", Json::Hex(vec![0xab, 0x01])),
            (
                "m",
                Json::Object(Object::from_members(vec![
                    ("k".into(), 1i64.into()),
                    ("b".into(), Json::Null),
                    ("k".into(), "last".into()),
                ])),
            ),
            ("n", vec![1.5f64, f64::INFINITY].into()),
            ("u", u64::MAX.into()),
            ("s", "é\"\n".into()),
        ]);
        let value = json!({"z": f64::NAN, "a": "ab01", "m": {"b": null, "k": "last"},
            "n": [1.5, f64::INFINITY], "u": u64::MAX, "s": "é\"\n"});
        assert_eq!(
            tree.into_raw().unwrap().get(),
            serde_json::to_string(&value).unwrap()
        );
    }
}
