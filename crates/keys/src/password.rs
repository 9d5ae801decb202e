//! Dashboard passwords: [`Password`] (the plaintext) and [`PasswordHash`] (the argon2id PHC
//! string that is stored), both redacted in `Debug`, and the hashing that turns one into the
//! other with the `argon2` crate's defaults (OWASP's 19 MiB, 2 passes).
//!
//! Here rather than in the HTTP layer so that the command line hashes a new user's password
//! without depending on actix-web. How many hashes may run at once is request policy and stays
//! with the HTTP layer's throttles.

use std::fmt;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// Fewest characters a new password may have (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most bytes a password may have: argon2 takes any length, but a login body should not.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password as typed, zeroed on drop; `Debug` prints no character of it.
///
/// It deserialises from a JSON string, so request bodies hold one without an intermediate
/// `String` that a `Debug` derive could print. [`Password::expose_secret`] is the one door
/// to the plaintext.
///
/// ```
/// use agentvista_keys::password::Password;
///
/// let password = Password::new("correct horse battery".to_owned());
/// assert!(!format!("{password:?}").contains("horse"));
/// ```
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password read from a person.
    #[must_use]
    pub fn new(plaintext: String) -> Self {
        Password(Zeroizing::new(plaintext))
    }

    /// The plaintext. Every use is a place where the password could leak: keep them few.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Password::new)
    }
}

/// A password's argon2id hash as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`), as
/// stored. Not the password, but enough to guess it offline, so `Debug` prints none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// A hash read back from storage. Nothing is checked here: a malformed string simply
    /// never verifies.
    #[must_use]
    pub fn from_phc(phc: String) -> Self {
        PasswordHash(phc)
    }

    /// The PHC string, to store.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([REDACTED])")
    }
}

/// A password that cannot be used, or a hashing failure. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_CHARS`] or longer than [`MAX_PASSWORD_BYTES`]. The HTTP
    /// layer answers it as 400 `bad_request`.
    #[error("a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} characters")]
    Length,
    /// The hasher failed (out of memory, no randomness for the salt). The HTTP layer answers
    /// it as 400 `bad_request` too, naming the password field, as it always has.
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// Hashes a new password, after checking it against the length policy.
///
/// Slow on purpose (tens of milliseconds): call it off the async executor.
///
/// # Errors
/// [`PasswordError::Length`] for a password outside the policy, or a hashing failure.
pub fn hash_password(password: &Password) -> Result<PasswordHash, PasswordError> {
    let password = password.expose_secret();
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Length);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| PasswordHash(hash.to_string()))
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `hash`. A malformed hash never matches.
///
/// As slow as [`hash_password`]: call it off the async executor.
#[must_use]
pub fn verify_password(password: &Password, hash: &PasswordHash) -> bool {
    let password = password.expose_secret();
    password.len() <= MAX_PASSWORD_BYTES
        && Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(plaintext: &str) -> Password {
        Password::new(plaintext.to_owned())
    }

    #[test]
    fn a_hashed_password_verifies_and_others_do_not() {
        let hash = hash_password(&password("correct horse battery")).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(verify_password(&password("correct horse battery"), &hash));
        assert!(!verify_password(&password("correct horse batterY"), &hash));
        let garbage = PasswordHash::from_phc("not a hash".to_owned());
        assert!(!verify_password(
            &password("correct horse battery"),
            &garbage
        ));
    }

    #[test]
    fn short_and_overlong_passwords_are_refused() {
        assert!(matches!(
            hash_password(&password("1234567")),
            Err(PasswordError::Length)
        ));
        assert!(matches!(
            hash_password(&password(&"x".repeat(1025))),
            Err(PasswordError::Length)
        ));
    }

    #[test]
    fn debug_shows_neither_the_password_nor_its_hash() {
        let plaintext = "correct horse battery";
        let secret = password(plaintext);
        let hash = hash_password(&secret).unwrap();
        // `$argon2id$v=19$m=…,t=…,p=…$<salt>$<digest>`
        let parts: Vec<&str> = hash.as_str().split('$').collect();
        let (salt, digest) = (parts[4], parts[5]);
        for shown in [format!("{secret:?}"), format!("{hash:?}")] {
            assert!(!shown.contains("horse"), "{shown}");
            assert!(!shown.contains(salt) && !shown.contains(digest), "{shown}");
            assert!(!shown.contains("argon2"), "{shown}");
        }
    }

    #[test]
    fn a_password_deserialises_from_a_json_string() {
        let parsed: Password = serde_json::from_str(r#""correct horse battery""#).unwrap();
        assert_eq!(parsed.expose_secret(), "correct horse battery");
    }
}
