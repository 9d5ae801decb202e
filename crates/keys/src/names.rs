//! [`KeyName`] and [`AccountName`]: what people call their keys and their accounts.
//!
//! Each has one rule, applied wherever a name comes in — the API, the dashboard (through the
//! API), the command line — so that a name the CLI accepts is one the API would accept too.
//! Surrounding whitespace is dropped before the rule is checked, and the trimmed name is
//! what is kept. Lengths count characters (Unicode scalar values), not bytes, so a name in
//! any script has the same room.

use std::fmt;
use std::str::FromStr;

/// The trimmed `input`, if it has 1 to `max` characters.
fn trimmed_within(input: &str, max: usize) -> Option<&str> {
    let name = input.trim();
    // `nth(max)` stops after `max + 1` characters: a megabyte of name costs no more than
    // one that is just too long.
    (!name.is_empty() && name.chars().nth(max).is_none()).then_some(name)
}

/// The human name of an API key, e.g. `production`: 1 to [`KeyName::MAX_CHARS`] characters
/// once surrounding whitespace is trimmed.
///
/// ```
/// use agentvista_keys::KeyName;
///
/// let name = KeyName::parse("  production ")?;
/// assert_eq!(name.as_str(), "production");
/// assert_eq!(name.to_string(), "production");
/// assert!(KeyName::parse("   ").is_err());
/// assert!("n".repeat(101).parse::<KeyName>().is_err());
/// assert!(KeyName::try_from("n".repeat(100).as_str()).is_ok());
/// # Ok::<(), agentvista_keys::KeyNameError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyName(String);

/// A key name that is empty (or only whitespace) or longer than [`KeyName::MAX_CHARS`]
/// characters. The message states the rule, for the edge to prefix with its field name.
///
/// ```
/// use agentvista_keys::{KeyName, KeyNameError};
///
/// assert_eq!(KeyName::parse(""), Err(KeyNameError));
/// assert_eq!(KeyNameError.to_string(), "needs 1 to 100 characters");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("needs 1 to {} characters", KeyName::MAX_CHARS)]
pub struct KeyNameError;

impl KeyName {
    /// The longest key name, in characters after trimming.
    ///
    /// ```
    /// assert_eq!(agentvista_keys::KeyName::MAX_CHARS, 100);
    /// ```
    pub const MAX_CHARS: usize = 100;

    /// Trims `input` and checks it has 1 to [`KeyName::MAX_CHARS`] characters.
    ///
    /// ```
    /// use agentvista_keys::KeyName;
    ///
    /// assert_eq!(KeyName::parse("\tci\n")?.as_str(), "ci");
    /// # Ok::<(), agentvista_keys::KeyNameError>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyNameError`] when nothing is left after trimming, or too much is.
    pub fn parse(input: &str) -> Result<Self, KeyNameError> {
        trimmed_within(input, Self::MAX_CHARS)
            .map(|name| KeyName(name.to_owned()))
            .ok_or(KeyNameError)
    }

