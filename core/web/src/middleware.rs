//! The layers every request passes: a JSON body for every error answer (a page in the common
//! look when a browser navigates to it), and the running-state gate in front of each plugin
//! route (which also marks a trusted plugin's answers).
//!
//! They are tower services written out rather than axum's `map_response` and `from_fn`
//! because those box a future and clone the inner service on every request; profiling the
//! route benchmark put them among the largest costs the framework adds (see
//! `docs/performance.md`). Here a request that succeeds allocates nothing in these layers.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};
use serde_json::json;
use tower::{Layer, Service};

use crate::origins::Trusted;
use plexichat_kernel::error::{ApiError, DatabaseUnreachable, PROBLEM_JSON};
use plexichat_kernel::runtime::state::{Busy, Slot};
use plexichat_kernel::storage::Database;

/// Gives every error answer without a JSON body one: `{"error": <its text or reason>}`,
/// whether it comes from a plugin, from axum (405, extractor rejections) or from the layers
/// below (408, 413).
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonErrorsLayer {
    /// The request timeout, named in the message of the timeout layer's empty 408.
    pub(crate) timeout: Duration,
}

impl<S> Layer<S> for JsonErrorsLayer {
    type Service = JsonErrors<S>;

    fn layer(&self, inner: S) -> JsonErrors<S> {
        JsonErrors {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service of [`JsonErrorsLayer`].
#[derive(Debug, Clone)]
pub(crate) struct JsonErrors<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B, ResBody> Service<axum::http::Request<B>> for JsonErrors<S>
where
    S: Service<axum::http::Request<B>, Response = axum::http::Response<ResBody>>,
    S::Error: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = JsonErrorsFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let for_a_person = wants_html(request.headers());
        JsonErrorsFuture {
            inner: self.inner.call(request),
            timeout: self.timeout,
            for_a_person,
            rewriting: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`JsonErrors`]: the inner future, then, only for an error
    /// answer that needs it, a boxed rewrite of its body.
    pub(crate) struct JsonErrorsFuture<F, E> {
        #[pin]
        inner: F,
        timeout: Duration,
        // The request came from a browser's navigation: an error is answered as a page.
        for_a_person: bool,
        rewriting: Option<BoxFuture<'static, Result<Response, E>>>,
    }
}

impl<F, E, ResBody> Future for JsonErrorsFuture<F, E>
where
    F: Future<Output = Result<axum::http::Response<ResBody>, E>>,
    E: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(rewriting) = this.rewriting {
            return rewriting.as_mut().poll(cx);
        }
        let response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response.map(Body::new),
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        };
        let timeout = *this.timeout;
        let rewriting = if *this.for_a_person {
            if !needs_html_page(&response) {
                return Poll::Ready(Ok(response));
            }
            this.rewriting.insert(Box::pin(async move {
                // Worded as the JSON body would be, then shown as a page.
                let response = if needs_json_body(&response) {
                    json_body(response, timeout).await
                } else {
                    response
                };
                Ok(html_page(response).await)
            }))
        } else {
            if !needs_json_body(&response) {
                return Poll::Ready(Ok(response));
            }
            this.rewriting.insert(Box::pin(
                async move { Ok(json_body(response, timeout).await) },
            ))
        };
        rewriting.as_mut().poll(cx)
    }
}

/// Whether a request is a browser's navigation, whose reader is a person: its `Accept` puts
/// `text/html` first (as browsers do for pages; `fetch` and API clients send `*/*` or JSON).
fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .and_then(|accept| accept.split(',').next())
        .is_some_and(|first| {
            first
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/html"))
        })
}

/// An error answer that is not a page already (a plugin's own HTML error page stays).
fn needs_html_page(response: &Response) -> bool {
    let status = response.status();
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    !is_html && (status.is_client_error() || status.is_server_error())
}

