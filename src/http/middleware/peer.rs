//! Where a request comes from and what it was addressed to: the client's address, read
//! through the reverse proxies named in `http.trusted_proxies` and no others, and whether the
//! `Host` it names is one this server answers to (`http.allowed_hosts`).
//!
//! The Host check stops DNS rebinding: a page on another site that points its own name at
//! this server's address makes the browser send `Host: <that name>` with a matching `Origin`,
//! which would otherwise pass as the dashboard's own origin. IP literals and `localhost` are
//! always accepted (a rebinding page cannot make a browser send them); other names only when
//! configured.

use std::net::IpAddr;

/// A network in CIDR form (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `a.b.c.d[/n]` or `ipv6[/n]`.
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let base: IpAddr = addr.parse().ok()?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { base, prefix })
    }

    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.base, ip) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `ip`, with an IPv4-mapped IPv6 address turned back into IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Prefix length of the IPv4 networks whose addresses share one budget.
pub const IPV4_NETWORK_BITS: u8 = 24;
/// Prefix length of the IPv6 networks whose addresses share one budget: a /64 is what one
/// subscriber is given, so each of its addresses is the same client.
pub const IPV6_NETWORK_BITS: u8 = 64;

/// The network `ip` belongs to for budgets (its /24 or /64), as `base/bits`. One host holds
/// many addresses (all of 127.0.0.0/8, a whole IPv6 /64), so budgets per address alone would
/// multiply with the addresses a client cares to use.
pub fn network_of(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let mask = u32::MAX << (32 - u32::from(IPV4_NETWORK_BITS));
            let base = std::net::Ipv4Addr::from(u32::from(v4) & mask);
            format!("{base}/{IPV4_NETWORK_BITS}")
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - u32::from(IPV6_NETWORK_BITS));
            let base = std::net::Ipv6Addr::from(u128::from(v6) & mask);
            format!("{base}/{IPV6_NETWORK_BITS}")
        }
    }
}

/// The network a request came from (see [`network_of`]), as the gate found it: kept in the
/// request's extensions for handlers that budget per client.
#[derive(Debug, Clone)]
pub struct ClientNetwork(pub String);

/// The address a request came from, as the gate found it (through the trusted proxies only):
/// kept in the request's extensions for handlers that write the audit log themselves.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

