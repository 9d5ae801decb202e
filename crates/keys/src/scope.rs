//! [`Scope`] and [`Scopes`]: what a key may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One permission. Scopes do not imply each other: `admin` does not grant `write`.
///
/// | scope | grants |
/// | --- | --- |
/// | `write` | every ingestion endpoint |
/// | `read` | dashboard reads and the ping endpoint |
/// | `admin` | managing keys and billing settings through the API |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Dashboard reads and the ping endpoint.
    Read,
    /// Sending events: the scope an SDK needs.
    Write,
    /// Managing keys and billing settings.
    Admin,
}

/// A scope list that cannot be accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A name that is not `read`, `write` or `admin`.
    #[error("unknown scope {}: expected read, write or admin", Self::quote(.0))]
    Unknown(String),
    /// No scope at all; a key needs at least one.
    #[error("a key needs at least one scope: read, write or admin")]
    Empty,
}

impl ScopeError {
    /// Longer names are left out of the message: they are more likely a pasted secret than a
    /// misspelt scope, and error messages end up in logs.
    const MAX_ECHOED: usize = 20;

    fn quote(name: &str) -> String {
        if name.len() <= Self::MAX_ECHOED {
            format!("{name:?}")
        } else {
            format!("({} characters)", name.chars().count())
        }
    }
}

impl Scope {
    /// Every scope, in canonical order.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The scope's name as used in JSON, the CLI and `WWW-Authenticate`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    /// Exact lower-case names only, like the JSON form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| ScopeError::Unknown(s.to_owned()))
    }
}

/// A non-empty set of scopes.
///
/// Empty sets cannot be built, so "no scopes" can never be mistaken for "unrestricted".
/// Parses from `"read,write"` (the CLI form), serializes as `["read","write"]` (the API form),
/// always in the canonical order read, write, admin.
///
/// ```
/// use agentvista_keys::{Scope, Scopes};
///
/// let scopes: Scopes = "write, read".parse()?;
/// assert!(scopes.contains(Scope::Write));
/// assert!(!scopes.contains(Scope::Admin));
/// assert_eq!(scopes.to_string(), "read,write");
/// assert_eq!(serde_json::to_string(&scopes)?, r#"["read","write"]"#);
/// assert!("".parse::<Scopes>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// Exactly one scope.
    #[must_use]
    pub const fn only(scope: Scope) -> Self {
        Scopes(scope.bit())
    }

    /// Every scope: what a dashboard session acts with.
    #[must_use]
    pub const fn all() -> Self {
        Scopes(Scope::Read.bit() | Scope::Write.bit() | Scope::Admin.bit())
    }

    /// Collects scopes, ignoring repeats.
    ///
    /// # Errors
    /// [`ScopeError::Empty`] when `scopes` yields nothing.
    pub fn try_from_iter(scopes: impl IntoIterator<Item = Scope>) -> Result<Self, ScopeError> {
        let bits = scopes.into_iter().fold(0, |bits, scope| bits | scope.bit());
        if bits == 0 {
            Err(ScopeError::Empty)
        } else {
            Ok(Scopes(bits))
        }
    }

    /// This set with `scope` added.
    #[must_use]
    pub const fn with(self, scope: Scope) -> Self {
        Scopes(self.0 | scope.bit())
    }

    /// Whether `scope` is granted.
    #[must_use]
    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromStr for Scopes {
    type Err = ScopeError;

    /// A comma-separated list such as `read,write`; spaces around names are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(ScopeError::Empty);
        }
        let scopes = s
            .split(',')
            .map(|name| name.trim().parse())
            .collect::<Result<Vec<Scope>, _>>()?;
        Scopes::try_from_iter(scopes)
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let scopes = Vec::<Scope>::deserialize(deserializer)?;
        Scopes::try_from_iter(scopes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scope_names_are_rejected_by_name() {
        assert_eq!(
            "read,wrte".parse::<Scopes>(),
            Err(ScopeError::Unknown("wrte".into()))
        );
        assert_eq!(
            "READ".parse::<Scope>(),
            Err(ScopeError::Unknown("READ".into()))
        );
        assert!("read,,write".parse::<Scopes>().is_err());
        assert_eq!(
            ScopeError::Unknown("wrte".into()).to_string(),
            "unknown scope \"wrte\": expected read, write or admin"
        );
    }

    #[test]
    fn long_unknown_scope_names_are_not_echoed() {
        let pasted = "av_a1b2c3d4_0123456789abcdefghijklmnopqrstuvABCDEF";
        let message = pasted.parse::<Scopes>().unwrap_err().to_string();
        assert!(!message.contains(pasted), "{message}");
        assert!(message.contains("50 characters"), "{message}");
    }

    #[test]
    fn empty_scope_lists_are_rejected() {
        assert_eq!("".parse::<Scopes>(), Err(ScopeError::Empty));
        assert_eq!(" ".parse::<Scopes>(), Err(ScopeError::Empty));
        assert_eq!(Scopes::try_from_iter([]), Err(ScopeError::Empty));
        assert!(serde_json::from_str::<Scopes>("[]").is_err());
    }

    #[test]
    fn scopes_do_not_imply_each_other() {
        let admin = Scopes::only(Scope::Admin);
        assert!(admin.contains(Scope::Admin));
        assert!(!admin.contains(Scope::Write));
        assert!(!admin.contains(Scope::Read));
    }

    #[test]
    fn serde_round_trips_in_canonical_order_and_collapses_repeats() {
        let scopes: Scopes = serde_json::from_str(r#"["admin","read","admin"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&scopes).unwrap(),
            r#"["read","admin"]"#
        );
        assert_eq!(scopes.to_string(), "read,admin");
        assert_eq!(format!("{scopes:?}"), "{Read, Admin}");
        assert!(serde_json::from_str::<Scopes>(r#"["read","owner"]"#).is_err());
    }

    #[test]
    fn all_contains_every_scope() {
        assert!(Scope::ALL.iter().all(|s| Scopes::all().contains(*s)));
        assert_eq!(Scopes::all().to_string(), "read,write,admin");
        assert_eq!(
            Scopes::only(Scope::Read).with(Scope::Write).to_string(),
            "read,write"
        );
    }
}
