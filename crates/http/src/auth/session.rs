//! Session tokens and the `av_session` cookie.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name (contract §3).
pub const SESSION_COOKIE: &str = "av_session";

/// The header that must echo the session's CSRF token on unsafe methods.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// A fresh random token: 32 bytes from the OS CSPRNG, as 64 hex characters.
pub(crate) fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// What the database keeps of a session token: its SHA-256, so a leaked table opens nothing.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time comparison of a presented CSRF token with the session's.
pub(crate) fn csrf_matches(presented: &[u8], expected: &str) -> bool {
    presented.ct_eq(expected.as_bytes()).into()
}

/// The `Set-Cookie` for a new session (`max_age_secs`), or for removing it (0).
pub(crate) fn session_cookie(value: String, max_age_secs: i64, secure: bool) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}
