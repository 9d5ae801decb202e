//! [`RateLimit`]: a key's own request rate, as GCRA parameters (a sustained rate and a burst).

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// A key's own rate limit: `burst` requests back to back, then `per_second` a second on
/// average — the parameters of the generic cell rate algorithm (GCRA), which is a token bucket
/// of `burst` tokens refilled at `per_second` without a timer per key.
///
/// Both are whole numbers from 1 to [`RateLimit::MAX`]; serde reads and writes
/// `{"per_second": 10, "burst": 20}` and checks the bounds, a missing `burst` meaning
/// `per_second`.
///
/// ```
/// use agentvista_keys::RateLimit;
///
/// let limit = RateLimit::new(10, 20)?;
/// assert_eq!((limit.per_second().get(), limit.burst().get()), (10, 20));
/// assert!(RateLimit::new(0, 5).is_err());
///
/// let read: RateLimit = serde_json::from_str(r#"{"per_second": 5}"#).unwrap();
/// assert_eq!(read, RateLimit::new(5, 5)?);
/// assert!(serde_json::from_str::<RateLimit>(r#"{"per_second": 5, "burst": 0}"#).is_err());
/// # Ok::<(), agentvista_keys::RateLimitError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RateLimitFields", into = "RateLimitFields")]
pub struct RateLimit {
    per_second: NonZeroU32,
    burst: NonZeroU32,
}

/// A rate limit outside its bounds; the message names the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// `per_second` is 0 or above [`RateLimit::MAX`].
    #[error("rate_limit.per_second: must be 1 to {}", RateLimit::MAX)]
    PerSecond,
    /// `burst` is 0 or above [`RateLimit::MAX`].
    #[error("rate_limit.burst: must be 1 to {}", RateLimit::MAX)]
    Burst,
}

impl RateLimit {
    /// The largest rate and burst a key may be given: far above what one replica serves, so
    /// the bound only keeps the arithmetic of the limiter and of the headers small.
    pub const MAX: u32 = 1_000_000;

    /// A limit of `per_second` on average and `burst` back to back.
    ///
    /// # Errors
    /// [`RateLimitError`] when either is 0 or above [`RateLimit::MAX`].
    pub fn new(per_second: u32, burst: u32) -> Result<Self, RateLimitError> {
        let per_second = NonZeroU32::new(per_second)
            .filter(|n| n.get() <= Self::MAX)
            .ok_or(RateLimitError::PerSecond)?;
        let burst = NonZeroU32::new(burst)
            .filter(|n| n.get() <= Self::MAX)
            .ok_or(RateLimitError::Burst)?;
        Ok(RateLimit { per_second, burst })
    }

    /// Requests a second, sustained.
    #[must_use]
    pub const fn per_second(self) -> NonZeroU32 {
        self.per_second
    }

    /// Requests allowed back to back after a quiet spell.
    #[must_use]
    pub const fn burst(self) -> NonZeroU32 {
        self.burst
    }
}

/// The wire form, checked on the way in.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFields {
    per_second: u32,
    #[serde(default)]
    burst: Option<u32>,
}

impl TryFrom<RateLimitFields> for RateLimit {
    type Error = RateLimitError;

    fn try_from(fields: RateLimitFields) -> Result<Self, Self::Error> {
        RateLimit::new(fields.per_second, fields.burst.unwrap_or(fields.per_second))
    }
}

impl From<RateLimit> for RateLimitFields {
    fn from(limit: RateLimit) -> Self {
        RateLimitFields {
            per_second: limit.per_second.get(),
            burst: Some(limit.burst.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_and_named() {
        assert!(RateLimit::new(1, 1).is_ok());
        assert!(RateLimit::new(RateLimit::MAX, RateLimit::MAX).is_ok());
        assert_eq!(RateLimit::new(0, 1), Err(RateLimitError::PerSecond));
        assert_eq!(
            RateLimit::new(RateLimit::MAX + 1, 1),
            Err(RateLimitError::PerSecond)
        );
        assert_eq!(RateLimit::new(1, 0), Err(RateLimitError::Burst));
        assert_eq!(
            RateLimit::new(1, RateLimit::MAX + 1),
            Err(RateLimitError::Burst)
        );
    }

    #[test]
    fn serde_round_trips_and_refuses_unknown_fields() {
        let limit = RateLimit::new(3, 9).unwrap();
        let text = serde_json::to_string(&limit).unwrap();
        assert_eq!(text, r#"{"per_second":3,"burst":9}"#);
        assert_eq!(serde_json::from_str::<RateLimit>(&text).unwrap(), limit);
        let err = serde_json::from_str::<RateLimit>(r#"{"per_second":3,"burts":9}"#).unwrap_err();
        assert!(err.to_string().contains("burts"), "{err}");
        let err = serde_json::from_str::<RateLimit>(r#"{"per_second":0}"#).unwrap_err();
        assert!(err.to_string().contains("rate_limit.per_second"), "{err}");
    }
}
