//! [`KeyHash`]: what is stored in place of a key.

use std::fmt;
use std::hash::{Hash, Hasher};

use subtle::ConstantTimeEq;

/// SHA-256 of a full key, the only form in which keys are stored.
///
/// Equality runs in constant time, so comparing a candidate hash with a stored one leaks no
/// timing about how many leading bytes agree. `Debug` shows only the first four bytes.
///
/// ```
/// use agentvista_keys::{ApiKey, KeyHash};
///
/// let key = ApiKey::generate()?;
/// let stored = key.hash().to_hex();
/// assert_eq!(stored.len(), 64);
/// assert_eq!(KeyHash::from_hex(&stored)?, key.hash());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct KeyHash([u8; 32]);

/// A stored hash that is not 64 hex characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a key hash is 64 hex characters")]
pub struct HashHexError;

impl KeyHash {
    /// Wraps a SHA-256 digest.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        KeyHash(bytes)
    }

    /// The digest's bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lowercase hex characters, the stored form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads the stored form back (either case is accepted).
    ///
    /// # Errors
    /// [`HashHexError`] unless `text` is exactly 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, HashHexError> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| HashHexError)?;
        Ok(KeyHash(bytes))
    }
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for KeyHash {}

impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_hex_rejects_wrong_length_and_non_hex() {
        assert_eq!(KeyHash::from_hex(""), Err(HashHexError));
        assert_eq!(KeyHash::from_hex(&"a".repeat(63)), Err(HashHexError));
        assert_eq!(KeyHash::from_hex(&"a".repeat(66)), Err(HashHexError));
        assert_eq!(KeyHash::from_hex(&"g".repeat(64)), Err(HashHexError));
    }

    #[test]
    fn hashes_differing_in_the_last_byte_are_unequal() {
        let mut other = [7u8; 32];
        other[31] = 8;
        assert_ne!(KeyHash::from_bytes([7; 32]), KeyHash::from_bytes(other));
        assert_eq!(KeyHash::from_bytes([7; 32]), KeyHash::from_bytes([7; 32]));
    }

    #[test]
    fn debug_shows_only_a_fingerprint() {
        let hash = KeyHash::from_bytes([0xab; 32]);
        assert_eq!(format!("{hash:?}"), "KeyHash(abababab…)");
    }
}
