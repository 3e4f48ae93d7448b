//! `security`: the server's request policies, as global middleware every answer passes: a
//! request ID carried into the logs and echoed on the answer, the security headers browsers
//! act on, and a rate limiter per client address and route prefix (429 with `Retry-After`).
//! Each is configurable in `[plugins.security]` and applies again on reload.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use plexichat::extract::{ClientAddress, ConnectInfo};
use plexichat::http::{HeaderName, HeaderValue, header};
use plexichat::middleware::{Next, Request};
use plexichat::prelude::*;
use plexichat::response::Response;
use plexichat::tracing::Instrument;

mod self_tests;

/// Request IDs, security headers and rate limits for every request the server answers.
#[plugin(
    author = "PlexiChat",
    type = core,
    config = SecurityConfig,
    tags = ["security", "middleware", "rate-limit"],
)]
#[derive(Default)]
pub struct Security {
    limiter: RateLimiter,
}

/// `[plugins.security]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityConfig {
    /// Send `X-Content-Type-Options: nosniff` and the three headers below on every answer
    /// (a header the route set itself is kept).
    pub headers: bool,
    /// `Content-Security-Policy`, on one line; empty sends none.
    #[serde(deserialize_with = "header_value")]
    pub content_security_policy: String,
    /// `X-Frame-Options`: `DENY`, `SAMEORIGIN`, or empty for none.
    #[serde(deserialize_with = "frame_options")]
    pub frame_options: String,
    /// `Referrer-Policy`, on one line; empty sends none.
    #[serde(deserialize_with = "header_value")]
    pub referrer_policy: String,
    /// The header carrying the request ID, on the request as handlers see it and on the
    /// answer; every log line written while the request is served carries the ID. Empty: no
    /// request IDs.
    #[serde(deserialize_with = "header_name")]
    pub request_id_header: String,
    /// Keep an ID the client sent (1 to 128 letters, digits and `-_.:`, which cannot forge
    /// a log field) instead of making one, so that a proxy's ID follows the request through.
    pub trust_request_id: bool,
    /// Take the client's address for rate limits from `X-Forwarded-For`: the entry your
    /// outermost proxy added, `forwarded_hops` from the right (entries further left are the
    /// client's to choose). Only behind proxies you run, which append to it.
    pub trust_forwarded_for: bool,
    /// How many proxies you run in front of the server, each appending the address it
    /// received the request from to `X-Forwarded-For`.
    #[schemars(range(min = 1, max = 16))]
    pub forwarded_hops: u32,
    /// Rate limits per client address (IPv6 clients per /64); a request counts against the
    /// rule with the longest prefix matching its path, and none applies when none matches.
    pub rate_limits: Vec<RateLimit>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            headers: true,
            content_security_policy: "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'".to_string(),
            frame_options: "DENY".to_string(),
            referrer_policy: "no-referrer".to_string(),
            request_id_header: "x-request-id".to_string(),
            trust_request_id: true,
            trust_forwarded_for: false,
            forwarded_hops: 1,
            rate_limits: Vec::new(),
        }
    }
}

// A header setting is checked when the configuration is read, so that `config check` and a
// reload refuse it: a value a header cannot carry would otherwise drop the header silently
// on every answer, switching a protection off.

/// Text a header value can carry: visible ASCII, spaces and tabs, no line break.
fn header_value<'de, D: plexichat::serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    let text = <String as plexichat::serde::Deserialize>::deserialize(deserializer)?;
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_graphic() || *c == ' ' || *c == '\t'))
    {
        return Err(plexichat::serde::de::Error::custom(format!(
            "a header value is one line of visible ASCII; this one contains {bad:?} (write a \
             multi-line policy on one line, directives separated by `;`)"
        )));
    }
    Ok(text)
}

