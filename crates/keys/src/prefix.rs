//! [`KeyPrefix`]: the public, displayable start of a key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::format::{DISPLAY_PREFIX_LEN, HEX_ALPHABET, MARKER, ascii_str};

/// The public part of a key, `av_` + 8 lowercase hex characters, e.g. `av_a1b2c3d4`.
///
/// Unique per key; safe to show in the dashboard, in logs and in error messages. It
/// identifies a key to humans; it never authenticates anything.
///
/// ```
/// use agentvista_keys::KeyPrefix;
///
/// let prefix: KeyPrefix = "av_a1b2c3d4".parse()?;
/// assert_eq!(prefix.as_str(), "av_a1b2c3d4");
/// assert!("av_A1B2C3D4".parse::<KeyPrefix>().is_err());
/// # Ok::<(), agentvista_keys::PrefixError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPrefix([u8; DISPLAY_PREFIX_LEN]);

/// A string that is not a key prefix (`av_` + 8 lowercase hex characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a key prefix is \"av_\" followed by 8 lowercase hex characters")]
pub struct PrefixError;

impl KeyPrefix {
    /// Wraps bytes already known to be `av_` + 8 lowercase hex digits.
    pub(crate) fn from_checked(bytes: [u8; DISPLAY_PREFIX_LEN]) -> Self {
        KeyPrefix(bytes)
    }

    /// Checks and wraps a prefix such as `av_a1b2c3d4`.
    ///
    /// # Errors
    /// [`PrefixError`] for anything else, upper-case hex included.
    pub fn parse(input: &str) -> Result<Self, PrefixError> {
        let bytes: &[u8; DISPLAY_PREFIX_LEN] =
            input.as_bytes().try_into().map_err(|_| PrefixError)?;
        let (marker, hex) = bytes.split_at(MARKER.len());
        if marker != MARKER.as_bytes() || !hex.iter().all(|b| HEX_ALPHABET.contains(b)) {
            return Err(PrefixError);
        }
        Ok(KeyPrefix(*bytes))
    }

    /// The prefix as text, `av_` included.
    #[must_use]
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPrefix({})", self.as_str())
    }
}

impl FromStr for KeyPrefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for KeyPrefix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyPrefix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parse_rejects_every_other_shape() {
        for bad in [
            "",
            "av_",
            "av_a1b2c3d",
            "av_a1b2c3d4e",
            "AV_a1b2c3d4",
            "av-a1b2c3d4",
            "av_a1b2c3dg",
            "av_A1b2c3d4",
            "av_a1b2c3d\u{e9}",
        ] {
            assert_eq!(KeyPrefix::parse(bad), Err(PrefixError), "{bad:?}");
        }
    }

    #[test]
    fn prefix_serde_is_a_plain_string() {
        let prefix = KeyPrefix::parse("av_0123abcd").unwrap();
        let json = serde_json::to_string(&prefix).unwrap();
        assert_eq!(json, "\"av_0123abcd\"");
        assert_eq!(serde_json::from_str::<KeyPrefix>(&json).unwrap(), prefix);
        assert!(serde_json::from_str::<KeyPrefix>("\"av_0123ABCD\"").is_err());
    }
}
