//! [`ApiKey`]: the full secret key, its generation and its parsing.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::format::{
    BASE62_ALPHABET, CHECKED_LEN, CHECKSUM_LEN, DISPLAY_PREFIX_LEN, HEX_ALPHABET, KEY_LEN, MARKER,
    SEPARATOR, ascii_str, checksum,
};
use crate::{KeyHash, KeyPrefix};

/// A full API key, `av_<prefix>_<secret><checksum>`, known to be well formed.
///
/// Holding an `ApiKey` means the format and the checksum were checked: nothing downstream
/// checks them again. The key lives inline (no heap allocation) and is zeroed when dropped;
/// `Debug` and `Display` show only the public prefix. The plaintext is reachable only through
/// [`ApiKey::expose_secret`], so every place that reveals it is easy to find.
///
/// ```
/// use agentvista_keys::ApiKey;
///
/// let key = ApiKey::generate()?;
/// let shown_once = key.expose_secret().to_owned();
/// let parsed = ApiKey::parse(&shown_once)?;
/// assert_eq!(parsed.hash(), key.hash());
/// assert!(!format!("{key:?} {key}").contains(&shown_once[12..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ApiKey {
    bytes: [u8; KEY_LEN],
}

/// Why a string is not an API key. The message never contains the input.
///
/// Callers facing the network answer every variant with the same `invalid_api_key`; the
/// variant is for the server log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input is not exactly [`KEY_LEN`] bytes long.
    #[error("an API key is {KEY_LEN} characters long, this one is {found} bytes")]
    Length {
        /// Length of the input in bytes.
        found: usize,
    },
    /// The input does not start with `av_`.
    #[error("an API key starts with \"av_\"")]
    Marker,
    /// A character of the public prefix is not a lowercase hex digit.
    #[error("character {position} of the key prefix is not a lowercase hex digit")]
    Prefix {
        /// Zero-based byte offset in the key.
        position: usize,
    },
    /// The character after the prefix is not `_`.
    #[error("character {DISPLAY_PREFIX_LEN} of an API key must be \"_\"")]
    Separator,
    /// A character of the secret or checksum is not one of `[0-9A-Za-z]`.
    #[error("character {position} of the key is not a base62 character")]
    Alphabet {
        /// Zero-based byte offset in the key.
        position: usize,
    },
    /// The checksum does not match: the key was mistyped or truncated and pasted together.
    #[error("the key's checksum does not match")]
    Checksum,
}

/// The operating system's random number generator failed; no key or token was made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct GenerateError(#[source] pub(crate) getrandom::Error);

impl ApiKey {
    /// Makes a new key from the operating system's CSPRNG (`getrandom`).
    ///
    /// # Errors
    /// [`GenerateError`] when the OS refuses randomness, which in practice only happens very
    /// early in boot or inside a broken sandbox.
    pub fn generate() -> Result<Self, GenerateError> {
        Self::generate_with(getrandom::fill).map_err(GenerateError)
    }

    /// Makes a new key, drawing random bytes from `fill`.
    ///
    /// `fill` must fill its whole argument with uniformly random bytes from a CSPRNG; this exists
    /// for services that bring their own generator, and for tests. Characters are drawn without
    /// bias: a byte is used only if it falls below the largest multiple of the alphabet's size,
    /// so `byte % 62` never favours the first eight characters.
    ///
    /// # Errors
    /// Whatever `fill` returns.
    pub fn generate_with<E>(fill: impl FnMut(&mut [u8]) -> Result<(), E>) -> Result<Self, E> {
        // Zeroed on drop, so a half-made key that fails does not linger either.
        let mut key = ApiKey {
            bytes: [0; KEY_LEN],
        };
        let mut draw = Sampler::new(fill);
        let (marker, rest) = key.bytes.split_at_mut(MARKER.len());
        marker.copy_from_slice(MARKER.as_bytes());
        let (prefix, rest) = rest.split_at_mut(DISPLAY_PREFIX_LEN - MARKER.len());
        draw.fill_from(HEX_ALPHABET, prefix)?;
        rest[0] = SEPARATOR;
        draw.fill_from(
            BASE62_ALPHABET,
            &mut rest[1..CHECKED_LEN - DISPLAY_PREFIX_LEN],
        )?;
        let sum = checksum(&key.bytes[..CHECKED_LEN]);
        key.bytes[CHECKED_LEN..].copy_from_slice(&sum);
        Ok(key)
    }