/// A header's name, or empty: letters, digits and `-` (RFC 9110's token characters).
fn header_name<'de, D: plexichat::serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    let text = <String as plexichat::serde::Deserialize>::deserialize(deserializer)?;
    if !text.is_empty() && HeaderName::try_from(text.as_str()).is_err() {
        return Err(plexichat::serde::de::Error::custom(format!(
            "{text:?} is not a header name; write e.g. \"x-request-id\" (letters, digits and \
             `-`), or \"\" for no request IDs"
        )));
    }
    Ok(text)
}

/// `DENY`, `SAMEORIGIN` (any case), or empty.
fn frame_options<'de, D: plexichat::serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    let text = <String as plexichat::serde::Deserialize>::deserialize(deserializer)?;
    let known = ["", "DENY", "SAMEORIGIN"];
    if !known.iter().any(|known| text.eq_ignore_ascii_case(known)) {
        return Err(plexichat::serde::de::Error::custom(format!(
            "{text:?} is not an X-Frame-Options value; write \"DENY\", \"SAMEORIGIN\" or \"\" \
             for none"
        )));
    }
    Ok(text)
}

/// One rate limit: at most `requests` per `per_seconds` from one client under `prefix`,
/// allowed in a burst.
#[payload]
#[derive(Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// A path prefix on segment boundaries: `/api/v1/auth` covers `/api/v1/auth/login`, not
    /// `/api/v1/authors`; `/` covers everything.
    pub prefix: String,
    /// Requests allowed per window.
    #[schemars(range(min = 1))]
    pub requests: u32,
    /// The window, in seconds.
    #[schemars(range(min = 1, max = 86400))]
    pub per_seconds: u32,
}

impl RateLimit {
    fn covers(&self, path: &str) -> bool {
        let prefix = self.prefix.trim_end_matches('/');
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// Outermost: everything inside, the other policies and every plugin's handler, logs with the
/// request's ID.
#[middleware(scope = global, priority = 1000)]
async fn request_id(
    context: PluginContext<Security>,
    mut request: Request,
    next: Next,
) -> Response {
    let config = settings(&context);
    let Ok(name) = HeaderName::try_from(config.request_id_header.as_str()) else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(&name)
        .filter(|value| config.trust_request_id && is_valid_id(value.as_bytes()))
        .cloned();
    let id = match given {
        Some(id) => id,
        None => new_id(),
    };
    request.headers_mut().insert(name.clone(), id.clone());
    let span = plexichat::tracing::info_span!(
        "request",
        id = %String::from_utf8_lossy(id.as_bytes()),
    );
    let mut response = next.run(request).instrument(span).await;
    response.headers_mut().insert(name, id);
    response
}

/// Second: every answer gets the headers, the rate limiter's 429s included.
#[middleware(scope = global, priority = 900)]
async fn security_headers(
    context: PluginContext<Security>,
    request: Request,
    next: Next,
) -> Response {
    let config = settings(&context);
    let mut response = next.run(request).await;
    if !config.headers {
        return response;
    }
    let headers = response.headers_mut();
    let values = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            config.content_security_policy.as_str(),
        ),
        (header::X_FRAME_OPTIONS, config.frame_options.as_str()),
        (header::REFERRER_POLICY, config.referrer_policy.as_str()),
    ];
    for (name, value) in values {
        if value.is_empty() || headers.contains_key(&name) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// Third: a request over its rule's limit is answered 429 before any plugin sees it.
#[middleware(scope = global, priority = 800)]
async fn rate_limit(
    context: PluginContext<Security>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let config = settings(&context);
    let mut request = request;
    if config.trust_forwarded_for
        && let Client::Address(address) = client_of(&request, Some(config.forwarded_hops), false)
    {
        // What other plugins read as the client's address (`ClientAddress`).
        request
            .extensions_mut()
            .insert(ClientAddress(Some(address)));
    }
    let path = request.uri().path();
    let Some((index, rule)) = config
        .rate_limits
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.covers(path))
        .max_by_key(|(_, rule)| rule.prefix.trim_end_matches('/').len())
    else {
        return Ok(next.run(request).await);
    };
    let forwarded_hops = config.trust_forwarded_for.then_some(config.forwarded_hops);
    let client = client_of(&request, forwarded_hops, true);
    let Some(plugin) = context.instance() else {
        return Ok(next.run(request).await);
    };
    match plugin
        .limiter
        .check(&config, index, rule, client, Instant::now())
    {
        Verdict::Allowed { remaining } => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from(rule.requests));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
            Ok(response)
        }
        Verdict::Limited { retry_after } => {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let seconds = seconds.max(1);
            let error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many requests: at most {} every {} s under `{}`; retry in {seconds} s",
                    rule.requests, rule.per_seconds, rule.prefix
                ),
            )
            .with_details(json!({ "retry_after": seconds }));
            let mut response = error.into_response();
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            headers.insert("x-ratelimit-limit", HeaderValue::from(rule.requests));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
            Ok(response)
        }
    }
}

