//! The client's address behind reverse proxies: `X-Forwarded-For` is believed only when the
//! connection comes from a proxy the configuration names (`server.trusted_proxies`), and then
//! only as far as the chain of named proxies goes. Anyone can send the header; believing it
//! from anyone would let a client pick the address its login attempts are throttled under.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The header a proxy appends the address of its client to.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed: addresses and networks. Empty by default:
/// the client is then the connection's peer, whatever the headers say.
///
/// ```
/// use agentvista_http::TrustedProxies;
/// let proxies: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse().unwrap();
/// assert!(proxies.trusts("10.1.2.3".parse().unwrap()));
/// assert!(!proxies.trusts("192.0.2.1".parse().unwrap()));
/// // The client is the last address the trusted chain saw.
/// let client = proxies.client(
///     "10.0.0.5".parse().unwrap(),
///     ["198.51.100.7, 192.0.2.9, 10.0.0.9"].into_iter(),
/// );
/// assert_eq!(client, "192.0.2.9".parse::<std::net::IpAddr>().unwrap());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A `server.trusted_proxies` entry that is neither an address nor a network.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or network (such as 10.0.0.1 or 10.0.0.0/8)")]
pub struct BadProxy(String);

impl TrustedProxies {
    /// Proxies from entries such as `10.0.0.1` or `10.0.0.0/8`.
    ///
    /// # Errors
    /// [`BadProxy`] naming the first entry that is neither.
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, BadProxy> {
        entries
            .into_iter()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BadProxy(entry.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether no proxy is trusted (the default).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `address` is one of the proxies.
    #[must_use]
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client of a connection from `peer` that carried these `X-Forwarded-For` header
    /// values (in the order received): walking the addresses from the nearest hop back, the
    /// first that is not a trusted proxy. An entry that is not an address ends the walk at the
    /// hop that added it (it is not a proxy's doing); a chain of trusted proxies only gives its
    /// first address.
    #[must_use]
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        // A server bound to `[::]` sees an IPv4 client as `::ffff:a.b.c.d`.
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(address) = parse_hop(hop) else {
                return client;
            };
            client = address;
            if !self.trusts(address) {
                return address;
            }
        }
        client
    }

    /// The client of `req`: see [`TrustedProxies::client`]. `None` only without a peer
    /// address (a test request).
    #[must_use]
    pub fn client_of(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        let values = req
            .headers()
            .get_all(FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok());
        Some(self.client(peer, values))
    }
}

impl FromStr for TrustedProxies {
    type Err = BadProxy;

    /// Entries separated by commas.
    fn from_str(text: &str) -> Result<Self, BadProxy> {
        TrustedProxies::new(text.split(','))
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`192.0.2.1:443`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|a| a.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_peer_that_is_not_a_proxy_is_the_client_whatever_it_forwards() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            proxies.client(ip("192.0.2.1"), ["203.0.113.9"].into_iter()),
            ip("192.0.2.1")
        );
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.0.0.1"), ["203.0.113.9"].into_iter()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop_from_the_right() {
        let proxies: TrustedProxies = "10.0.0.0/8, 2001:db8::/32".parse().unwrap();
        // The client spoofs an address in front; the proxies append the real one.
        let headers = ["6.6.6.6, 198.51.100.7", "10.0.0.3"];
        assert_eq!(
            proxies.client(ip("10.0.0.1"), headers.into_iter()),
            ip("198.51.100.7")
        );
        assert_eq!(
            proxies.client(
                ip("2001:db8::1"),
                ["[2001:db8::2]:443, 192.0.2.4:5555"].into_iter()
            ),
            ip("192.0.2.4")
        );
        // IPv4 seen as IPv6 by a dual-stack socket is the same address.
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.1"), ["192.0.2.8"].into_iter()),
            ip("192.0.2.8")
        );
    }

    #[test]
    fn garbage_or_an_all_proxy_chain_gives_the_nearest_believable_hop() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            proxies.client(ip("10.0.0.1"), ["unknown, 10.0.0.2"].into_iter()),
            ip("10.0.0.2")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), ["10.0.0.7, 10.0.0.2"].into_iter()),
            ip("10.0.0.7")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), std::iter::empty()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn entries_are_addresses_or_networks() {
        assert!(
            "10.0.0.1, ::1, 192.168.0.0/16"
                .parse::<TrustedProxies>()
                .is_ok()
        );
        assert_eq!(
            "".parse::<TrustedProxies>().unwrap(),
            TrustedProxies::default()
        );
        let err = "10.0.0.1, proxy.local"
            .parse::<TrustedProxies>()
            .unwrap_err();
        assert!(err.to_string().contains("proxy.local"), "{err}");
    }

    #[test]
    fn an_ipv4_mapped_peer_is_its_ipv4_address() {
        let none = TrustedProxies::default();
        let mapped: IpAddr = std::net::Ipv4Addr::new(198, 51, 100, 7)
            .to_ipv6_mapped()
            .into();
        assert_eq!(
            none.client(mapped, std::iter::empty()),
            IpAddr::from([198, 51, 100, 7])
        );
    }
}
