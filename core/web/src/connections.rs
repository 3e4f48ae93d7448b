//! The connection layer under the router: accepts connections up to a limit, closes the ones
//! that idle or dribble, and drains them at shutdown within a deadline, so that no client can
//! hold the server or keep it from exiting.
//!
//! axum's own `serve` sets none of these limits: a client that sends one byte and waits keeps
//! its connection (and a SIGTERM'd server) forever, and a thousand idle ones exhaust a common
//! file-descriptor limit. Here every connection is a task that watches its own activity:
//!
//! - a request head (request line and headers) that has begun must be complete within
//!   `header_read_timeout`;
//! - with no request in flight (a request is in flight until its response body is sent), a
//!   connection without traffic for `idle_timeout` is closed;
//! - at most `max_connections` are served at once; further clients wait in the listen backlog
//!   (a rate-limited warning says so), and failing `accept` calls (out of file descriptors)
//!   are logged, rate-limited, and retried after a pause instead of spinning;
//! - at shutdown the listener closes, every connection finishes its in-flight request and
//!   closes, and whatever is left after `drain_timeout` is closed;
//! - a response that is an event stream is admitted by `streams` (its own budget, a cap per
//!   client address, a lifetime; ended as the drain begins) or refused there.
//!
//! An upgraded connection (a WebSocket) leaves hyper and its watchdog: the plugin that took it
//! owns its timing (pings). It trades its `max_connections` slot for one of the long-lived
//! budget (`streams`), and still counts for the drain, because the socket carries its slot and
//! a drain token wherever it goes; after `drain_timeout` its reads and writes fail (a read
//! waiting for data is woken to fail), which ends the plugin's loop.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tower::Service;

use crate::log_limit::LogLimit;
use crate::streams::{self, StreamEnd, StreamLimits, Streams};

/// What the connection layer enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) drain_timeout: Duration,
    pub(crate) streams: StreamLimits,
}

/// A connection's one of `max_connections`, shared by its socket and its requests: a request
/// whose response becomes an event stream gives it back (the stream holds a stream slot
/// instead), and a socket upgraded to a WebSocket trades it for a stream slot it holds until
/// it closes, so long-lived connections never take ordinary requests' capacity.
#[derive(Clone)]
struct ConnectionPermit(Arc<std::sync::Mutex<Held>>);

/// What a connection holds: an ordinary slot, or (upgraded) a stream slot.
struct Held {
    ordinary: Option<OwnedSemaphorePermit>,
    stream: Option<streams::StreamSlot>,
}

impl ConnectionPermit {
    fn new(permit: OwnedSemaphorePermit) -> ConnectionPermit {
        ConnectionPermit(Arc::new(std::sync::Mutex::new(Held {
            ordinary: Some(permit),
            stream: None,
        })))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn release(&self) {
        drop(self.held().ordinary.take());
    }

    /// Gives the ordinary slot back and holds `slot` for as long as the connection lives.
    fn trade_for(&self, slot: streams::StreamSlot) {
        let mut held = self.held();
        held.ordinary = None;
        held.stream = Some(slot);
    }
}

/// File descriptors kept free for everything that is not a client connection (the
/// listener, log files, the database, plugins' own files).
const RESERVED_DESCRIPTORS: u64 = 64;

/// Serves `router` on `listener` until `shutdown` resolves, then drains. Returns when every
/// connection is closed, at most `drain_timeout` after `shutdown` resolved.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Connections::new(limits);
    tokio::pin!(shutdown);
    loop {
        let Some(permit) = connections.permit(shutdown.as_mut()).await else {
            break;
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if connections.accept_failed(&error, shutdown.as_mut()).await.is_break() {
                        break;
                    }
                    continue;
                }
            },
        };
        connections.spawn(stream, peer, permit, &router);
    }
    drop(listener);
    connections.drain().await;
}