/// The current section; the defaults if there is none (a test app without configuration).
fn settings(context: &PluginContext<Security>) -> Arc<SecurityConfig> {
    context.config::<Security>().unwrap_or_default()
}

/// 1 to 128 letters, digits and `-`, `_`, `.`, `:`: what a header carries unchanged and
/// what cannot forge a field in a log line (no quotes, `=`, braces or spaces).
fn is_valid_id(value: &[u8]) -> bool {
    (1..=128).contains(&value.len())
        && value
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(byte))
}

/// 32 hex digits, unique in this process and not guessable from the previous one: the
/// request counter hashed twice with a key drawn from the OS at first use. Written on the
/// stack: the header value is its only allocation.
fn new_id() -> HeaderValue {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keys = KEYS.get_or_init(RandomState::new);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut digits = [0u8; 32];
    for (half, word) in [keys.hash_one((count, 0u8)), keys.hash_one((count, 1u8))]
        .into_iter()
        .enumerate()
    {
        for (at, nibble) in (0..16).rev().enumerate() {
            digits[half * 16 + at] = b"0123456789abcdef"[((word >> (nibble * 4)) & 0xf) as usize];
        }
    }
    HeaderValue::from_bytes(&digits).expect("hex digits are a valid header value")
}

/// Who a rate limit counts a request against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    /// An IPv4 address, or an IPv6 /64 (one subscriber's usual allocation).
    Address(IpAddr),
    /// A request without a peer address (served in-process, as in tests).
    Unknown,
}

/// The address a request is counted against: with `forwarded_hops` (trusted proxies), the
/// `X-Forwarded-For` entry the outermost of them added, else the peer's; an IPv6 address cut
/// to its /64 when `by_network`.
fn client_of(request: &Request, forwarded_hops: Option<u32>, by_network: bool) -> Client {
    let forwarded = forwarded_hops.and_then(|hops| {
        let header = request.headers().get("x-forwarded-for")?.to_str().ok()?;
        forwarded_client(header, hops)
    });
    let peer = || {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip())
    };
    match forwarded.or_else(peer) {
        Some(IpAddr::V6(address)) if !by_network => Client::Address(IpAddr::V6(address)),
        Some(IpAddr::V6(address)) => match address.to_ipv4_mapped() {
            Some(v4) => Client::Address(IpAddr::V4(v4)),
            None => {
                let segments = address.segments();
                Client::Address(IpAddr::V6(Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                )))
            }
        },
        Some(address) => Client::Address(address),
        None => Client::Unknown,
    }
}

/// The entry of `header` (`X-Forwarded-For`) that the outermost of `hops` trusted proxies
/// added: the `hops`-th from the right. Entries left of it are whatever the client sent, so
/// a client cannot choose the address it is counted against. `None` when the header has
/// fewer entries (a request that did not pass every proxy) or that one is not an address.
fn forwarded_client(header: &str, hops: u32) -> Option<IpAddr> {
    let entries: Vec<&str> = header.split(',').map(str::trim).collect();
    let index = entries.len().checked_sub(usize::try_from(hops).ok()?)?;
    entries[index].parse().ok()
}

