//! The outbound HTTP client plugins get with `http:client`: one connection pool for the whole
//! server, TLS by rustls with ring (no OpenSSL, no C crypto in the static binary), bounded
//! connect and request times, and a user agent naming the plugin.

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use crate::abi::plugin::Plugin;

pub use reqwest::{Method, RequestBuilder, Response, StatusCode};

/// How long a connection (TCP and TLS) may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take, body included, unless the request sets its own
/// (`.timeout(…)` on the builder).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed before a request fails.
pub const MAX_REDIRECTS: usize = 5;

/// The client every plugin's [`HttpClient`] shares, built on first use.
fn shared() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        build(|| {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
                .pool_idle_timeout(Duration::from_secs(90))
        })
    })
}

/// Builds the client `builder` describes, with rustls and ring. When the system's verifier
/// cannot start (a container without a CA bundle) plain HTTP still works, and HTTPS fails
/// verification instead of every request failing.
fn build(builder: impl Fn() -> reqwest::ClientBuilder) -> reqwest::Client {
    // Another part of the program may have installed a provider first; either is rustls.
    let _ = rustls::crypto::ring::default_provider().install_default();
    builder().build().unwrap_or_else(|error| {
        tracing::warn!(
            %error,
            "outbound HTTP: the system's root certificates are unavailable; HTTPS requests will fail certificate verification"
        );
        builder()
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .build()
            // With a provider installed above and no certificates to parse, nothing is left
            // that can fail.
            .unwrap_or_else(|error| panic!("cannot build the outbound HTTP client: {error}"))
    })
}

/// Plugin `P`'s outbound HTTP client: `context.http().get(url).send().await?`. Requests carry
/// `User-Agent: plexichat/<version> (<plugin>)`, give up connecting after
/// [`CONNECT_TIMEOUT`] and finishing after [`REQUEST_TIMEOUT`] (a request may set its own),
/// and follow at most [`MAX_REDIRECTS`] redirects. Cheap to clone: every plugin shares one
/// connection pool.
pub struct HttpClient<P> {
    client: reqwest::Client,
    plugin: PhantomData<fn() -> P>,
}

impl<P> Clone for HttpClient<P> {
    fn clone(&self) -> Self {
        HttpClient {
            client: self.client.clone(),
            plugin: PhantomData,
        }
    }
}

impl<P: Plugin> HttpClient<P> {
    pub(crate) fn new() -> HttpClient<P> {
        HttpClient {
            client: shared().clone(),
            plugin: PhantomData,
        }
    }

