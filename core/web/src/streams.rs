//! Long-lived connections (event streams and WebSockets): a budget of their own apart from
//! `max_connections` and a cap per client address, so that no client can hold every
//! connection slot with streams that never end. Event streams also have a lifetime and end
//! as shutdown starts draining; a WebSocket's reads and writes fail once the drain times out.
//!
//! The connection layer asks [`Streams::admit`] when a response turns out to be a stream
//! (`Content-Type: text/event-stream`). Admitted, the stream takes one of `max_streams` and
//! gives its connection's ordinary slot back, so ordinary requests keep their capacity; its
//! body ends at `stream_lifetime` (clients reconnect, as `EventSource` does by itself) or
//! when the drain begins; and its response says `Connection: close`, so the connection goes
//! with it. Refused, the client gets 429 (its address holds `max_streams_per_client`) or 503
//! (every stream slot is taken) with a problem body and `Retry-After`, and the connection
//! closes, so a refused client holds nothing.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use plexichat_kernel::error::ApiError;

/// How long a refused client is asked to wait before trying again, in seconds.
const RETRY_AFTER_SECONDS: u64 = 5;

/// What bounds the server's streams.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    /// Streams open at once, across every client.
    pub(crate) max_streams: usize,
    /// Streams open at once from one client address; 0 for no cap per address.
    pub(crate) max_per_client: usize,
    /// How long one stream may last before its body ends.
    pub(crate) lifetime: Duration,
}

/// The server's stream slots and who holds them.
#[derive(Debug)]
pub(crate) struct Streams {
    limits: StreamLimits,
    permits: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The client's address holds `max_streams_per_client` already.
    Client,
    /// Every one of `max_streams` is taken.
    Server,
}

impl Streams {
    pub(crate) fn new(limits: StreamLimits) -> Arc<Streams> {
        Arc::new(Streams {
            limits,
            permits: Arc::new(Semaphore::new(limits.max_streams)),
            per_client: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one stream of `client`, or why there is none.
    pub(crate) fn admit(self: &Arc<Self>, client: IpAddr) -> Result<StreamSlot, Refusal> {
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = per_client.get(&client).copied().unwrap_or(0);
        if self.limits.max_per_client > 0 && held >= self.limits.max_per_client {
            return Err(Refusal::Client);
        }
        let permit = Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| Refusal::Server)?;
        per_client.insert(client, held + 1);
        Ok(StreamSlot {
            streams: Arc::clone(self),
            client,
            _permit: permit,
        })
    }

    /// How long a stream may last.
    pub(crate) fn lifetime(&self) -> Duration {
        self.limits.lifetime
    }

    /// What bounds the streams.
    pub(crate) fn limits(&self) -> StreamLimits {
        self.limits
    }

    /// Streams `client` holds now.
    #[cfg(test)]
    fn held_by(&self, client: IpAddr) -> usize {
        let per_client = self
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        per_client.get(&client).copied().unwrap_or(0)
    }
}

/// One admitted stream's slot, given back when its body ends or is dropped.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    streams: Arc<Streams>,
    client: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut per_client = self
            .streams
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = per_client.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

/// Whether `response` is a long-lived stream.
pub(crate) fn is_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        })
}