/// Most (rule, client) pairs tracked at once. A new client finding the table full evicts
/// one, first those whose budget is whole again (the same as untracked), else an arbitrary
/// one: never is a newcomer refused for others' traffic.
const MAX_CLIENTS: usize = 100_000;

/// What the limiter decided for one request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allowed { remaining: u32 },
    Limited { retry_after: Duration },
}

/// The generic cell rate algorithm per (rule, client): each client's state is one instant,
/// the time at which its budget will be whole again; `requests` may come in a burst, then
/// one every `per_seconds / requests`.
#[derive(Default)]
struct RateLimiter {
    state: Mutex<LimiterState>,
}

#[derive(Default)]
struct LimiterState {
    /// The configuration the table was built for: rules are keyed by index, so a reload
    /// that changes them starts a new table.
    config: Option<Arc<SecurityConfig>>,
    /// When each client's budget is whole again.
    full_at: HashMap<(usize, Client), Instant>,
    /// When whole-again clients were last dropped from a full table: at most once a second,
    /// so a flood of new addresses costs one scan a second, not one each.
    swept: Option<Instant>,
}

impl RateLimiter {
    fn check(
        &self,
        config: &Arc<SecurityConfig>,
        index: usize,
        rule: &RateLimit,
        client: Client,
        now: Instant,
    ) -> Verdict {
        let window = Duration::from_secs(u64::from(rule.per_seconds));
        let interval = window / rule.requests.max(1);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !state
            .config
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, config))
        {
            state.config = Some(Arc::clone(config));
            state.full_at.clear();
        }
        let key = (index, client);
        if !state.full_at.contains_key(&key) && state.full_at.len() >= MAX_CLIENTS {
            if state
                .swept
                .is_none_or(|swept| now.duration_since(swept) >= Duration::from_secs(1))
            {
                state.swept = Some(now);
                state.full_at.retain(|_, full_at| *full_at > now);
            }
            if state.full_at.len() >= MAX_CLIENTS
                && let Some(evicted) = state.full_at.keys().next().copied()
            {
                state.full_at.remove(&evicted);
            }
        }
        let full_at = state.full_at.get(&key).copied().unwrap_or(now).max(now);
        // Admitting one more request moves the instant one interval later; it may be at most
        // one window ahead of now.
        let after = full_at + interval;
        if after > now + window {
            return Verdict::Limited {
                retry_after: after - (now + window),
            };
        }
        state.full_at.insert(key, after);
        let spare = (now + window).saturating_duration_since(after);
        let remaining = (spare.as_nanos() / interval.as_nanos().max(1)) as u32;
        Verdict::Allowed { remaining }
    }
}

#[cfg(test)]
mod tests {
    use plexichat::extract::Body;
    use plexichat::testing::TestApp;

    use super::*;

    fn rule(prefix: &str, requests: u32, per_seconds: u32) -> RateLimit {
        RateLimit {
            prefix: prefix.to_string(),
            requests,
            per_seconds,
        }
    }

    /// Only the entry the outermost trusted proxy added counts: what a client writes to the
    /// left of it is ignored.
    #[test]
    fn the_forwarded_client_is_the_entry_the_trusted_proxies_added() {
        let address = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        assert_eq!(forwarded_client("198.51.100.7", 1), address("198.51.100.7"));
        assert_eq!(
            forwarded_client("6.6.6.6, 198.51.100.7", 1),
            address("198.51.100.7")
        );
        assert_eq!(
            forwarded_client("6.6.6.6, 198.51.100.7, 10.0.0.2", 2),
            address("198.51.100.7")
        );
        assert_eq!(forwarded_client("198.51.100.7", 2), None);
        assert_eq!(forwarded_client("6.6.6.6, not-an-address", 1), None);
    }

