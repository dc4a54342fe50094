//! Outbound requests to addresses that users configure or that a remote server chooses
//! (webhook receivers, feeds, the platforms the sources read and where they redirect): which
//! addresses may be reached, an HTTP client that reaches no others, and the redaction of URLs
//! for logs and errors.
//!
//! By default a target may not be loopback, private, shared (carrier-grade NAT), link-local
//! (cloud metadata services live there), unique-local, multicast, reserved, documentation or
//! unspecified. The rule holds for the address actually connected to on every request: names
//! are resolved by [`GuardedResolver`], which hands the connector only allowed addresses, so a
//! name that resolved to a public address when the webhook was created and to an internal one
//! later (DNS rebinding) reaches nothing; IP literals, which skip resolution, are checked by
//! [`TargetPolicy::check_url`] before each request ([`TargetPolicy::send`] does both). The
//! client follows no redirect by itself (a server could send the request on to an internal
//! address): webhooks follow none; the sources (feeds, Mastodon, Reddit, the Bluesky profile
//! lookups) follow a few through [`TargetPolicy::get_following_redirects`], which checks every
//! hop as it checks the first and sends credentials to the first URL's origin only. No proxy
//! from the environment is used (a proxy would resolve and connect where the policy cannot
//! look). Webhook failures are described in a few generic words ([`describe`]), so delivery
//! results cannot map an internal network; a refused source request is described by
//! [`FetchError`] before any connection is made, so its words tell nothing of the inside.
//! `webhooks.allow_private_targets` lifts the address rule for on-premises receivers; a
//! source's `allowed_private_networks` lifts it for the networks it names.
//!
//! [`redact_url`] is the one place a URL is made fit to show: user information and query
//! values hidden. Whatever logs or shows a URL that may carry a credential goes through it
//! (or through [`redact_urls_in`] for text quoting URLs).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

pub use crate::telemetry::redact::{origin_only, redact_url, redact_urls_in};

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
            // 6to4 (2002::/16) reaches the IPv4 address in its second and third groups where
            // a relay or a 6to4 route exists.
            if s[0] == 0x2002 {
                let [a, b] = s[1].to_be_bytes();
                let [c, d] = s[2].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
                || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32, an IPv4 client behind it
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 64:ff9b:1::/48
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

/// An IP network (an address and a prefix length): `10.20.0.0/16`, `fd00::/8`, or one address
/// (`192.168.1.5`, a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let bad = || format!("{s:?} is not a network (an address, or address/prefix length)");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Network {
            addr: addr.to_canonical(),
            prefix,
        })
    }
}

impl Network {
    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, ip, bits) = match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => (u32::from(net).into(), u32::from(ip).into(), 32),
            (IpAddr::V6(net), IpAddr::V6(ip)) => (u128::from(net), u128::from(ip), 128),
            _ => return false,
        };
        // The bits in which the two differ, shifted down to those of the prefix: none left
        // means the same network (a /0 keeps none to compare).
        (net ^ ip)
            .checked_shr(bits - u32::from(self.prefix))
            .unwrap_or(0)
            == 0
    }
}

/// Who may be reached.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    /// Internal and reserved addresses too (on-premises receivers).
    pub allow_private: bool,
    /// Internal networks that may be reached although `allow_private` is off (an intranet
    /// feed server, without opening the whole inside).
    pub allowed_networks: Vec<Network>,
}

impl TargetPolicy {
    /// The targets `settings` allow.
    pub fn from_settings(settings: &crate::config::WebhookSettings) -> TargetPolicy {
        TargetPolicy {
            allow_private: settings.allow_private_targets,
            allowed_networks: Vec::new(),
        }
    }

    /// Public addresses, and those of `networks` (as a source's settings list them).
    pub fn allowing(networks: &[String]) -> Result<TargetPolicy, String> {
        Ok(TargetPolicy {
            allow_private: false,
            allowed_networks: networks
                .iter()
                .map(|n| n.parse())
                .collect::<Result<_, _>>()?,
        })
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.allowed_networks.iter().any(|n| n.contains(ip))
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
        self.client_builder(timeout)
            .build()
            .expect("the HTTP client builds")
    }

    /// [`Self::client`]'s builder, for a caller to add what leaves the policy as it is (a
    /// User-Agent).
    pub fn client_builder(&self, timeout: Duration) -> reqwest::ClientBuilder {
        self.stream_client_builder(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
    }

    /// [`Self::client_builder`] with no deadline for a whole request, for a stream that stays
    /// open for hours (its reader notices silence itself, and gives each other request a
    /// timeout of its own); `connect_timeout` bounds connecting.
    pub fn stream_client_builder(&self, connect_timeout: Duration) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: self.clone(),
            }))
    }
}

