//! [`redact_keys`]: text with every key-shaped string in it cut to its prefix, and every
//! invitation token to its marker, for logs and stored text that a client wrote (a path, a
//! report's source).

use std::borrow::Cow;

use crate::format::{DISPLAY_PREFIX_LEN, KEY_LEN, MARKER, PREFIX_HEX_LEN, SEPARATOR};

/// `text` with everything shaped like a key — `av_`, 8 lowercase hex digits, `_`, 38 letters or
/// digits, valid checksum or not (a key with a typo is a secret too) — cut to its prefix:
/// `av_0123abcd_[REDACTED]`; and every invitation token (`avinv_` and 32 letters or digits) to
/// `avinv_[REDACTED]`. Text without either is returned as it is, without a copy.
///
/// ```
/// use agentvista_keys::{ApiKey, redact_keys};
///
/// let key = ApiKey::generate()?;
/// let line = format!("GET /api/v1/traces/{}/", key.expose_secret());
/// assert_eq!(redact_keys(&line), format!("GET /api/v1/traces/{}_[REDACTED]/", key.prefix()));
/// assert_eq!(redact_keys("av_not_a_key"), "av_not_a_key");
/// let invite = format!("/invite/avinv_{}", "a".repeat(32));
/// assert_eq!(redact_keys(&invite), "/invite/avinv_[REDACTED]");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn redact_keys(text: &str) -> Cow<'_, str> {
    // What both markers start with.
    const START: &str = "av";
    if !text.contains(START) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(START) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if crate::invitation::token_shaped(tail.as_bytes()) {
            out.push_str(crate::INVITATION_MARKER);
            out.push_str("[REDACTED]");
            rest = &tail[crate::INVITATION_MARKER.len() + crate::INVITATION_SECRET_LEN..];
        } else if tail.starts_with(MARKER) && tail.get(..KEY_LEN).is_some_and(key_shaped) {
            out.push_str(&tail[..DISPLAY_PREFIX_LEN]);
            out.push_str("_[REDACTED]");
            rest = &tail[KEY_LEN..];
        } else {
            out.push_str(START);
            rest = &tail[START.len()..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn key_shaped(candidate: &str) -> bool {
    let bytes = candidate.as_bytes();
    let hex = &bytes[MARKER.len()..DISPLAY_PREFIX_LEN];
    hex.len() == PREFIX_HEX_LEN
        && hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        && bytes[DISPLAY_PREFIX_LEN] == SEPARATOR
        && bytes[DISPLAY_PREFIX_LEN + 1..]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKey;

    #[test]
    fn key_shapes_are_cut_whatever_their_checksum_and_the_rest_is_kept() {
        let key = ApiKey::generate().unwrap();
        let secret = key.expose_secret();
        let mut typo = secret.to_owned();
        typo.replace_range(20..21, if &secret[20..21] == "x" { "y" } else { "x" });
        let text = format!("a {secret} b {typo}c av_nothing é av_");
        let prefix = &secret[..DISPLAY_PREFIX_LEN];
        assert_eq!(
            redact_keys(&text),
            format!("a {prefix}_[REDACTED] b {prefix}_[REDACTED]c av_nothing é av_")
        );
        assert!(matches!(redact_keys("no key here"), Cow::Borrowed(_)));
        // Not key-shaped: uppercase hex, a short tail.
        let upper = format!("AV_{}", &secret[3..]);
        assert_eq!(redact_keys(&upper), upper);
        assert_eq!(redact_keys(&secret[..KEY_LEN - 1]), &secret[..KEY_LEN - 1]);
    }
}