    /// A `GET` request to `url`.
    pub fn get(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` request to `url`.
    pub fn post(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A request with any method to `url`; an invalid URL fails when the request is sent.
    pub fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.client.request(method, url).header(
            reqwest::header::USER_AGENT,
            format!("plexichat/{} ({})", crate::abi::expansion::VERSION, P::NAME),
        )
    }
}

impl<P: Plugin> std::fmt::Debug for HttpClient<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("plugin", &P::NAME)
            .finish()
    }
}

impl<P: Plugin> HttpClient<P> {
    /// A client for addresses users give (a webhook's URL): it connects only where
    /// `destinations` allow, checked on the address it actually connects to (after DNS, so a
    /// name that resolves to a private address later is still refused), follows no
    /// redirect and ignores proxy settings. Requests go through [`RestrictedClient::send`].
    pub fn restricted(&self, destinations: Destinations) -> RestrictedClient<P> {
        let resolver = Guard {
            destinations: destinations.clone(),
        };
        let client = build(|| {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .pool_idle_timeout(Duration::from_secs(90))
                .dns_resolver(resolver.clone())
        });
        RestrictedClient {
            client,
            destinations,
            plugin: PhantomData,
        }
    }
}

/// Which addresses a [`RestrictedClient`] may connect to: public ones, and the ranges the
/// operator allows besides. Refused unless allowed: loopback, private (RFC 1918, unique
/// local), carrier-grade NAT, link-local (with the cloud metadata address 169.254.169.254),
/// unspecified, multicast, broadcast, documentation and benchmarking ranges, site-local,
/// Teredo and local-use NAT64, and IPv6 addresses that embed one of those (mapped,
/// compatible, translated, 6to4, NAT64).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destinations {
    allowed: Vec<(IpAddr, u8)>,
}

impl Destinations {
    /// Public addresses only.
    pub fn public_only() -> Destinations {
        Destinations::default()
    }

    /// Public addresses, and `ranges` besides: addresses (`127.0.0.1`, `::1`) or CIDR
    /// ranges (`10.1.0.0/16`). The error names the entry that is neither.
    pub fn allowing<S: AsRef<str>>(ranges: &[S]) -> Result<Destinations, String> {
        let allowed = ranges
            .iter()
            .map(|range| parse_range(range.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Destinations { allowed })
    }

    /// Whether `ip` may be connected to; the error says why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = canonical(ip);
        if self
            .allowed
            .iter()
            .any(|&(range, bits)| in_range(ip, range, bits))
        {
            return Ok(());
        }
        match special(ip) {
            Some(kind) => Err(Refused { ip, kind }),
            None => Ok(()),
        }
    }
}

/// A destination a [`RestrictedClient`] will not connect to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{ip} is a {kind} address, which this server does not send requests to unless the operator allows it"
)]
pub struct Refused {
    /// The address.
    pub ip: IpAddr,
    /// What kind of address it is (`loopback`, `private`, `link-local`…).
    pub kind: &'static str,
}

/// Why a [`RestrictedClient`] request failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The destination is not allowed.
    #[error("{0}")]
    Refused(Refused),
    /// The URL has no host or is not `http`/`https`.
    #[error("{0}")]
    InvalidUrl(String),
    /// The request failed (connect, TLS, timeout, body).
    #[error("{0}")]
    Transport(reqwest::Error),
}

impl OutboundError {
    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, OutboundError::Transport(error) if error.is_timeout())
    }
}

/// Plugin `P`'s client for user-given addresses, from [`HttpClient::restricted`].
pub struct RestrictedClient<P> {
    client: reqwest::Client,
    destinations: Destinations,
    plugin: PhantomData<fn() -> P>,
}

impl<P> Clone for RestrictedClient<P> {
    fn clone(&self) -> Self {
        RestrictedClient {
            client: self.client.clone(),
            destinations: self.destinations.clone(),
            plugin: PhantomData,
        }
    }
}

impl<P: Plugin> std::fmt::Debug for RestrictedClient<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestrictedClient")
            .field("plugin", &P::NAME)
            .field("destinations", &self.destinations)
            .finish()
    }
}

impl<P: Plugin> RestrictedClient<P> {
    /// A request with any method to `url`, to send with [`RestrictedClient::send`].
    pub fn request(&self, method: Method, url: reqwest::Url) -> RequestBuilder {
        self.client.request(method, url).header(
            reqwest::header::USER_AGENT,
            format!("plexichat/{} ({})", crate::abi::expansion::VERSION, P::NAME),
        )
    }

    /// Checks `url` as far as it can be before connecting: `http` or `https`, a host, and a
    /// literal address that is allowed. A host name is checked when it is resolved.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::InvalidUrl(format!(
                "`{}` is not an http or https URL",
                url.scheme()
            )));
        }
        match url.host() {
            None => Err(OutboundError::InvalidUrl("the URL has no host".into())),
            Some(url::Host::Ipv4(ip)) => self
                .destinations
                .check(IpAddr::V4(ip))
                .map_err(OutboundError::Refused),
            Some(url::Host::Ipv6(ip)) => self
                .destinations
                .check(IpAddr::V6(ip))
                .map_err(OutboundError::Refused),
            Some(url::Host::Domain(_)) => Ok(()),
        }
    }

    /// Sends `request` (built by [`RestrictedClient::request`]): a refused destination, a
    /// literal one or one a name resolved to, is [`OutboundError::Refused`].
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, OutboundError> {
        let request = request.build().map_err(OutboundError::Transport)?;
        self.check_url(request.url())?;
        self.client.execute(request).await.map_err(|error| {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(cause) = source {
                if let Some(refused) = cause.downcast_ref::<Refused>() {
                    return OutboundError::Refused(refused.clone());
                }
                source = cause.source();
            }
            OutboundError::Transport(error)
        })
    }
}

/// The resolver of a [`RestrictedClient`]: the system's, keeping only allowed addresses.
#[derive(Clone)]
struct Guard {
    destinations: Destinations,
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let destinations = self.destinations.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match destinations.check(addr.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refused.get_or_insert(why);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(refused)) => Err(Box::new(refused) as _),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// An IPv4 address carried in IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What kind of non-public address `ip` is, if it is one.
fn special(ip: IpAddr) -> Option<&'static str> {
    let v4 = |ip: Ipv4Addr| -> Option<&'static str> {
        let [a, b, c, _] = ip.octets();
        Some(if ip.is_loopback() {
            "loopback"
        } else if ip.is_private() {
            "private"
        } else if ip.is_link_local() {
            "link-local"
        } else if ip.is_unspecified() || a == 0 {
            "unspecified"
        } else if ip.is_multicast() || a >= 240 {
            "multicast or reserved"
        } else if ip.is_broadcast() {
            "broadcast"
        } else if a == 100 && (64..128).contains(&b) {
            "shared (carrier-grade NAT)"
        } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
            "documentation or benchmarking"
        } else if a == 192 && b == 0 && c == 0 {
            "IETF protocol assignment"
        } else {
            return None;
        })
    };
    match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => {
            let segments = ip.segments();
            if ip.is_loopback() {
                Some("loopback")
            } else if ip.is_unspecified() {
                Some("unspecified")
            } else if ip.is_multicast() {
                Some("multicast or reserved")
            } else if segments[0] & 0xfe00 == 0xfc00 {
                Some("private")
            } else if segments[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if segments[0] & 0xffc0 == 0xfec0 {
                // Site-local, deprecated but still routed on some networks.
                Some("private")
            } else if segments[0] == 0x2002 {
                // 6to4: the IPv4 address in bits 16 to 48.
                v4(Ipv4Addr::from(
                    (u32::from(segments[1]) << 16) | u32::from(segments[2]),
                ))
            } else if segments[..3] == [0x64, 0xff9b, 1] {
                // Local-use NAT64 (RFC 8215): where it embeds IPv4 depends on the network.
                Some("NAT64 (local use)")
            } else if segments[..2] == [0x2001, 0] {
                Some("Teredo")
            } else if segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
                // IPv4-translated (SIIT): the IPv4 address in the last 32 bits.
                let [.., high, low] = segments;
                v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)))
            } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
                Some("documentation or benchmarking")
            } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64: the IPv4 address in its last 32 bits.
                let [.., high, low] = segments;
                v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)))
            } else if segments[..6] == [0, 0, 0, 0, 0, 0] {
                // IPv4-compatible (deprecated): treated like the IPv4 address.
                let [.., high, low] = segments;
                v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)))
                    .or(Some("IPv4-compatible"))
            } else {
                None
            }
        }
    }
}

fn parse_range(text: &str) -> Result<(IpAddr, u8), String> {
    let (address, bits) = match text.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (text, None),
    };
    let ip: IpAddr = address.trim().parse().map_err(|_| {
        format!("`{text}` is not an IP address or CIDR range (e.g. `127.0.0.1` or `10.0.0.0/8`)")
    })?;
    let ip = canonical(ip);
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(bits) => bits
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|&bits| bits <= max)
            .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
    };
    Ok((ip, bits))
}

fn in_range(ip: IpAddr, range: IpAddr, bits: u8) -> bool {
    match (ip, range) {
        (IpAddr::V4(ip), IpAddr::V4(range)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(range) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(range)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(range) & mask
        }
        _ => false,
    }
}

/// An answer's `Retry-After` as a wait: delta seconds, or an HTTP date (a date in the past is
/// no wait); `None` when absent or unreadable.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text)
        .ok()?;
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(destinations: &Destinations, ip: &str) -> Option<&'static str> {
        destinations
            .check(ip.parse().unwrap())
            .err()
            .map(|why| why.kind)
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let headers = |text: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::RETRY_AFTER,
                reqwest::header::HeaderValue::from_str(text).unwrap(),
            );
            headers
        };
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&soon)
            .unwrap();
        let wait = retry_after(&headers(&date)).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new()), None);
    }

    #[test]
    fn only_public_addresses_unless_allowed() {
        let public = Destinations::public_only();
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("224.0.0.1", "multicast or reserved"),
            ("255.255.255.255", "multicast or reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "private"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:a9fe:a9fe::", "link-local"),
            ("2002:7f00:1::1", "loopback"),
            ("64:ff9b:1::a9fe:a9fe", "NAT64 (local use)"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("::ffff:0:a9fe:a9fe", "link-local"),
            ("fec0::1", "private"),
        ] {
            assert_eq!(refused(&public, ip), Some(kind), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "172.32.0.1",
            "2002:5db8:d822::1",
        ] {
            assert_eq!(refused(&public, ip), None, "{ip}");
        }
        let loopback = Destinations::allowing(&["127.0.0.1", "::1", "10.8.0.0/16"]).unwrap();
        assert_eq!(refused(&loopback, "127.0.0.1"), None);
        assert_eq!(refused(&loopback, "::ffff:127.0.0.1"), None);
        assert_eq!(refused(&loopback, "::1"), None);
        assert_eq!(refused(&loopback, "10.8.200.1"), None);
        assert_eq!(refused(&loopback, "127.0.0.2"), Some("loopback"));
        assert_eq!(refused(&loopback, "10.9.0.1"), Some("private"));
        assert!(
            Destinations::allowing(&["localhost"])
                .unwrap_err()
                .contains("`localhost` is not an IP address")
        );
        assert!(
            Destinations::allowing(&["10.0.0.0/33"])
                .unwrap_err()
                .contains("0 to 32")
        );
    }

    #[tokio::test]
    async fn names_are_checked_on_the_address_they_resolve_to() {
        struct Test;
        impl Plugin for Test {
            const NAME: &'static str = "test";
        }
        let client = HttpClient::<Test>::new().restricted(Destinations::public_only());
        let url: reqwest::Url = "http://localhost:9/".parse().unwrap();
        let error = client
            .send(client.request(Method::POST, url))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, OutboundError::Refused(refused) if refused.kind == "loopback"),
            "{error:?}"
        );
        let url: reqwest::Url = "http://[::1]:9/".parse().unwrap();
        let error = client
            .send(client.request(Method::GET, url))
            .await
            .unwrap_err();
        assert!(matches!(error, OutboundError::Refused(_)), "{error:?}");
        let url: reqwest::Url = "ftp://example.com/".parse().unwrap();
        assert!(matches!(
            client.check_url(&url),
            Err(OutboundError::InvalidUrl(_))
        ));
    }
}