    /// A full table makes room: a newcomer is served, not refused for others' traffic.
    #[test]
    fn a_full_table_evicts_instead_of_refusing_newcomers() {
        let limiter = RateLimiter::default();
        let config = Arc::new(SecurityConfig::default());
        let rule = rule("/", 1, 3600);
        let now = Instant::now();
        for n in 0..MAX_CLIENTS as u32 {
            let client = Client::Address(IpAddr::from(n.to_be_bytes()));
            assert!(matches!(
                limiter.check(&config, 0, &rule, client, now),
                Verdict::Allowed { .. }
            ));
        }
        // Every tracked client has spent its budget for an hour.
        let tracked = Client::Address(IpAddr::from(7u32.to_be_bytes()));
        assert!(matches!(
            limiter.check(&config, 0, &rule, tracked, now),
            Verdict::Limited { .. }
        ));
        for n in 0..3u8 {
            let newcomer = Client::Address(IpAddr::from([203, 0, 113, n]));
            assert_eq!(
                limiter.check(&config, 0, &rule, newcomer, now),
                Verdict::Allowed { remaining: 0 }
            );
        }
        assert_eq!(limiter.state.lock().unwrap().full_at.len(), MAX_CLIENTS);
    }

    #[test]
    fn a_client_gets_its_burst_then_one_request_per_interval() {
        let limiter = RateLimiter::default();
        let config = Arc::new(SecurityConfig::default());
        let rule = rule("/", 3, 3);
        let client = Client::Address("192.0.2.1".parse().unwrap());
        let start = Instant::now();
        let remaining: Vec<Verdict> = (0..3)
            .map(|_| limiter.check(&config, 0, &rule, client, start))
            .collect();
        assert_eq!(
            remaining,
            [
                Verdict::Allowed { remaining: 2 },
                Verdict::Allowed { remaining: 1 },
                Verdict::Allowed { remaining: 0 },
            ]
        );
        assert_eq!(
            limiter.check(&config, 0, &rule, client, start),
            Verdict::Limited {
                retry_after: Duration::from_secs(1)
            }
        );
        // Another client, and the same client under another rule, have their own budgets.
        let other = Client::Address("192.0.2.2".parse().unwrap());
        assert!(matches!(
            limiter.check(&config, 0, &rule, other, start),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            limiter.check(&config, 1, &rule, client, start),
            Verdict::Allowed { .. }
        ));
        // One interval later, one more request.
        let later = start + Duration::from_secs(1);
        assert_eq!(
            limiter.check(&config, 0, &rule, client, later),
            Verdict::Allowed { remaining: 0 }
        );
        assert!(matches!(
            limiter.check(&config, 0, &rule, client, later),
            Verdict::Limited { .. }
        ));
        // A new configuration starts from whole budgets.
        let reloaded = Arc::new(SecurityConfig::default());
        assert!(matches!(
            limiter.check(&reloaded, 0, &rule, client, later),
            Verdict::Allowed { remaining: 2 }
        ));
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        let auth = rule("/api/v1/auth", 1, 1);
        assert!(auth.covers("/api/v1/auth"));
        assert!(auth.covers("/api/v1/auth/login"));
        assert!(!auth.covers("/api/v1/authors"));
        assert!(rule("/", 1, 1).covers("/anything"));
        assert!(rule("/api/", 1, 1).covers("/api/v1"));
    }

    #[test]
    fn request_ids_are_distinct_and_client_ids_are_kept_only_when_safe() {
        let (first, second) = (new_id(), new_id());
        assert_ne!(first, second);
        assert_eq!(first.len(), 32);
        assert!(
            first
                .as_bytes()
                .iter()
                .all(|digit| b"0123456789abcdef".contains(digit))
        );
        assert!(is_valid_id(b"req-42"));
        assert!(!is_valid_id(b""));
        assert!(!is_valid_id(b"has space"));
        assert!(!is_valid_id(&[b'a'; 129]));
        // Nothing that could forge a log field.
        for forged in [
            &b"x\" level=ERROR"[..],
            b"a=b",
            b"{id}",
            b"quote\"",
            b"semi;colon",
        ] {
            assert!(
                !is_valid_id(forged),
                "{:?}",
                String::from_utf8_lossy(forged)
            );
        }
        assert!(is_valid_id(b"proxy-7.lb_2:9f"));
    }