/// The state [`serve`] keeps across connections: the permits that bound them, the tasks that
/// serve them, and the tokens that drain and then close them.
struct Connections {
    limits: Limits,
    /// `limits.max_connections`, lowered to what the file-descriptor limit allows.
    max_connections: usize,
    permits: Arc<Semaphore>,
    streams: Arc<Streams>,
    tracker: TaskTracker,
    drain: CancellationToken,
    force: CancellationToken,
    /// What every read and write checks: an atomic load, where the token's own check locks.
    forced: Arc<AtomicBool>,
    /// Rate-limits the warning that the connection limit is reached.
    full: LogLimit,
    /// Rate-limits the error that `accept` fails.
    failing: LogLimit,
}

impl Connections {
    fn new(limits: Limits) -> Connections {
        let max_connections = allowed_connections(limits.max_connections);
        Connections {
            limits,
            max_connections,
            permits: Arc::new(Semaphore::new(max_connections)),
            streams: Streams::new(limits.streams),
            tracker: TaskTracker::new(),
            drain: CancellationToken::new(),
            force: CancellationToken::new(),
            forced: Arc::new(AtomicBool::new(false)),
            full: LogLimit::new(Duration::from_secs(10)),
            failing: LogLimit::new(Duration::from_secs(10)),
        }
    }

    /// A permit for the next connection, waiting (with a warning) while every one is taken;
    /// none once `shutdown` resolves first.
    async fn permit(
        &self,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(permit);
        }
        if let Some(suppressed) = self.full.allow() {
            tracing::warn!(
                max_connections = self.max_connections,
                suppressed,
                "connection limit reached; new clients wait until a connection closes"
            );
        }
        tokio::select! {
            biased;
            () = &mut shutdown => None,
            permit = Arc::clone(&self.permits).acquire_owned() => permit.ok(),
        }
    }

    /// Handles a failed `accept`: breaks if `shutdown` resolves during the pause it takes.
    async fn accept_failed(
        &self,
        error: &std::io::Error,
        shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> ControlFlow<()> {
        // A peer that reset before we accepted is routine; anything else (out of file
        // descriptors, mostly) would make an immediate retry spin.
        if !is_connection_error(error) {
            if let Some(suppressed) = self.failing.allow() {
                tracing::error!(%error, suppressed, "cannot accept connections; retrying");
            }
            tokio::select! {
                () = shutdown => return ControlFlow::Break(()),
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        ControlFlow::Continue(())
    }

    /// Serves `stream` in a task of its own, which holds `permit` and a drain token.
    fn spawn(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
        router: &Router,
    ) {
        // Small JSON answers should not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let permit = ConnectionPermit::new(permit);
        let io = Watched {
            inner: stream,
            activity: Arc::new(Activity::new()),
            _permit: permit.clone(),
            _open: self.tracker.token(),
            forced: Arc::clone(&self.forced),
            force: self.force.clone(),
            closed: None,
        };
        let admission = Arc::new(Admission {
            streams: Arc::clone(&self.streams),
            permit,
            drain: self.drain.clone(),
        });
        self.tracker.spawn(connection(
            io,
            peer,
            (router.clone(), admission),
            self.limits,
            (self.drain.clone(), self.force.clone()),
        ));
    }

    /// Asks every connection to finish and waits for them up to `drain_timeout`, then closes
    /// what is left and waits [`FORCE_GRACE`] more at most.
    async fn drain(self) {
        let limits = self.limits;
        self.drain.cancel();
        self.tracker.close();
        if tokio::time::timeout(limits.drain_timeout, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.tracker.len(),
                drain_timeout = %humantime::format_duration(limits.drain_timeout),
                "closing connections still open after the drain timeout"
            );
            self.forced.store(true, Ordering::Release);
            self.force.cancel();
            // Connection tasks return at once; an upgraded socket fails its next read or write,
            // but its owner may be waiting on something else: it is not waited for long, and
            // the process exits over it.
            if tokio::time::timeout(FORCE_GRACE, self.tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    open = self.tracker.len(),
                    "upgraded connections (WebSockets) still open after the drain; leaving them"
                );
            }
        }
    }
}

