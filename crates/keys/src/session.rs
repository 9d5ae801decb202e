//! Dashboard session secrets: [`SessionToken`] (the `av_session` cookie's value), its
//! [`SessionTokenHash`] (what storage keeps) and the session's [`CsrfToken`]. None of them
//! prints its secret in `Debug`; the plaintext tokens are zeroed on drop.
//!
//! A token is 32 bytes from the OS CSPRNG as 64 lowercase hex characters: 256 bits, so, as
//! with API keys, a plain SHA-256 is enough to store it (there is nothing to brute-force).

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::GenerateError;

/// Random bytes in a token (shown as twice as many hex characters).
const TOKEN_BYTES: usize = 32;

/// 32 random bytes as 64 lowercase hex characters, kept in a buffer zeroed on drop.
fn random_hex() -> Result<Zeroizing<String>, GenerateError> {
    let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom::fill(&mut bytes[..]).map_err(GenerateError)?;
    Ok(Zeroizing::new(hex::encode(&bytes[..])))
}

/// The value of a session cookie: whoever holds it acts as the user.
///
/// ```
/// use agentvista_keys::session::SessionToken;
///
/// let token = SessionToken::generate()?;
/// let cookie = token.expose_secret().to_owned();
/// assert_eq!(SessionToken::presented(&cookie).hash(), token.hash());
/// assert!(!format!("{token:?} {:?}", token.hash()).contains(&cookie[..8]));
/// # Ok::<(), agentvista_keys::GenerateError>(())
/// ```
pub struct SessionToken(Zeroizing<String>);

impl SessionToken {
    /// A new token from the OS CSPRNG.
    ///
    /// # Errors
    /// [`GenerateError`] when the OS refuses randomness.
    pub fn generate() -> Result<Self, GenerateError> {
        random_hex().map(SessionToken)
    }

    /// The value a request's cookie presented. It is not checked: whatever it holds, only its
    /// hash is looked up, and an unknown one finds no session.
    #[must_use]
    pub fn presented(value: &str) -> Self {
        SessionToken(Zeroizing::new(value.to_owned()))
    }

    /// What storage keeps: the token's SHA-256, so a leaked table opens no session.
    #[must_use]
    pub fn hash(&self) -> SessionTokenHash {
        SessionTokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The token itself, for the `Set-Cookie` header. Keep the places that call this few.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([REDACTED])")
    }
}

/// SHA-256 of a [`SessionToken`], the form in which sessions are stored and found.
///
/// Not the token, but the key to a session's row, so `Debug` prints none of it. Equality runs
/// in constant time.
#[derive(Clone, Copy)]
pub struct SessionTokenHash([u8; 32]);

impl SessionTokenHash {
    /// The digest's bytes, for storage.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for SessionTokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SessionTokenHash {}

impl fmt::Debug for SessionTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionTokenHash([REDACTED])")
    }
}

/// The token a cookie-authenticated unsafe request must echo in `X-CSRF-Token`.
///
/// It is stored as it is (a page must be able to show it again), compared in constant time,
/// and never printed by `Debug`.
///
/// ```
/// use agentvista_keys::session::CsrfToken;
///
/// let csrf = CsrfToken::generate()?;
/// assert!(csrf.matches(csrf.expose_secret().as_bytes()));
/// assert!(!csrf.matches(b"guess"));
/// assert!(!format!("{csrf:?}").contains(&csrf.expose_secret()[..8]));
/// # Ok::<(), agentvista_keys::GenerateError>(())
/// ```
#[derive(Clone)]
pub struct CsrfToken(Zeroizing<String>);

impl CsrfToken {
    /// A new token from the OS CSPRNG.
    ///
    /// # Errors
    /// [`GenerateError`] when the OS refuses randomness.
    pub fn generate() -> Result<Self, GenerateError> {
        random_hex().map(CsrfToken)
    }

    /// A session's token as storage returns it.
    #[must_use]
    pub fn from_stored(token: String) -> Self {
        CsrfToken(Zeroizing::new(token))
    }

    /// Whether `presented` (the header's bytes) is this token, in constant time.
    #[must_use]
    pub fn matches(&self, presented: &[u8]) -> bool {
        presented.ct_eq(self.0.as_bytes()).into()
    }

    /// The token itself: for storage, the login answer and the page that carries it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_lowercase_hex_characters_and_differ() {
        let (a, b) = (
            SessionToken::generate().unwrap(),
            SessionToken::generate().unwrap(),
        );
        let csrf = CsrfToken::generate().unwrap();
        for token in [a.expose_secret(), b.expose_secret(), csrf.expose_secret()] {
            assert_eq!(token.len(), 64);
            assert!(
                token
                    .bytes()
                    .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            );
        }
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn a_presented_cookie_hashes_like_the_token_it_copies() {
        let token = SessionToken::generate().unwrap();
        let hash = token.hash();
        assert_eq!(SessionToken::presented(token.expose_secret()).hash(), hash);
        assert_eq!(
            hex::encode(hash.as_bytes()),
            hex::encode(Sha256::digest(token.expose_secret().as_bytes()))
        );
        assert_ne!(SessionToken::presented("other").hash(), hash);
    }

    #[test]
    fn csrf_tokens_match_only_themselves() {
        let csrf = CsrfToken::from_stored("a".repeat(64));
        assert!(csrf.matches("a".repeat(64).as_bytes()));
        assert!(!csrf.matches("a".repeat(63).as_bytes()));
        assert!(!csrf.matches(b""));
        assert!(!csrf.matches("b".repeat(64).as_bytes()));
    }

    #[test]
    fn debug_shows_no_token_and_no_hash() {
        let token = SessionToken::generate().unwrap();
        let hash = token.hash();
        let csrf = CsrfToken::generate().unwrap();
        let secrets = [
            token.expose_secret().to_owned(),
            hex::encode(hash.as_bytes()),
            csrf.expose_secret().to_owned(),
        ];
        for shown in [
            format!("{token:?}"),
            format!("{hash:?}"),
            format!("{csrf:?}"),
        ] {
            for secret in &secrets {
                // Any 8 characters in a row would already say too much.
                for window in secret.as_bytes().windows(8) {
                    let window = std::str::from_utf8(window).unwrap();
                    assert!(!shown.contains(window), "{shown} shows {window}");
                }
            }
            // Nor the bytes as a derived `Debug` would print them, in decimal.
            assert!(!shown.chars().any(|c| c.is_ascii_digit()), "{shown}");
        }
    }
}
