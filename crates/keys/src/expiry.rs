//! [`Expiry`] and [`KeyStatus`]: a key's life in time. The caller passes `now`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// When a key stops working, if ever.
///
/// ```
/// use agentvista_keys::Expiry;
/// use chrono::{TimeZone, Utc};
///
/// let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
/// let expiry = Expiry::for_new_key(Some(now + chrono::Duration::days(30)), now)?;
/// assert!(!expiry.is_expired(now));
/// assert!(Expiry::for_new_key(Some(now), now).is_err());
/// # Ok::<(), agentvista_keys::ExpiryInPast>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Expiry(Option<DateTime<Utc>>);

/// A requested expiry that is not in the future.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expires_at must be in the future")]
pub struct ExpiryInPast;

impl Expiry {
    /// A key that never expires.
    pub const NEVER: Expiry = Expiry(None);

    /// Wraps a stored expiry time as it is, past or not.
    #[must_use]
    pub const fn at(expires_at: Option<DateTime<Utc>>) -> Self {
        Expiry(expires_at)
    }

    /// Checks the expiry requested for a key created at `now`.
    ///
    /// # Errors
    /// [`ExpiryInPast`] when the time is not after `now`: such a key would be dead on arrival.
    pub fn for_new_key(
        requested: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, ExpiryInPast> {
        match requested {
            Some(at) if at <= now => Err(ExpiryInPast),
            _ => Ok(Expiry(requested)),
        }
    }

    /// The expiry time, `None` for never.
    #[must_use]
    pub const fn expires_at(self) -> Option<DateTime<Utc>> {
        self.0
    }

    /// Whether the key has expired at `now`. A key expires at its `expires_at` instant exactly.
    #[must_use]
    pub fn is_expired(self, now: DateTime<Utc>) -> bool {
        self.0.is_some_and(|at| now >= at)
    }
}

/// What a stored key's dates say about it at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// The key authenticates.
    Active,
    /// Past its expiry time.
    Expired,
    /// Revoked by a person or the API; this wins over expiry.
    Revoked,
}

impl KeyStatus {
    /// The status at `now` of a key that expires at `expiry` and was revoked at `revoked_at`.
    ///
    /// A revocation takes effect at once, whatever time it carries: a row that says revoked
    /// is revoked.
    #[must_use]
    pub fn at(expiry: Expiry, revoked_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        if revoked_at.is_some() {
            KeyStatus::Revoked
        } else if expiry.is_expired(now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    /// Whether a key in this status may authenticate.
    #[must_use]
    pub const fn is_active(self) -> bool {
        matches!(self, KeyStatus::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_key_expires_at_its_expiry_instant_not_a_moment_later() {
        let expiry = Expiry::at(Some(noon()));
        assert!(!expiry.is_expired(noon() - Duration::nanoseconds(1)));
        assert!(expiry.is_expired(noon()));
        assert!(!Expiry::NEVER.is_expired(noon()));
    }

    #[test]
    fn new_keys_cannot_be_born_expired() {
        assert_eq!(Expiry::for_new_key(Some(noon()), noon()), Err(ExpiryInPast));
        assert_eq!(
            Expiry::for_new_key(Some(noon() - Duration::days(1)), noon()),
            Err(ExpiryInPast)
        );
        assert_eq!(Expiry::for_new_key(None, noon()), Ok(Expiry::NEVER));
        let later = Some(noon() + Duration::seconds(1));
        assert_eq!(Expiry::for_new_key(later, noon()), Ok(Expiry::at(later)));
    }

    #[test]
    fn revocation_wins_over_expiry_and_activity() {
        let past = Expiry::at(Some(noon() - Duration::days(1)));
        let future = Expiry::at(Some(noon() + Duration::days(1)));
        let revoked = Some(noon() + Duration::days(5));
        assert_eq!(KeyStatus::at(past, revoked, noon()), KeyStatus::Revoked);
        assert_eq!(KeyStatus::at(future, revoked, noon()), KeyStatus::Revoked);
        assert_eq!(KeyStatus::at(past, None, noon()), KeyStatus::Expired);
        assert_eq!(KeyStatus::at(future, None, noon()), KeyStatus::Active);
        assert!(KeyStatus::Active.is_active());
        assert!(!KeyStatus::Expired.is_active());
    }

    #[test]
    fn expiry_serializes_as_a_nullable_timestamp() {
        assert_eq!(serde_json::to_string(&Expiry::NEVER).unwrap(), "null");
        let json = serde_json::to_string(&Expiry::at(Some(noon()))).unwrap();
        assert_eq!(json, "\"2026-11-27T12:00:00Z\"");
        assert_eq!(
            serde_json::to_string(&KeyStatus::Revoked).unwrap(),
            "\"revoked\""
        );
    }
}