/// How long shutdown waits, after closing connections by force, for their sockets to go.
const FORCE_GRACE: Duration = Duration::from_secs(1);

/// `configured`, lowered if the process may not open that many files.
fn allowed_connections(configured: usize) -> usize {
    let Some(limit) = descriptor_limit() else {
        return configured;
    };
    let allowed =
        usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS).max(1)).unwrap_or(usize::MAX);
    if allowed < configured {
        tracing::warn!(
            max_connections = configured,
            allowed,
            descriptor_limit = limit,
            "max_connections is above what the file-descriptor limit allows; serving at most \
             {allowed} connections (raise `ulimit -n` to serve more)"
        );
        return allowed;
    }
    configured
}

/// The soft limit on open files, if the platform has one.
#[cfg(unix)]
fn descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` only writes the struct it is given, which lives on this stack.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    // `rlim_t` is `u64` on Linux but not everywhere.
    #[allow(clippy::unnecessary_cast)]
    let current = limit.rlim_cur as u64;
    (status == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(current)
}

#[cfg(not(unix))]
fn descriptor_limit() -> Option<u64> {
    None
}

fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, times out, or is closed by shutdown.
async fn connection(
    io: Watched,
    peer: SocketAddr,
    (router, admission): (Router, Arc<Admission>),
    limits: Limits,
    (drain, force): (CancellationToken, CancellationToken),
) {
    let activity = Arc::clone(&io.activity);
    let io = TokioIo::new(io);
    let service = Requests {
        router,
        peer,
        activity: Arc::clone(&activity),
        admission,
    };
    let connection = hyper::server::conn::http1::Builder::new()
        // The watchdog below times heads and idle periods itself; hyper's own header timer
        // would also count the wait between requests as header time.
        .header_read_timeout(None)
        .serve_connection(io, service)
        // The upgraded stream keeps its permit and drain token: they live in `Watched`.
        .with_upgrades();
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let (deadline, _) = activity.deadline(&limits);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                // The deadline may have moved while we slept; only a passed one closes.
                if let Some((deadline, why)) = activity.close_at(&limits)
                    && Instant::now() >= deadline
                {
                    tracing::debug!(%peer, reason = why, "closing connection");
                    return;
                }
            }
            () = drain.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            () = force.cancelled() => return,
        }
    }
}

/// What the watchdog knows about one connection, written by its reads, writes and requests.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `epoch` of the last traffic or the end of the last request.
    last_active: AtomicU64,
    /// Milliseconds after `epoch` when the bytes of the pending request head began to
    /// arrive, or [`NOT_STARTED`].
    head_started: AtomicU64,
    /// Set when a response switched protocols: the socket is about to leave hyper for the
    /// plugin that upgraded it, and its waiting reads must listen for the end of the drain.
    upgraded: AtomicBool,
}

const NOT_STARTED: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(0),
            head_started: AtomicU64::new(NOT_STARTED),
            upgraded: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.now();
        self.last_active.store(now, Ordering::Relaxed);
        // Bytes that arrive while no request is being served begin the next request head.
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == NOT_STARTED
        {
            self.head_started.store(now, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_active.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NOT_STARTED, Ordering::Relaxed);
    }

    fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.wrote();
    }

    /// When the watchdog looks next, and why: the moment the connection is to be closed if
    /// nothing happens meanwhile, but never later than one `header_read_timeout` from now.
    ///
    /// That cap is what lets a request head that begins while the watchdog sleeps go
    /// unannounced (no wake-up per request): the watchdog was armed before the head began,
    /// so it wakes at most `header_read_timeout` after that, and then sleeps until the head's
    /// own deadline. An idle connection costs one wake-up per period.
    fn deadline(&self, limits: &Limits) -> (Instant, &'static str) {
        let look_again = Instant::now() + limits.header_read_timeout;
        match self.close_at(limits) {
            Some((at, why)) if at <= look_again => (at, why),
            _ => (look_again, "periodic check"),
        }
    }

    /// When the connection is to be closed if nothing happens meanwhile, and why; `None`
    /// while a request is in flight (the request timeout bounds it).
    fn close_at(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        let at =
            |millis: u64, timeout: Duration| self.epoch + Duration::from_millis(millis) + timeout;
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(match self.head_started.load(Ordering::Relaxed) {
            NOT_STARTED => (
                at(
                    self.last_active.load(Ordering::Relaxed),
                    limits.idle_timeout,
                ),
                "idle timeout",
            ),
            started => (
                at(started, limits.header_read_timeout),
                "header read timeout",
            ),
        })
    }
}

/// The socket, reporting its traffic to the connection's [`Activity`], and holding what a
/// connection holds for as long as the socket lives, upgraded or not.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// One of `max_connections`, unless an event stream gave it back.
    _permit: ConnectionPermit,
    /// Keeps the drain waiting for this socket.
    _open: TaskTrackerToken,
    /// Set when the drain is over: from then on reads and writes fail.
    forced: Arc<AtomicBool>,
    /// Cancelled at the same moment, to wake an upgraded socket's owner blocked on a read.
    force: CancellationToken,
    /// `force`'s future, made and polled only by an upgraded socket's waiting reads (a plain
    /// connection has its watchdog, and skips the registration).
    closed: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl Watched {
    fn forced(&self) -> bool {
        self.forced.load(Ordering::Acquire)
    }
}

fn closed_by_shutdown() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "the server closed the connection at the end of its drain",
    )
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.forced() {
            return Poll::Ready(Err(closed_by_shutdown()));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        match result {
            Poll::Ready(Ok(())) => self.activity.read(buf.filled().len() - before),
            // Only an upgraded socket has no watchdog to close it.
            Poll::Pending if self.activity.upgraded.load(Ordering::Acquire) => {
                let this = &mut *self;
                let closed = this
                    .closed
                    .get_or_insert_with(|| Box::pin(this.force.clone().cancelled_owned()));
                if closed.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(closed_by_shutdown()));
                }
            }
            _ => {}
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.forced() {
            return Poll::Ready(Err(closed_by_shutdown()));
        }
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(_)) = result {
            self.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.forced() {
            return Poll::Ready(Err(closed_by_shutdown()));
        }
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(_)) = result {
            self.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The per-connection service hyper calls: gives each request the peer address (axum's
/// `ConnectInfo<SocketAddr>`) and counts it in flight while the router answers.
#[derive(Clone)]
struct Requests {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    // One per connection, shared by its requests: a request clones one `Arc`.
    admission: Arc<Admission>,
}

/// What a response that turns out to be an event stream needs: the server's stream slots,
/// its connection's ordinary slot to give back, and the drain that ends it.
struct Admission {
    streams: Arc<Streams>,
    permit: ConnectionPermit,
    drain: CancellationToken,
}

impl Admission {
    /// `response` as sent: an ordinary one as it is; a stream admitted (its body ending at
    /// its lifetime or the drain, its connection's ordinary slot given back) or refused.
    fn admit(&self, peer: SocketAddr, response: Response) -> (Response, Option<StreamEnd>) {
        let upgrade = response.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS;
        if !upgrade && !streams::is_stream(&response) {
            return (response, None);
        }
        match self.streams.admit(peer.ip()) {
            // A WebSocket lives in the upgraded socket, not in a body: the connection holds
            // the slot until the socket closes (the drain ends it with the others).
            Ok(slot) if upgrade => {
                self.permit.trade_for(slot);
                (response, None)
            }
            Ok(slot) => {
                self.permit.release();
                let end = StreamEnd::new(slot, self.streams.lifetime(), self.drain.clone());
                (streams::closing(response), Some(end))
            }
            // Refused instead of switching protocols: hyper does not upgrade, and the
            // handler's upgrade never completes.
            Err(refusal) => {
                tracing::debug!(%peer, ?refusal, upgrade, "long-lived connection refused");
                (
                    streams::refused(refusal, &self.streams.limits(), &response),
                    None,
                )
            }
        }
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Requests {
    type Response = hyper::Response<CountedBody>;
    type Error = Infallible;
    type Future = Counted;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.activity.request_started();
        Counted {
            inner: self.router.clone().call(request.map(Body::new)),
            in_flight: Some(InFlight(Arc::clone(&self.activity))),
            admission: Some((Arc::clone(&self.admission), self.peer)),
        }
    }
}

/// Marks the end of a request however it ends: its response body fully sent, or dropped
/// with the connection.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

pin_project_lite::pin_project! {
    /// The router's answer; the request stays in flight in its body.
    struct Counted {
        #[pin]
        inner: RouteFuture<Infallible>,
        in_flight: Option<InFlight>,
        admission: Option<(Arc<Admission>, SocketAddr)>,
    }
}

impl Future for Counted {
    type Output = Result<hyper::Response<CountedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(Ok(response)) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        let in_flight = this.in_flight.take();
        // Set before hyper sends the 101 and hands the socket over, so the new owner's
        // first read already sees it.
        if response.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS
            && let Some(InFlight(activity)) = &in_flight
        {
            activity.upgraded.store(true, Ordering::Release);
        }
        let (response, stream) = match this.admission.take() {
            Some((admission, peer)) => admission.admit(peer, response),
            None => (response, None),
        };
        Poll::Ready(Ok(response.map(|inner| CountedBody {
            inner,
            stream,
            _in_flight: in_flight,
        })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight until it is sent or dropped, so the
    /// watchdog never closes a connection in the middle of a body.
    struct CountedBody {
        #[pin]
        inner: Body,
        // An admitted event stream's end: its lifetime, or the drain.
        stream: Option<StreamEnd>,
        _in_flight: Option<InFlight>,
    }
}

impl hyper::body::Body for CountedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Some(end) = this.stream
            && end.poll_due(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        this.inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 8,
        drain_timeout: Duration::from_secs(10),
        streams: StreamLimits {
            max_streams: 4,
            max_per_client: 2,
            lifetime: Duration::from_secs(60),
        },
    };

    /// `(what happens, close-at after epoch in seconds, reason)`, one row per situation, and
    /// the watchdog's next look, capped at one header period.
    #[tokio::test(start_paused = true)]
    async fn each_situation_has_its_deadline() {
        let check = |activity: &Activity, expect: Option<(u64, &str)>, look: (u64, &str)| {
            let after = |at: Instant| at.duration_since(activity.epoch).as_secs();
            let close = activity.close_at(&LIMITS).map(|(at, why)| (after(at), why));
            let (next, next_why) = activity.deadline(&LIMITS);
            assert_eq!((close, (after(next), next_why)), (expect, look));
        };
        let activity = Activity::new();
        check(
            &activity,
            Some((60, "idle timeout")),
            (10, "periodic check"),
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        activity.read(1);
        check(
            &activity,
            Some((15, "header read timeout")),
            (15, "header read timeout"),
        );
        activity.read(100);
        check(
            &activity,
            Some((15, "header read timeout")),
            (15, "header read timeout"),
        );
        activity.request_started();
        tokio::time::advance(Duration::from_secs(20)).await;
        check(&activity, None, (35, "periodic check"));
        activity.request_finished();
        check(
            &activity,
            Some((85, "idle timeout")),
            (35, "periodic check"),
        );
        activity.read(0);
        check(
            &activity,
            Some((85, "idle timeout")),
            (35, "periodic check"),
        );
        tokio::time::advance(Duration::from_secs(50)).await;
        check(&activity, Some((85, "idle timeout")), (85, "idle timeout"));
    }
}
