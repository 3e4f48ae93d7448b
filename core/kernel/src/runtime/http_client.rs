//! The outbound HTTP client plugins get with `http:client`: one connection pool for the whole
//! server, TLS by rustls with ring (no OpenSSL, no C crypto in the static binary), bounded
//! connect and request times, and a user agent naming the plugin.

use std::marker::PhantomData;
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
        // Another part of the program may have installed a provider first; either is rustls.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
                .pool_idle_timeout(Duration::from_secs(90))
        };
        builder().build().unwrap_or_else(|error| {
            // The system's verifier could not start (a container without a CA bundle):
            // plain HTTP still works, and HTTPS fails verification instead of every request
            // failing.
            tracing::warn!(
                %error,
                "outbound HTTP: the system's root certificates are unavailable; HTTPS requests will fail certificate verification"
            );
            builder()
                .tls_certs_only(Vec::<reqwest::Certificate>::new())
                .build()
                // With a provider installed above and no certificates to parse, nothing is
                // left that can fail.
                .unwrap_or_else(|error| panic!("cannot build the outbound HTTP client: {error}"))
        })
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