/// The error page a person sees: the status, the message of the JSON error body, and the
/// way back, in the common look. Every header of the answer is kept (`Retry-After`,
/// `Allow`, the request id) but its type and length.
async fn html_page(response: Response) -> Response {
    let status = response.status();
    let (parts, body) = response.into_parts();
    let message = axum::body::to_bytes(body, 64 * 1024)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|json| {
            json.get("error")
                .and_then(|error| error.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{code} {reason} · PlexiChat</title>
<link rel="stylesheet" href="{css}">
<script src="{js}" defer></script>
</head>
<body>
<header class="px-bar" data-px-bar><a class="px-brand" href="/">PlexiChat</a></header>
<main class="px-main px-problem">
<p class="code">{code}</p>
<h1>{reason}</h1>
<p>{message}</p>
<p><a href="/">All plugins</a></p>
</main>
</body>
</html>
"#,
        code = status.as_u16(),
        css = crate::paths::UI_CSS,
        js = crate::paths::UI_JS,
        message = crate::html::escape_html(&message),
    );
    let mut html = (status, axum::response::Html(page)).into_response();
    keep_headers(&parts.headers, &mut html);
    html
}

/// Copies to `rewritten` every header of the answer it replaces (`Retry-After`, `Allow`, the
/// request id, repeated ones too) but those of the old body.
fn keep_headers(original: &axum::http::HeaderMap, rewritten: &mut Response) {
    for (name, value) in original {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().append(name.clone(), value.clone());
        }
    }
}

fn needs_json_body(response: &Response) -> bool {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with(PROBLEM_JSON)
        });
    !is_json && (status.is_client_error() || status.is_server_error())
}

async fn json_body(response: Response, timeout: Duration) -> Response {
    let status = response.status();
    let (parts, body) = response.into_parts();
    // These bodies come from axum and tower-http and are a sentence long; the cap only keeps
    // a misbehaving plugin's large plain-text error from being buffered whole.
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let message = match (text.is_empty(), status) {
        (false, _) => text,
        // The timeout layer answers with an empty 408.
        (true, StatusCode::REQUEST_TIMEOUT) => format!(
            "request not answered within {}",
            humantime::format_duration(timeout)
        ),
        (true, _) => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut json = ApiError::new(status, message).into_response();
    keep_headers(&parts.headers, &mut json);
    json
}

/// While a plugin is not running, its routes answer 503 naming why, without calling the
/// handler; a request it lets through is counted in flight until answered.
#[derive(Debug, Clone)]
pub(crate) struct RunningGateLayer {
    pub(crate) plugin: &'static str,
    pub(crate) slot: Arc<Slot>,
    /// The plugin declares `ui:trusted`: its answers are marked [`Trusted`] for the origin
    /// policy.
    pub(crate) trusted: bool,
    /// The database, when the plugin's permissions reach it (`database`, `plugin:read`,
    /// `plugin:write`): while it is down, the plugin's routes answer 503 at once.
    pub(crate) database: Option<Database>,
}

impl<S> Layer<S> for RunningGateLayer {
    type Service = RunningGate<S>;

    fn layer(&self, inner: S) -> RunningGate<S> {
        RunningGate {
            inner,
            gate: self.clone(),
        }
    }
}

/// The service of [`RunningGateLayer`].
#[derive(Debug, Clone)]
pub(crate) struct RunningGate<S> {
    inner: S,
    gate: RunningGateLayer,
}

impl<S> Service<Request> for RunningGate<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Admitted<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if let Some(database) = &self.gate.database
            && database.health().is_down()
        {
            return Either::Left(ready(Ok(ApiError::database_unreachable().into_response())));
        }
        if let Some(busy) = self.gate.slot.enter() {
            // Which plugin's route this is, for the plugin extractors.
            request
                .extensions_mut()
                .insert(plexichat_kernel::extract::RouteOwner(self.gate.plugin));
            return Either::Right(Admitted {
                inner: self.inner.call(request),
                trusted: self.gate.trusted,
                database: self.gate.database.clone(),
                _busy: busy,
            });
        }
        let plugin = self.gate.plugin;
        let status = self.gate.slot.status();
        Either::Left(ready(Ok(ApiError::unavailable(
            status.reason(plugin).unwrap_or_default(),
        )
        .with_details(json!({ "plugin": plugin, "state": status }))
        .into_response())))
    }
}

pin_project_lite::pin_project! {
    /// A request the gate let through, counted in flight for its plugin until it is
    /// answered, so that the plugin's `stop` waits for it.
    pub(crate) struct Admitted<F> {
        #[pin]
        inner: F,
        trusted: bool,
        database: Option<Database>,
        _busy: Busy,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for Admitted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Poll::Ready(Ok(mut response)) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        if *this.trusted {
            response.extensions_mut().insert(Trusted);
        }
        // A query of this request could not reach the database: have it checked.
        if let Some(database) = this.database
            && response.extensions().get::<DatabaseUnreachable>().is_some()
        {
            database.suspect();
        }
        Poll::Ready(Ok(response))
    }
}