/// Marks `response` to close its connection when it ends.
pub(crate) fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// What a refused stream's client gets instead: 429 or 503 with a problem body and
/// `Retry-After`, carrying the headers the refused answer had (the request id, the security
/// headers) but those of its body and its protocol switch.
pub(crate) fn refused(
    refusal: Refusal,
    limits_hint: &StreamLimits,
    instead_of: &Response,
) -> Response {
    let (status, message) = match refusal {
        Refusal::Client => {
            let held = limits_hint.max_per_client;
            (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this client address holds {held} long-lived connection{} (event streams and WebSockets), the most one address may; close one or retry later",
                    if held == 1 { "" } else { "s" }
                ),
            )
        }
        Refusal::Server => (
            StatusCode::SERVICE_UNAVAILABLE,
            "every slot of this server for long-lived connections (event streams and WebSockets) is taken; retry later".to_string(),
        ),
    };
    let mut response = ApiError::new(status, message)
        .with_details(json!({ "retry_after_seconds": RETRY_AFTER_SECONDS }))
        .into_response();
    let headers = response.headers_mut();
    for (name, value) in instead_of.headers() {
        let body_or_protocol = [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::CONTENT_ENCODING,
            header::TRANSFER_ENCODING,
            header::CACHE_CONTROL,
            header::CONNECTION,
            header::UPGRADE,
            header::SEC_WEBSOCKET_ACCEPT,
            header::SEC_WEBSOCKET_PROTOCOL,
            header::SEC_WEBSOCKET_EXTENSIONS,
        ]
        .contains(name);
        if !body_or_protocol {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    closing(response)
}

/// When an admitted stream's body ends: at its lifetime, or when the drain begins. Holds the
/// stream's slot until then.
pub(crate) struct StreamEnd {
    deadline: Pin<Box<tokio::time::Sleep>>,
    drain: Pin<Box<WaitForCancellationFutureOwned>>,
    _slot: StreamSlot,
}

impl StreamEnd {
    pub(crate) fn new(slot: StreamSlot, lifetime: Duration, drain: CancellationToken) -> StreamEnd {
        StreamEnd {
            deadline: Box::pin(tokio::time::sleep(lifetime)),
            drain: Box::pin(drain.cancelled_owned()),
            _slot: slot,
        }
    }

    /// Ready once the stream is to end.
    pub(crate) fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.drain.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        self.deadline.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(max_streams: usize, max_per_client: usize) -> Arc<Streams> {
        Streams::new(StreamLimits {
            max_streams,
            max_per_client,
            lifetime: Duration::from_secs(60),
        })
    }

    #[test]
    fn each_address_has_its_cap_and_the_server_its_budget() {
        let streams = streams(3, 2);
        let one: IpAddr = [127, 0, 0, 1].into();
        let two: IpAddr = [127, 0, 0, 2].into();
        let a = streams.admit(one).unwrap();
        let _b = streams.admit(one).unwrap();
        assert_eq!(streams.admit(one).unwrap_err(), Refusal::Client);
        let _c = streams.admit(two).unwrap();
        assert_eq!(streams.admit(two).unwrap_err(), Refusal::Server);
        drop(a);
        assert_eq!(streams.held_by(one), 1);
        let _d = streams.admit(two).unwrap();
        assert_eq!(streams.held_by(two), 2);
    }

    #[test]
    fn no_cap_per_address_when_it_is_zero() {
        let streams = streams(3, 0);
        let one: IpAddr = [127, 0, 0, 1].into();
        let held: Vec<_> = (0..3).map(|_| streams.admit(one).unwrap()).collect();
        assert_eq!(streams.admit(one).unwrap_err(), Refusal::Server);
        drop(held);
        assert_eq!(streams.held_by(one), 0);
    }

    #[test]
    fn event_streams_are_told_apart_by_their_content_type() {
        let stream = Response::builder()
            .header(header::CONTENT_TYPE, "Text/Event-Stream; charset=utf-8")
            .body(axum::body::Body::empty())
            .unwrap();
        assert!(is_stream(&stream));
        let json = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::empty())
            .unwrap();
        assert!(!is_stream(&json));
    }

    #[test]
    fn a_refusal_is_a_problem_body_that_closes_the_connection() {
        let limits = StreamLimits {
            max_streams: 1,
            max_per_client: 4,
            lifetime: Duration::from_secs(1),
        };
        // What the refused answer was: an event stream with the security plugin's headers.
        let mut stream = Response::new(axum::body::Body::empty());
        let headers = stream.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert("x-request-id", HeaderValue::from_static("abc"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        let response = refused(Refusal::Client, &limits, &stream);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()["x-request-id"], "abc");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert_eq!(
            refused(Refusal::Server, &limits, &stream).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let one = StreamLimits {
            max_per_client: 1,
            ..limits
        };
        let response = refused(Refusal::Client, &one, &stream);
        let body =
            futures_util::FutureExt::now_or_never(axum::body::to_bytes(response.into_body(), 4096))
                .unwrap()
                .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("holds 1 long-lived connection (event"),
            "{text}"
        );
    }
}
