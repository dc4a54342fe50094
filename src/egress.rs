//! Outbound requests to addresses that users configure (webhook receivers): which addresses
//! may be reached, and an HTTP client that reaches no others.
//!
//! By default a target may not be loopback, private, shared (carrier-grade NAT), link-local
//! (cloud metadata services live there), unique-local, multicast, reserved, documentation or
//! unspecified. The rule holds for the address actually connected to on every request: names
//! are resolved by [`GuardedResolver`], which hands the connector only allowed addresses, so a
//! name that resolved to a public address when the webhook was created and to an internal one
//! later (DNS rebinding) reaches nothing; IP literals, which skip resolution, are checked by
//! [`check_url`] before each request. Redirects are never followed (a receiver could send the
//! request on to an internal address), no proxy from the environment is used, and failures are
//! described in a few generic words ([`describe`]), so delivery results cannot map an internal
//! network. `webhooks.allow_private_targets` lifts the address rule for on-premises receivers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Whether `ip` is an address on the public internet (nothing internal, special or reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard 100::/64
                || s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::/96 (deprecated)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network" 0.0.0.0/8
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared 100.64.0.0/10
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the URL is not an absolute http:// or https:// URL with a host")]
    NotHttp,
    #[error("the target is an internal or reserved address (webhooks.allow_private_targets)")]
    NotAllowed,
    #[error("the target's name does not resolve")]
    Unresolved,
}

/// Who may be reached.
#[derive(Debug, Clone, Copy)]
pub struct TargetPolicy {
    /// Internal and reserved addresses too (on-premises receivers).
    pub allow_private: bool,
}

impl TargetPolicy {
    /// The targets `settings` allow.
    pub fn from_settings(settings: &crate::config::WebhookSettings) -> TargetPolicy {
        TargetPolicy {
            allow_private: settings.allow_private_targets,
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }

    /// Checks what can be checked of `url` without resolving it: the scheme, a host, and an IP
    /// literal host's address. Returns the parsed URL.
    pub fn check_url(&self, url: &str) -> Result<Url, TargetError> {
        let parsed = Url::parse(url).map_err(|_| TargetError::NotHttp)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(TargetError::NotHttp);
        }
        match parsed.host() {
            None => Err(TargetError::NotHttp),
            Some(url::Host::Ipv4(ip)) if !self.allows(IpAddr::V4(ip)) => {
                Err(TargetError::NotAllowed)
            }
            Some(url::Host::Ipv6(ip)) if !self.allows(IpAddr::V6(ip)) => {
                Err(TargetError::NotAllowed)
            }
            Some(_) => Ok(parsed),
        }
    }

    /// [`Self::check_url`], then resolves a named host and refuses it when none of its
    /// addresses may be reached (what a subscription is checked against when it is made;
    /// each delivery is checked again as it connects).
    pub async fn check_target(&self, url: &str) -> Result<Url, TargetError> {
        let parsed = self.check_url(url)?;
        if let Some(url::Host::Domain(name)) = parsed.host() {
            let port = parsed.port_or_known_default().unwrap_or(443);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| TargetError::Unresolved)?
                .collect();
            if addrs.is_empty() {
                return Err(TargetError::Unresolved);
            }
            if !addrs.iter().any(|a| self.allows(a.ip())) {
                return Err(TargetError::NotAllowed);
            }
        }
        Ok(parsed)
    }

    /// An HTTP client for targets under this policy: names resolve to allowed addresses only,
    /// no redirects, no proxy, `timeout` per request.
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: *self }))
            .build()
            .expect("the HTTP client builds")
    }
}

/// The resolver of [`TargetPolicy::client`]: the system's answers, less every address the
/// policy refuses.
pub struct GuardedResolver {
    policy: TargetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(TargetError::NotAllowed) as Box<_>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A delivery failure in a few generic words, safe to store and show: it never says which
/// address answered, refused or timed out, or what it said.
pub fn describe(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<TargetError>() == Some(&TargetError::NotAllowed) {
            return "target not allowed";
        }
        source = e.source();
    }
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
}

/// `url` with its user information and query values hidden, for logs, errors and the audit
/// log (receivers often carry a token in either).
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return "[unparseable URL]".into();
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username("***");
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, _)| (k.into_owned(), "***".to_string()))
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.set_fragment(None);
    parsed.to_string()
}

/// `url` reduced to its scheme, host and port, for receivers whose path is the secret (Slack
/// and Teams incoming webhooks).
pub fn origin_only(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => format!("{}/***", parsed.origin().ascii_serialization()),
        Err(_) => "[unparseable URL]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_only_hides_the_path() {
        assert_eq!(
            origin_only("https://hooks.slack.com/services/T0/B0/secret?x=1"),
            "https://hooks.slack.com/***"
        );
        assert_eq!(origin_only("not a url"), "[unparseable URL]");
    }

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn internal_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.7",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_host_and_literal_addresses() {
        let strict = TargetPolicy {
            allow_private: false,
        };
        assert!(strict.check_url("https://hooks.example.com/x").is_ok());
        assert_eq!(
            strict.check_url("http://127.0.0.1:6379/").unwrap_err(),
            TargetError::NotAllowed
        );
        assert_eq!(
            strict.check_url("http://[::1]/").unwrap_err(),
            TargetError::NotAllowed
        );
        // Other spellings of loopback are parsed to the same address.
        assert_eq!(
            strict.check_url("http://2130706433/").unwrap_err(),
            TargetError::NotAllowed
        );
        assert_eq!(
            strict.check_url("http://0x7f.1/").unwrap_err(),
            TargetError::NotAllowed
        );
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://",
            "nonsense",
        ] {
            assert_eq!(strict.check_url(bad).unwrap_err(), TargetError::NotHttp);
        }
        let open = TargetPolicy {
            allow_private: true,
        };
        assert!(open.check_url("http://127.0.0.1:9/").is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_only_to_internal_addresses_are_refused() {
        let strict = TargetPolicy {
            allow_private: false,
        };
        assert_eq!(
            strict
                .check_target("http://localhost:8080/hook")
                .await
                .unwrap_err(),
            TargetError::NotAllowed
        );
    }

    #[test]
    fn redaction_hides_credentials_and_query_values() {
        assert_eq!(
            redact_url("https://user:pw@hooks.example.com/p?token=s3cret&x=1#frag"),
            "https://***@hooks.example.com/p?token=***&x=***"
        );
        assert_eq!(
            redact_url("https://hooks.example.com/p"),
            "https://hooks.example.com/p"
        );
        assert_eq!(redact_url("::"), "[unparseable URL]");
    }
}
