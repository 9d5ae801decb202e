//! [`InvitationToken`]: the one-time secret of an invitation link, and the [`InvitationHash`]
//! storage keeps of it.
//!
//! A token is `avinv_` and 32 base62 characters from the OS CSPRNG (about 190 bits), so, as
//! with API keys, a plain SHA-256 is enough to store it.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::GenerateError;
use crate::format::BASE62_ALPHABET;
use crate::key::Sampler;

/// What every invitation token starts with: it tells a reader (and a secret scanner) what
/// the string is.
pub const INVITATION_MARKER: &str = "avinv_";

/// Base62 characters after the marker.
pub const INVITATION_SECRET_LEN: usize = 32;

/// An invitation's token: whoever holds it may join the account as the invited e-mail.
///
/// ```
/// use agentvista_keys::InvitationToken;
///
/// let token = InvitationToken::generate()?;
/// let link = token.expose_secret().to_owned();
/// assert!(link.starts_with("avinv_") && link.len() == 38);
/// assert_eq!(InvitationToken::presented(&link).hash(), token.hash());
/// assert!(!format!("{token:?} {:?}", token.hash()).contains(&link[6..14]));
/// # Ok::<(), agentvista_keys::GenerateError>(())
/// ```
pub struct InvitationToken(Zeroizing<String>);

impl InvitationToken {
    /// A new token from the OS CSPRNG.
    ///
    /// # Errors
    /// [`GenerateError`] when the OS refuses randomness.
    pub fn generate() -> Result<Self, GenerateError> {
        let mut secret = Zeroizing::new([0u8; INVITATION_SECRET_LEN]);
        Sampler::new(getrandom::fill)
            .fill_from(BASE62_ALPHABET, &mut secret[..])
            .map_err(GenerateError)?;
        let mut token = Zeroizing::new(String::with_capacity(
            INVITATION_MARKER.len() + INVITATION_SECRET_LEN,
        ));
        token.push_str(INVITATION_MARKER);
        token.extend(secret.iter().map(|&b| char::from(b)));
        Ok(InvitationToken(token))
    }

    /// The token a request presented. It is not checked: only its hash is looked up, and an
    /// unknown one finds no invitation.
    #[must_use]
    pub fn presented(value: &str) -> Self {
        InvitationToken(Zeroizing::new(value.to_owned()))
    }

    /// What storage keeps: the token's SHA-256.
    #[must_use]
    pub fn hash(&self) -> InvitationHash {
        InvitationHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The token itself, for the link shown once. Keep the places that call this few.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InvitationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InvitationToken([REDACTED])")
    }
}

/// SHA-256 of an [`InvitationToken`]: the form in which invitations are stored and found.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InvitationHash([u8; 32]);

impl InvitationHash {
    /// The digest's bytes, for storage.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for InvitationHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InvitationHash([REDACTED])")
    }
}

/// Whether `candidate` starts with something shaped like an invitation token.
pub(crate) fn token_shaped(candidate: &[u8]) -> bool {
    let len = INVITATION_MARKER.len() + INVITATION_SECRET_LEN;
    candidate.len() >= len
        && candidate.starts_with(INVITATION_MARKER.as_bytes())
        && candidate[INVITATION_MARKER.len()..len]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_base62_and_shaped_as_the_redactor_expects() {
        let a = InvitationToken::generate().unwrap();
        let b = InvitationToken::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.hash(), b.hash());
        assert!(token_shaped(a.expose_secret().as_bytes()));
        assert!(!token_shaped(b"avinv_short"));
        assert!(!token_shaped(b"av_0123abcd_x"));
    }
}
