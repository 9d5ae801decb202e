//! [`Origin`]: where a change to a credential came from, as the audit log keeps it.

use std::net::IpAddr;

/// The longest user agent kept (in characters); a longer one is cut.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// Where a request came from: its client's address (behind trusted proxies, the forwarded
/// one) and its `User-Agent`. Empty for the command line.
///
/// ```
/// use agentvista_keys::{MAX_USER_AGENT_CHARS, Origin};
///
/// let origin = Origin::new(Some("192.0.2.7".parse().unwrap()), Some(&"x".repeat(300)));
/// assert_eq!(origin.user_agent.unwrap().chars().count(), MAX_USER_AGENT_CHARS);
/// assert_eq!(Origin::default().client_address, None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client's address.
    pub client_address: Option<IpAddr>,
    /// The client's `User-Agent`, cut to [`MAX_USER_AGENT_CHARS`].
    pub user_agent: Option<String>,
}

impl Origin {
    /// An origin, with the user agent cut to [`MAX_USER_AGENT_CHARS`] characters.
    #[must_use]
    pub fn new(client_address: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        Origin {
            client_address,
            user_agent: user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
        }
    }
}