    fn from(address: &str, path: &str) -> Request {
        let peer: SocketAddr = address.parse().unwrap();
        plexichat::axum::http::Request::builder()
            .uri(path)
            .extension(ConnectInfo(peer))
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn every_answer_carries_the_headers_and_a_request_id() {
        let app = TestApp::linked().await;
        let response = app.send_raw(from("127.0.0.1:5000", "/health")).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        assert_eq!(headers["x-request-id"].len(), 32);
        // A 404 too, and an ID the client sent is kept.
        let mut request = from("127.0.0.1:5000", "/nowhere");
        request
            .headers_mut()
            .insert("x-request-id", "proxy-7".parse().unwrap());
        let response = app.send_raw(request).await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["x-request-id"], "proxy-7");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
    }

    #[tokio::test]
    async fn a_client_over_its_limit_gets_429_with_retry_after_and_others_are_served() {
        let app = TestApp::builder()
            .plugin_config::<Security>(SecurityConfig {
                rate_limits: vec![rule("/health", 2, 60), rule("/", 1000, 1)],
                content_security_policy: String::new(),
                ..SecurityConfig::default()
            })
            .start()
            .await;
        for _ in 0..2 {
            let response = app.send_raw(from("192.0.2.9:1", "/health")).await;
            assert_eq!(response.status(), 200);
        }
        let response = app.send_raw(from("192.0.2.9:2", "/health")).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "30");
        assert_eq!(
            response.headers()["x-frame-options"],
            "DENY",
            "a 429 is an answer too"
        );
        // An empty setting sends no policy of this plugin's; core's sandbox of answers that
        // are not a trusted plugin's page stays (see `ui:trusted`).
        assert!(
            response
                .headers()
                .get_all("content-security-policy")
                .iter()
                .all(|policy| policy.as_bytes().starts_with(b"sandbox ")),
            "an empty setting sends none"
        );
        // Another address, and the same address under another rule, are still served.
        assert_eq!(
            app.send_raw(from("192.0.2.10:1", "/health")).await.status(),
            200
        );
        assert_eq!(
            app.send_raw(from("192.0.2.9:3", "/ready")).await.status(),
            200
        );
        // An IPv6 client is one /64.
        for (port, status) in [(1, 200), (2, 200), (3, 429)] {
            let address = format!("[2001:db8::{port}]:{port}");
            assert_eq!(
                app.send_raw(from(&address, "/health")).await.status(),
                status
            );
        }
    }

    /// Behind a trusted proxy, a client that rotates what it writes into `X-Forwarded-For`
    /// is still counted against the address the proxy added.
    #[tokio::test]
    async fn a_client_cannot_choose_its_address_through_x_forwarded_for() {
        let app = TestApp::builder()
            .plugin_config::<Security>(SecurityConfig {
                rate_limits: vec![rule("/health", 2, 60)],
                trust_forwarded_for: true,
                ..SecurityConfig::default()
            })
            .start()
            .await;
        let mut statuses = Vec::new();
        for n in 0..4 {
            let mut request = from("10.0.0.2:1", "/health");
            let forwarded = format!("6.6.6.{n}, 198.51.100.7");
            request
                .headers_mut()
                .insert("x-forwarded-for", forwarded.parse().unwrap());
            statuses.push(app.send_raw(request).await.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 429, 429]);
    }

    #[tokio::test]
    async fn the_tests_it_ships_pass_on_a_fresh_server() {
        let app = TestApp::linked().await;
        let runs = app.plugin_tests("security").await;
        assert!(runs.len() >= 2, "{runs:?}");
        for run in runs {
            assert_eq!(run.status, plexichat::tests::RunStatus::Passed, "{run:?}");
        }
    }
}
