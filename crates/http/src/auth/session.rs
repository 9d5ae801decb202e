//! The `av_session` cookie and the CSRF header. The tokens themselves are types of
//! `agentvista_keys::session`, whose `Debug` prints no secret.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};

/// The session cookie's name, as the contract fixes it.
pub const SESSION_COOKIE: &str = "av_session";

/// The header that must echo the session's CSRF token on unsafe methods.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

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
