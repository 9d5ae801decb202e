//! [`Email`]: a user's e-mail address, the login of the dashboard.

use std::fmt;
use std::str::FromStr;

/// An e-mail address, normalised: trimmed, lower-cased, shaped like `local@domain.tld`.
///
/// Normalising once, here, is what makes an address case-insensitive everywhere: it is the
/// form stored in `users.email` (unique), looked up at login, and throttled by. Changing what
/// this does to an address changes which stored users can log in, so the rule must never
/// change without migrating the stored addresses.
///
/// The check is deliberately loose — a non-empty local part, an `@`, a dot in the domain, no
/// whitespace — because the address is a login name, not something mail is sent to.
///
/// ```
/// use agentvista_keys::Email;
///
/// let email = Email::parse("  Ada@Example.COM ")?;
/// assert_eq!(email.as_str(), "ada@example.com");
/// assert_eq!(email.to_string(), "ada@example.com");
/// assert!("ada@localhost".parse::<Email>().is_err());
/// assert!(Email::try_from("a da@example.com").is_err());
/// # Ok::<(), agentvista_keys::EmailError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

/// A string that is not an e-mail address. The message states the rule, for the edge to
/// prefix with its field name; it never echoes the input.
///
/// ```
/// use agentvista_keys::{Email, EmailError};
///
/// assert_eq!(Email::parse("ada"), Err(EmailError));
/// assert_eq!(EmailError.to_string(), "not an e-mail address");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an e-mail address")]
pub struct EmailError;

impl Email {
    /// The longest address, in bytes once normalised: the 256-byte SMTP path (RFC 5321)
    /// less its angle brackets. Also what bounds the login throttle's keys.
    ///
    /// ```
    /// assert_eq!(agentvista_keys::Email::MAX_BYTES, 254);
    /// ```
    pub const MAX_BYTES: usize = 254;

    /// Normalises `input` (trims it, lower-cases it) and checks the result is shaped like an
    /// address: at most [`Email::MAX_BYTES`] bytes, a non-empty part before an `@`, a `.`
    /// after it, and no whitespace anywhere.
    ///
    /// ```
    /// use agentvista_keys::Email;
    ///
    /// assert_eq!(Email::parse("BOB@example.org\n")?.as_str(), "bob@example.org");
    /// # Ok::<(), agentvista_keys::EmailError>(())
    /// ```
    ///
    /// # Errors
    /// [`EmailError`] when it is not.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let email = input.trim().to_lowercase();
        let valid = email.len() <= Self::MAX_BYTES
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !email.chars().any(char::is_whitespace);
        if valid {
            Ok(Email(email))
        } else {
            Err(EmailError)
        }
    }

    /// The normalised address.
    ///
    /// ```
    /// # use agentvista_keys::Email;
    /// assert_eq!(Email::parse("Ada@Example.com")?.as_str(), "ada@example.com");
    /// # Ok::<(), agentvista_keys::EmailError>(())
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Email {
    type Err = EmailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Email {
    type Error = EmailError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        assert_eq!(
            Email::parse("\tÉVE@Exämple.ORG\r\n").unwrap().as_str(),
            "éve@exämple.org",
            "lower-casing is Unicode's, not only ASCII's"
        );
    }

    #[test]
    fn things_that_are_not_emails_are_refused() {
        for bad in [
            "",
            "   ",
            "ada",
            "@example.com",
            "ada@localhost",
            "a da@example.com",
            "ada@exa\u{a0}mple.com",
            "ada@example.com\u{0}x y",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError), "{bad:?}");
        }
    }

    #[test]
    fn only_the_first_at_splits_local_part_and_domain() {
        // What the stored addresses were checked with: kept as it was, so they still parse.
        assert!(Email::parse("a@b@example.com").is_ok());
        assert!(
            Email::parse("a.b@c").is_err(),
            "the dot must be after the @"
        );
        assert!(Email::parse("ada@.").is_ok());
    }

    #[test]
    fn addresses_hold_at_most_254_bytes_once_lower_cased() {
        let domain = "@example.com";
        let longest = format!("{}{domain}", "a".repeat(Email::MAX_BYTES - domain.len()));
        assert_eq!(Email::parse(&longest).unwrap().as_str(), longest);
        let over = format!("a{longest}");
        assert_eq!(Email::parse(&over), Err(EmailError));
        // Whitespace around it does not count.
        assert!(Email::parse(&format!("  {longest}  ")).is_ok());
        // Lower-casing can shrink an address: the Kelvin sign (3 bytes) becomes "k" (1 byte),
        // and the length is what is left after it.
        let kelvins = format!(
            "{}{domain}",
            "\u{212a}".repeat(Email::MAX_BYTES - domain.len())
        );
        assert!(kelvins.len() > Email::MAX_BYTES);
        assert!(Email::parse(&kelvins).is_ok());
    }

    #[test]
    fn every_constructor_applies_the_same_rule() {
        for input in ["", " A@B.c ", "nope"] {
            assert_eq!(input.parse::<Email>(), Email::parse(input));
            assert_eq!(Email::try_from(input), Email::parse(input));
        }
    }
}