/// The resolver of [`TargetPolicy::client`]: the system's answers, less every address the
/// policy refuses.
pub struct GuardedResolver {
    policy: TargetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
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

/// Most redirects [`TargetPolicy::get_following_redirects`] follows.
pub const MAX_REDIRECTS: usize = 5;

/// Why a request made under a policy failed. Every URL it names is redacted.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The policy refused a target: the URL asked for, or a redirect's.
    #[error("{}", if *.redirected {
        format!("redirected to {url}, an internal or reserved address, which is not allowed")
    } else {
        format!("{url} is an internal or reserved address, which is not allowed")
    })]
    NotAllowed { url: String, redirected: bool },
    /// A redirect that cannot be followed: without a usable `Location`, to another scheme
    /// than http(s), or one too many.
    #[error("{0}")]
    BadRedirect(String),
    /// The request failed (connecting, timing out, ...); the error names no URL.
    #[error("{0}")]
    Request(reqwest::Error),
}

impl FetchError {
    fn of(error: reqwest::Error, url: &Url, redirected: bool) -> FetchError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(e) = source {
            if e.downcast_ref::<TargetError>() == Some(&TargetError::NotAllowed) {
                return FetchError::NotAllowed {
                    url: redact_url(url.as_str()),
                    redirected,
                };
            }
            source = e.source();
        }
        FetchError::Request(error.without_url())
    }
}