/// The client a budget is kept for: the API key when the caller has one, else its network.
pub fn client_id(key_id: Option<&str>, network: &str) -> String {
    match key_id {
        Some(key) => format!("key:{key}"),
        None => format!("net:{network}"),
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// Parses the settings' list; the first entry that is not a network is the error.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|e| {
                Network::parse(e).ok_or_else(|| {
                    format!("http.trusted_proxies: `{e}` is not an address or network")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the peer itself, unless the peer is a trusted proxy, in which
    /// case the rightmost address of `X-Forwarded-For` that is not a trusted proxy (every
    /// proxy appends the address it heard from; only the part our own proxies wrote can be
    /// believed).
    pub fn client(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusts(peer) {
            return Some(peer);
        }
        let Some(header) = forwarded_for else {
            return Some(peer);
        };
        let mut client = peer;
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(client)
    }
}

/// Every `X-Forwarded-For` line joined in order, as one list. A proxy may add a line of its own
/// rather than extend the client's (HAProxy's `option forwardfor` does): reading the first line
/// alone believed what the client wrote. A value that is not text reads as an empty hop, where
/// the walk from the right stops.
pub fn forwarded_for(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`), lower-cased.
pub fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a request naming `host` may be served under `allowed` (`http.allowed_hosts`).
pub fn host_allowed(allowed: &[String], host: Option<&str>) -> bool {
    // HTTP/1.0 clients may send no Host at all; nothing can be rebound without one.
    let Some(host) = host else { return true };
    let name = host_name(host);
    name == "localhost"
        || name.parse::<IpAddr>().is_ok()
        || allowed.iter().any(|a| {
            let a = a.trim().trim_end_matches('.').to_ascii_lowercase();
            a == "*"
                || a == name
                || a.strip_prefix("*.")
                    .is_some_and(|suffix| name.ends_with(&format!(".{suffix}")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_forwarded_line_counts_and_the_proxys_own_line_names_the_client() {
        use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
        let name = HeaderName::from_static("x-forwarded-for");
        let mut headers = HeaderMap::new();
        assert_eq!(forwarded_for(&headers), None);
        // The client's own line, then the line the proxy added.
        headers.append(name.clone(), HeaderValue::from_static("6.6.6.1"));
        headers.append(name.clone(), HeaderValue::from_static("203.0.113.9"));
        let joined = forwarded_for(&headers);
        assert_eq!(joined.as_deref(), Some("6.6.6.1,203.0.113.9"));
        let proxies = TrustedProxies::parse(&["10.0.0.1".to_string()]).unwrap();
        assert_eq!(
            proxies.client(Some(ip("10.0.0.1")), joined.as_deref()),
            Some(ip("203.0.113.9"))
        );
        headers.append(name, HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(
            proxies.client(Some(ip("10.0.0.1")), forwarded_for(&headers).as_deref()),
            Some(ip("10.0.0.1")),
            "an unreadable last hop: the proxy itself"
        );
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let n = Network::parse("10.1.0.0/16").unwrap();
        assert!(n.contains(ip("10.1.200.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(n.contains(ip("::ffff:10.1.0.9")));
        assert!(Network::parse("::1").unwrap().contains(ip("::1")));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("proxy.local").is_none());
    }

    #[test]
    fn addresses_of_one_network_share_it() {
        assert_eq!(network_of(ip("127.0.0.7")), "127.0.0.0/24");
        assert_eq!(network_of(ip("127.0.0.250")), network_of(ip("127.0.0.2")));
        assert_ne!(network_of(ip("127.0.1.2")), network_of(ip("127.0.0.2")));
        assert_eq!(network_of(ip("::ffff:10.1.2.3")), "10.1.2.0/24");
        assert_eq!(network_of(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            network_of(ip("2001:db8:1:2:ffff::9")),
            network_of(ip("2001:db8:1:2::1"))
        );
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let header = Some("1.2.3.4");
        assert_eq!(
            none.client(Some(ip("9.9.9.9")), header),
            Some(ip("9.9.9.9"))
        );
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        assert_eq!(
            proxies.client(Some(ip("10.0.0.2")), header),
            Some(ip("1.2.3.4"))
        );
        // A client cannot pick its address by sending the header itself: only the rightmost
        // untrusted hop counts.
        assert_eq!(
            proxies.client(Some(ip("10.0.0.2")), Some("6.6.6.6, 1.2.3.4, 10.0.0.7")),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            proxies.client(Some(ip("10.0.0.2")), Some("garbage")),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(
            proxies.client(Some(ip("11.0.0.2")), header),
            Some(ip("11.0.0.2"))
        );
        assert!(TrustedProxies::parse(&["nope".into()]).is_err());
    }

    #[test]
    fn hosts_are_addresses_localhost_or_configured_names() {
        let none: Vec<String> = Vec::new();
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "10.0.0.5",
            "LOCALHOST",
        ] {
            assert!(host_allowed(&none, Some(ok)), "{ok}");
        }
        assert!(host_allowed(&none, None));
        assert!(!host_allowed(&none, Some("evil.example:8080")));
        assert!(!host_allowed(&none, Some("localhost.evil.example")));
        let some = vec![
            "pulse.example.com".to_string(),
            "*.corp.example".to_string(),
        ];
        assert!(host_allowed(&some, Some("pulse.example.com:443")));
        assert!(host_allowed(&some, Some("PULSE.example.com.")));
        assert!(host_allowed(&some, Some("a.corp.example")));
        assert!(!host_allowed(&some, Some("corp.example")));
        assert!(!host_allowed(&some, Some("evil.example")));
        assert!(host_allowed(&["*".to_string()], Some("anything")));
    }
}
