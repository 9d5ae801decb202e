//! [`RateLimitStatus`]: what a key's rate-limit bucket says, as the `RateLimit-*` headers of
//! an answer — written by the request log on answers that passed, and by the error on a 429.

/// What a key's bucket says after a request it let through: the `RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// `RateLimit-Limit`: the burst, the most requests a full bucket allows at once.
    pub limit: u32,
    /// `RateLimit-Remaining`: requests allowed right now.
    pub remaining: u32,
    /// `RateLimit-Reset`: whole seconds until the bucket is full again.
    pub reset_secs: u64,
}

impl RateLimitStatus {
    /// The three `RateLimit-*` headers (draft-ietf-httpapi-ratelimit-headers, the form the
    /// contract names), as name and value.
    #[must_use]
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", self.reset_secs.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_named_as_the_contract_names_them() {
        let status = RateLimitStatus {
            limit: 20,
            remaining: 7,
            reset_secs: 2,
        };
        let headers = status.headers();
        assert_eq!(
            headers.map(|(name, value)| format!("{name}: {value}")),
            [
                "ratelimit-limit: 20",
                "ratelimit-remaining: 7",
                "ratelimit-reset: 2"
            ]
        );
    }
}
