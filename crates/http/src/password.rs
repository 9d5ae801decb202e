//! Password hashing with argon2id (the `argon2` crate's defaults: OWASP's 19 MiB, 2 passes).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Fewest characters a new password may have (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most bytes a password may have: argon2 takes any length, but a login body should not.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that cannot be used, or a hashing failure. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_CHARS`] or longer than [`MAX_PASSWORD_BYTES`].
    #[error("a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} characters")]
    Length,
    /// The hasher failed (out of memory, no randomness for the salt).
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// Hashes a new password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
///
/// Slow on purpose (tens of milliseconds): call it off the async executor.
///
/// # Errors
/// [`PasswordError::Length`] for a password outside the policy, or a hashing failure.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Length);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
#[must_use]
pub fn verify_password(password: &str, hash: &str) -> bool {
    password.len() <= MAX_PASSWORD_BYTES
        && Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_others_do_not() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(
            hash_password("1234567"),
            Err(PasswordError::Length)
        ));
        assert!(matches!(
            hash_password(&"x".repeat(1025)),
            Err(PasswordError::Length)
        ));
    }
}