    /// Checks that `input` is a well-formed key with a valid checksum.
    ///
    /// No storage is needed to reject a mistyped or made-up key: that is the point of the
    /// checksum. Nothing is allocated.
    ///
    /// # Errors
    /// A [`ParseError`] naming the first rule the input breaks, in this order: length, marker,
    /// prefix, separator, alphabet, checksum.
    ///
    /// ```
    /// use agentvista_keys::{ApiKey, ParseError};
    ///
    /// assert_eq!(ApiKey::parse("av_1234").err(), Some(ParseError::Length { found: 7 }));
    /// ```
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let bytes = input.as_bytes();
        let Ok(bytes) = <&[u8; KEY_LEN]>::try_from(bytes) else {
            return Err(ParseError::Length { found: bytes.len() });
        };
        if !bytes.starts_with(MARKER.as_bytes()) {
            return Err(ParseError::Marker);
        }
        let prefix = &bytes[MARKER.len()..DISPLAY_PREFIX_LEN];
        if let Some(i) = prefix.iter().position(|b| !HEX_ALPHABET.contains(b)) {
            return Err(ParseError::Prefix {
                position: MARKER.len() + i,
            });
        }
        if bytes[DISPLAY_PREFIX_LEN] != SEPARATOR {
            return Err(ParseError::Separator);
        }
        let body = &bytes[DISPLAY_PREFIX_LEN + 1..];
        if let Some(i) = body.iter().position(|b| !b.is_ascii_alphanumeric()) {
            return Err(ParseError::Alphabet {
                position: DISPLAY_PREFIX_LEN + 1 + i,
            });
        }
        if checksum(&bytes[..CHECKED_LEN]) != bytes[CHECKED_LEN..] {
            return Err(ParseError::Checksum);
        }
        Ok(ApiKey { bytes: *bytes })
    }

    /// The public prefix, `av_` + 8 hex characters: safe to show, log and store.
    #[must_use]
    pub fn prefix(&self) -> KeyPrefix {
        let mut prefix = [0; DISPLAY_PREFIX_LEN];
        prefix.copy_from_slice(&self.bytes[..DISPLAY_PREFIX_LEN]);
        KeyPrefix::from_checked(prefix)
    }

    /// SHA-256 of the whole key: the only form in which a key is stored.
    ///
    /// A plain hash is enough (no salt, no slow KDF) because the secret carries ~190 bits of
    /// entropy; there is no dictionary to attack.
    #[must_use]
    pub fn hash(&self) -> KeyHash {
        KeyHash::from_bytes(Sha256::digest(self.bytes).into())
    }

    /// The full key as text. Call it only to hand the key to its owner, once, at creation.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        ascii_str(&self.bytes)
    }

    /// The six checksum characters at the end of the key (not secret: they are derived from it,
    /// but reveal nothing useful about it on their own).
    #[must_use]
    pub fn checksum(&self) -> &str {
        ascii_str(&self.bytes[KEY_LEN - CHECKSUM_LEN..])
    }
}

impl Drop for ApiKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("prefix", &self.prefix().as_str())
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_[REDACTED]", self.prefix())
    }
}

impl FromStr for ApiKey {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Random bytes fetched per call to the generator: one call covers a whole key almost always
/// (40 characters, 3% of base62 draws rejected).
const SAMPLER_BUF_LEN: usize = 64;

/// Draws characters from an alphabet without modulo bias, refilling its buffer from `fill`.
pub(crate) struct Sampler<F> {
    fill: F,
    buf: Zeroizing<[u8; SAMPLER_BUF_LEN]>,
    next: usize,
}

impl<E, F: FnMut(&mut [u8]) -> Result<(), E>> Sampler<F> {
    pub(crate) fn new(fill: F) -> Self {
        Sampler {
            fill,
            buf: Zeroizing::new([0; SAMPLER_BUF_LEN]),
            // Empty: the first draw fills the buffer.
            next: SAMPLER_BUF_LEN,
        }
    }

    pub(crate) fn fill_from(&mut self, alphabet: &[u8], out: &mut [u8]) -> Result<(), E> {
        let size = alphabet.len();
        // Bytes at or above the last whole multiple of `size` would make the first
        // `256 % size` characters more likely; they are skipped.
        let limit = 256 - 256 % size;
        for slot in out.iter_mut() {
            let byte = loop {
                if self.next == self.buf.len() {
                    (self.fill)(&mut self.buf[..])?;
                    self.next = 0;
                }
                let byte = usize::from(self.buf[self.next]);
                self.next += 1;
                if byte < limit {
                    break byte;
                }
            };
            *slot = alphabet[byte % size];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_bytes_are_skipped_not_folded_into_the_alphabet() {
        let mut calls = 0u8;
        let key = ApiKey::generate_with(|buf: &mut [u8]| {
            // First buffer: all 255 (a valid hex draw, a rejected base62 draw); then 0, 1, 2, …
            for (i, b) in buf.iter_mut().enumerate() {
                *b = if calls == 0 { 255 } else { i as u8 };
            }
            calls += 1;
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(
            &key.expose_secret()[..44],
            "av_ffffffff_0123456789ABCDEFGHIJKLMNOPQRSTUV"
        );
        assert_eq!(calls, 2);
    }

    #[test]
    fn a_failing_generator_makes_no_key() {
        let result = ApiKey::generate_with(|_: &mut [u8]| Err("no entropy"));
        assert_eq!(result.err(), Some("no entropy"));
    }

    #[test]
    fn generated_key_has_the_contract_shape() {
        let key = ApiKey::generate().unwrap();
        let s = key.expose_secret();
        assert_eq!(s.len(), 50);
        assert!(s.starts_with("av_"));
        assert!(
            s[3..11]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(&s[11..12], "_");
        assert!(s[12..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