impl TargetPolicy {
    /// Sends `request`, made with a client of this policy ([`Self::client`]), once: no
    /// redirect is followed (a `3xx` is the answer). Its URL is checked first, since an IP
    /// literal skips the resolver; `redirected` says whether it is a redirect's target, for
    /// the error.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        redirected: bool,
    ) -> Result<reqwest::Response, FetchError> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| FetchError::Request(e.without_url()))?;
        self.execute(&client, request, redirected).await
    }

    /// Sends a built request after checking its URL (see [`Self::send`]).
    async fn execute(
        &self,
        client: &reqwest::Client,
        request: reqwest::Request,
        redirected: bool,
    ) -> Result<reqwest::Response, FetchError> {
        let url = request.url().clone();
        if self.check_url(url.as_str()).is_err() {
            return Err(FetchError::NotAllowed {
                url: redact_url(url.as_str()),
                redirected,
            });
        }
        client
            .execute(request)
            .await
            .map_err(|e| FetchError::of(e, &url, redirected))
    }

    /// GETs `url` with `client` (one of [`Self::client`], which follows no redirect by
    /// itself), following up to [`MAX_REDIRECTS`] redirects here, each one's target checked
    /// against the policy before it is asked (an IP literal by [`Self::check_url`], a name as
    /// it resolves), so a server cannot send the request on to an internal address.
    /// `prepare` adds each request's headers. Credentials go to `url`'s own origin only: its
    /// user information, and any `Authorization` or `Cookie` header `prepare` adds (a token),
    /// are left off a hop to another origin, so a server cannot redirect them elsewhere. The
    /// answer is the first that is not a redirect (a `304` included).
    pub async fn get_following_redirects(
        &self,
        client: &reqwest::Client,
        url: &Url,
        prepare: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, FetchError> {
        let mut hop = url.clone();
        for redirects in 0..=MAX_REDIRECTS {
            let mut request = prepare(client.get(hop.clone()))
                .build()
                .map_err(|e| FetchError::Request(e.without_url()))?;
            if hop.origin() != url.origin() {
                strip_credentials(request.headers_mut());
            }
            let response = self.execute(client, request, redirects > 0).await?;
            let status = response.status();
            if !status.is_redirection() || status.as_u16() == 304 {
                return Ok(response);
            }
            hop = next_hop(&response, &hop, url)?;
        }
        Err(FetchError::BadRedirect(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

/// Where a redirect from `hop` goes: its `Location`, which must be http(s), with the user
/// information of `first` (the URL first asked) when it stays on that origin.
fn next_hop(response: &reqwest::Response, hop: &Url, first: &Url) -> Result<Url, FetchError> {
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| FetchError::BadRedirect(format!("answered {status} without a Location")))?;
    let mut next = hop.join(location).map_err(|_| {
        FetchError::BadRedirect(format!("answered {status} to an unusable Location"))
    })?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(FetchError::BadRedirect(format!(
            "redirected to {}, which is not http(s)",
            redact_url(next.as_str())
        )));
    }
    let same_origin = next.origin() == first.origin();
    if same_origin && next.username().is_empty() && !first.username().is_empty() {
        let _ = next.set_username(first.username());
        let _ = next.set_password(first.password());
    }
    Ok(next)
}

/// Removes what would authenticate a request at another origin than the one it was made for.
fn strip_credentials(headers: &mut reqwest::header::HeaderMap) {
    use reqwest::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
    for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
        headers.remove(name);
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
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2002:c0a8:101::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b:1::a00:1",
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
            "2002:808:808::1",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_host_and_literal_addresses() {
        let strict = TargetPolicy::default();
        assert!(strict.check_url("https://hooks.example.com/x").is_ok());
        for loopback in [
            "http://127.0.0.1:6379/",
            "http://[::1]/",
            // Other spellings of loopback are parsed to the same address.
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            assert_eq!(
                strict.check_url(loopback).unwrap_err(),
                TargetError::NotAllowed,
                "{loopback}"
            );
        }
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
            ..TargetPolicy::default()
        };
        assert!(open.check_url("http://127.0.0.1:9/").is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_only_to_internal_addresses_are_refused() {
        let strict = TargetPolicy::default();
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

    #[test]
    fn urls_quoted_in_text_are_redacted_wherever_they_stand() {
        let text =
            "error sending request for url (https://u:pw@feeds.example/rss?token=s3cret&x=1): \
                    connection refused; feed URL \"wss://js.example/sub?api_key=k3y\", \
                    then http://plain.example/a.";
        let redacted = redact_urls_in(text);
        for secret in ["pw", "s3cret", "k3y"] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
        assert_eq!(
            redacted,
            "error sending request for url (https://***@feeds.example/rss?token=***&x=***): \
             connection refused; feed URL \"wss://js.example/sub?api_key=***\", \
             then http://plain.example/a."
        );
        assert_eq!(redact_urls_in("no URL here: 10:30"), "no URL here: 10:30");
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net: Network = "10.20.0.0/16".parse().unwrap();
        assert!(net.contains("10.20.3.4".parse().unwrap()));
        assert!(net.contains("::ffff:10.20.3.4".parse().unwrap()));
        assert!(!net.contains("10.21.0.1".parse().unwrap()));
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("169.254.169.254".parse().unwrap()));
        let every_v6: Network = "::/0".parse().unwrap();
        assert!(every_v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!every_v6.contains("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
        let policy = TargetPolicy::allowing(&["127.0.0.1/32".into()]).unwrap();
        assert!(policy.check_url("http://127.0.0.1:8080/feed").is_ok());
        assert_eq!(
            policy.check_url("http://127.0.0.2/feed").unwrap_err(),
            TargetError::NotAllowed
        );
        assert!(TargetPolicy::allowing(&["bad".into()]).is_err());
    }

    /// What a stand-in server saw of one request: its path and its `Authorization` header.
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

    /// A server on a free 127.0.0.1 port answering each request with `answer(path)` (a status
    /// line, then any header lines) and no body. Its address, and what it saw.
    async fn standin(answer: fn(&str) -> String) -> (SocketAddr, Seen) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Seen::default();
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let authorization = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
                    .map(|(_, value)| value.trim().to_string())
                    .unwrap_or_default();
                log.lock().unwrap().push((path.clone(), authorization));
                let reply = format!(
                    "HTTP/1.1 {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    answer(&path)
                );
                let _ = tcp.write_all(reply.as_bytes()).await;
            }
        });
        (address, seen)
    }

    #[tokio::test]
    async fn a_redirect_to_an_internal_address_is_refused_before_it_is_asked() {
        let (address, seen) = standin(|path| match path {
            "/to-metadata" => {
                "302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/".into()
            }
            "/to-inside" => "307 Temporary Redirect\r\nLocation: http://10.0.0.5:8080/admin".into(),
            _ => "200 OK".into(),
        })
        .await;
        let policy = TargetPolicy::allowing(&["127.0.0.1".into()]).unwrap();
        let client = policy.client(Duration::from_secs(5));
        for (path, refused) in [
            ("/to-metadata", "http://169.254.169.254/latest/meta-data/"),
            ("/to-inside", "http://10.0.0.5:8080/admin"),
        ] {
            let url = Url::parse(&format!("http://{address}{path}")).unwrap();
            // Asking 10.0.0.5 would time out or fail to connect: only a refusal made before
            // connecting gives this error.
            match policy.get_following_redirects(&client, &url, |r| r).await {
                Err(FetchError::NotAllowed { url, redirected }) => {
                    assert!(redirected, "{url}");
                    assert_eq!(url, refused);
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        // A first request to an internal literal is refused the same way.
        match policy.send(client.get("http://10.0.0.5/"), false).await {
            Err(FetchError::NotAllowed { redirected, .. }) => assert!(!redirected),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_token_follows_a_redirect_on_its_origin_and_not_to_another() {
        let (elsewhere, asked_elsewhere) = standin(|_| "200 OK".into()).await;
        // The redirecting server learns where to send the request from its path.
        let (site, asked_here) = standin(|path| match path.strip_prefix("/away/") {
            Some(to) => format!("302 Found\r\nLocation: http://{to}/taken"),
            None if path == "/moved" => "301 Moved Permanently\r\nLocation: /here".into(),
            None => "200 OK".into(),
        })
        .await;
        let policy = TargetPolicy::allowing(&["127.0.0.1".into()]).unwrap();
        let client = policy.client(Duration::from_secs(5));
        let bearer = |r: reqwest::RequestBuilder| r.bearer_auth("s3cret");
        for path in ["/moved".to_string(), format!("/away/{elsewhere}")] {
            let url = Url::parse(&format!("http://{site}{path}")).unwrap();
            let response = policy.get_following_redirects(&client, &url, bearer).await;
            assert_eq!(response.unwrap().status(), 200, "{path}");
        }
        let here = asked_here.lock().unwrap().clone();
        assert!(
            here.contains(&("/here".to_string(), "Bearer s3cret".to_string())),
            "{here:?}"
        );
        let there = asked_elsewhere.lock().unwrap().clone();
        assert_eq!(there, [("/taken".to_string(), String::new())]);
    }
}