    /// The name, trimmed.
    ///
    /// ```
    /// # use agentvista_keys::KeyName;
    /// assert_eq!(KeyName::parse(" ci ")?.as_str(), "ci");
    /// # Ok::<(), agentvista_keys::KeyNameError>(())
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KeyName {
    type Err = KeyNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for KeyName {
    type Error = KeyNameError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

/// The name of an account (the tenant that owns users, keys and events), e.g. `Acme`: 1 to
/// [`AccountName::MAX_CHARS`] characters once surrounding whitespace is trimmed. Account
/// names are unique, compared exactly as kept (case matters).
///
/// ```
/// use agentvista_keys::AccountName;
///
/// let name = AccountName::parse(" Acme ")?;
/// assert_eq!(name.as_str(), "Acme");
/// assert_eq!(name.to_string(), "Acme");
/// assert!(AccountName::parse("").is_err());
/// assert!("a".repeat(101).parse::<AccountName>().is_err());
/// assert!(AccountName::try_from("ada@example.com").is_ok());
/// # Ok::<(), agentvista_keys::AccountNameError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccountName(String);

/// An account name that is empty (or only whitespace) or longer than
/// [`AccountName::MAX_CHARS`] characters. The message states the rule, for the edge to
/// prefix with its field name.
///
/// ```
/// use agentvista_keys::{AccountName, AccountNameError};
///
/// assert_eq!(AccountName::parse(" "), Err(AccountNameError));
/// assert_eq!(AccountNameError.to_string(), "needs 1 to 100 characters");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("needs 1 to {} characters", AccountName::MAX_CHARS)]
pub struct AccountNameError;

impl AccountName {
    /// The longest account name, in characters after trimming.
    ///
    /// ```
    /// assert_eq!(agentvista_keys::AccountName::MAX_CHARS, 100);
    /// ```
    pub const MAX_CHARS: usize = 100;

    /// Trims `input` and checks it has 1 to [`AccountName::MAX_CHARS`] characters.
    ///
    /// ```
    /// use agentvista_keys::AccountName;
    ///
    /// assert_eq!(AccountName::parse("Acme\n")?.as_str(), "Acme");
    /// # Ok::<(), agentvista_keys::AccountNameError>(())
    /// ```
    ///
    /// # Errors
    /// [`AccountNameError`] when nothing is left after trimming, or too much is.
    pub fn parse(input: &str) -> Result<Self, AccountNameError> {
        trimmed_within(input, Self::MAX_CHARS)
            .map(|name| AccountName(name.to_owned()))
            .ok_or(AccountNameError)
    }

    /// The name, trimmed.
    ///
    /// ```
    /// # use agentvista_keys::AccountName;
    /// assert_eq!(AccountName::parse(" Acme ")?.as_str(), "Acme");
    /// # Ok::<(), agentvista_keys::AccountNameError>(())
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AccountName {
    type Err = AccountNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for AccountName {
    type Error = AccountNameError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_trimmed_and_hold_1_to_100_characters() {
        assert_eq!(KeyName::parse(" \t ci \r\n").unwrap().as_str(), "ci");
        assert_eq!(
            KeyName::parse("a b").unwrap().as_str(),
            "a b",
            "inner spaces stay"
        );
        let longest = "n".repeat(100);
        assert_eq!(KeyName::parse(&longest).unwrap().as_str(), longest);
        let padded = format!("  {longest}  ");
        assert_eq!(
            KeyName::parse(&padded).unwrap().as_str(),
            longest,
            "whitespace around the name does not count"
        );
        for bad in [
            String::new(),
            " ".into(),
            "\t\n\u{3000}".into(),
            "n".repeat(101),
        ] {
            assert_eq!(KeyName::parse(&bad), Err(KeyNameError), "{bad:?}");
        }
    }

    #[test]
    fn names_count_characters_not_bytes() {
        // 100 four-byte characters: 400 bytes, still 100 characters.
        let wide = "🔑".repeat(100);
        assert!(KeyName::parse(&wide).is_ok());
        assert!(AccountName::parse(&wide).is_ok());
        let wider = "é".repeat(101);
        assert!(KeyName::parse(&wider).is_err());
        assert!(AccountName::parse(&wider).is_err());
    }

    #[test]
    fn account_names_are_trimmed_and_hold_1_to_100_characters() {
        assert_eq!(AccountName::parse("  Acme ").unwrap().as_str(), "Acme");
        assert_eq!(AccountName::parse("Acme").unwrap().to_string(), "Acme");
        assert!(AccountName::parse(&"a".repeat(100)).is_ok());
        for bad in [String::new(), "  ".into(), "a".repeat(101)] {
            assert_eq!(AccountName::parse(&bad), Err(AccountNameError), "{bad:?}");
        }
    }

    #[test]
    fn every_constructor_applies_the_same_rule() {
        for input in ["", " x ", &"x".repeat(101)] {
            assert_eq!(input.parse::<KeyName>(), KeyName::parse(input));
            assert_eq!(KeyName::try_from(input), KeyName::parse(input));
            assert_eq!(input.parse::<AccountName>(), AccountName::parse(input));
            assert_eq!(AccountName::try_from(input), AccountName::parse(input));
        }
    }

    #[test]
    fn errors_state_the_rule_for_the_caller_to_prefix() {
        assert_eq!(KeyNameError.to_string(), "needs 1 to 100 characters");
        assert_eq!(AccountNameError.to_string(), "needs 1 to 100 characters");
    }
}
