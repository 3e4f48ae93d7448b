//! Keeps plugin pages out of the origin the admin session lives in: every answer but a
//! trusted plugin's is sandboxed into an opaque origin of its own, a trusted plugin's answer
//! refuses foreign openers and frames, and a sandboxed page of this server may still read the
//! API anonymously.
//!
//! Why: the shell and the Test Dashboard hold an admin session (an `HttpOnly` cookie and a
//! CSRF token in the tab's `sessionStorage`). Any script in the same origin could reach both,
//! by opening `/` and hooking its `fetch`, by framing it, or by reading the storage. A plugin
//! whose manifest lacks `ui:trusted` gets `Content-Security-Policy: sandbox …` without
//! `allow-same-origin` on every answer, so its pages run in an opaque origin: the browser
//! refuses them the shell's windows, the origin's storage and its `SameSite` cookies. The
//! trusted plugins (core's shell, docs and test manager) get `Cross-Origin-Opener-Policy:
//! same-origin`, so even a window a sandboxed page opens on `/` is out of its reach.
//!
//! A sandboxed page's `fetch` of this server's API is cross-origin (`Origin: null`), so such
//! requests are answered with `Access-Control-Allow-Origin: null` and never with credentials:
//! the page reads what an anonymous client may read, and no cookie goes with it (the browser
//! sends none from an opaque origin, and would refuse the answer to a credentialed request).
//! Chromium sends no `Referer` from an opaque origin, so a page of this server cannot be told
//! from another site's sandboxed frame: the anonymous API is readable from such frames too,
//! as it is by any client that reaches the server.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::future::Either;
use tower::{Layer, Service};

/// The marker a trusted plugin's answers carry (set by the running-state gate in front of
/// its routes), which exempts them from the sandbox.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trusted;

/// What an untrusted answer's document may do: run its scripts, submit its forms, open
/// windows (which do not inherit the sandbox, so links work as links), download and show
/// dialogs. Never `allow-same-origin`: that is the point.
const SANDBOX: &str = "sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox allow-downloads allow-modals";

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The methods a sandboxed page may use on the API.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// Applies the origin policy to every answer; see the module's documentation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OriginPolicyLayer;

impl<S> Layer<S> for OriginPolicyLayer {
    type Service = OriginPolicy<S>;

    fn layer(&self, inner: S) -> OriginPolicy<S> {
        OriginPolicy { inner }
    }
}

/// The service of [`OriginPolicyLayer`].
#[derive(Debug, Clone)]
pub(crate) struct OriginPolicy<S> {
    inner: S,
}

impl<S> Service<Request> for OriginPolicy<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, Policed<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let from_a_sandbox = from_a_sandbox(request.headers());
        if from_a_sandbox
            && request.method() == Method::OPTIONS
            && request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return Either::Left(ready(Ok(preflight(request.headers()))));
        }
        Either::Right(Policed {
            inner: self.inner.call(request),
            from_a_sandbox,
        })
    }
}

pin_project_lite::pin_project! {
    /// The inner answer, given the origin policy's headers when it is ready.
    pub(crate) struct Policed<F> {
        #[pin]
        inner: F,
        from_a_sandbox: bool,
    }
}

impl<F, E> Future for Policed<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            other => return other,
        };
        let trusted = response.extensions().get::<Trusted>().is_some();
        apply(response.headers_mut(), trusted, *this.from_a_sandbox);
        Poll::Ready(Ok(response))
    }
}

/// The origin policy's headers on one answer.
fn apply(headers: &mut HeaderMap, trusted: bool, from_a_sandbox: bool) {
    if trusted {
        headers
            .entry(header::HeaderName::from_static(
                "cross-origin-opener-policy",
            ))
            .or_insert(HeaderValue::from_static("same-origin"));
        // The `security` plugin's policy refuses framing already; without it, or where a
        // route chose its own framing (the docs' frame for HTML docs), this keeps the
        // route's choice and otherwise refuses.
        headers
            .entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("frame-ancestors 'none'"),
            );
        }
    } else {
        // Appended: every policy a response carries is enforced, so the `security` plugin's
        // (or the route's own) stays in force beside the sandbox.
        headers.append(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX),
        );
    }
    if from_a_sandbox {
        allow_null_origin(headers);
    }
}

/// Whether a request comes from a page in an opaque origin: `Origin: null`.
fn from_a_sandbox(headers: &HeaderMap) -> bool {
    headers.get(header::ORIGIN).map(HeaderValue::as_bytes) == Some(b"null")
}

fn allow_null_origin(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("null"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// The answer to a sandboxed page's CORS preflight: its method if allowed, the headers it
/// asks for, no credentials.
fn preflight(request: &HeaderMap) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    allow_null_origin(headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    apply(headers, false, false);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn a_null_origin_may_read_without_credentials_and_a_named_one_may_not() {
        let mut answer = HeaderMap::new();
        assert!(from_a_sandbox(&headers(&[("origin", "null")])));
        apply(&mut answer, false, true);
        assert_eq!(answer[header::ACCESS_CONTROL_ALLOW_ORIGIN], "null");
        assert!(!answer.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert!(!from_a_sandbox(&headers(&[(
            "origin",
            "https://evil.example"
        )])));
        assert!(!from_a_sandbox(&HeaderMap::new()));
        let asked = headers(&[
            ("origin", "null"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ]);
        let answer = preflight(&asked);
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            answer.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "content-type"
        );
        assert!(
            !answer
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
        );
    }

    #[test]
    fn untrusted_answers_are_sandboxed_beside_the_policy_they_have() {
        let mut answer = headers(&[("content-security-policy", "default-src 'self'")]);
        apply(&mut answer, false, false);
        let policies: Vec<_> = answer
            .get_all(header::CONTENT_SECURITY_POLICY)
            .iter()
            .collect();
        assert_eq!(policies, ["default-src 'self'", SANDBOX]);
        assert!(!SANDBOX.contains("allow-same-origin"));
        assert!(!answer.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[test]
    fn trusted_answers_keep_their_framing_and_close_the_opener() {
        let mut answer = headers(&[("x-frame-options", "SAMEORIGIN")]);
        apply(&mut answer, true, false);
        assert_eq!(answer["cross-origin-opener-policy"], "same-origin");
        assert_eq!(answer[header::X_FRAME_OPTIONS], "SAMEORIGIN");
        assert_eq!(
            answer[header::CONTENT_SECURITY_POLICY],
            "frame-ancestors 'none'"
        );
    }
}
