//! What both baselines of `cargo xtask bench` share: `my_awesome_plugin`'s answer to
//! `GET /api/v1/awesome/status`, field for field, so both do the same work to build it
//! (convert to JSON, serialise) and answer the same number of bytes; and how they serve:
//! behind the same kinds of middleware as PlexiChat with its `security` plugin, taken from
//! tower-http and `tower_governor`, so that a ratio against a baseline is the framework's
//! own cost and not the policies' work.

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

/// The plugin's statistics, field for field.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Actions so far.
    pub actions_performed: u64,
    /// When the last one was.
    pub last_action: Option<String>,
    /// Errors so far.
    pub errors: u64,
    /// When the plugin started.
    pub started_at: Option<String>,
    /// Rounds of the background task.
    pub background_runs: u64,
    /// When the last round was.
    pub last_background_run: Option<String>,
}

impl Stats {
    /// What the plugin's start-up records: its start and its background task's first round.
    pub fn at_start() -> Stats {
        let now = timestamp();
        Stats {
            started_at: Some(now.clone()),
            background_runs: 1,
            last_background_run: Some(now),
            ..Stats::default()
        }
    }
}

/// The plugin's configuration with its defaults.
#[derive(Clone, Debug, Serialize)]
struct Config {
    enabled: bool,
    interval: u32,
}

const CONFIG: Config = Config {
    enabled: true,
    interval: 60,
};

/// A timestamp as long as the plugin's RFC 3339 ones (24 bytes), so both answers are the
/// same size; the baseline has no date library to format a real one.
fn timestamp() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    format!("unix:{seconds:0>19}")
}

/// The status answer for `stats`.
pub fn answer(stats: Stats) -> Json<Value> {
    Json(json!({
        "status": "awesome",
        "enabled": CONFIG.enabled,
        "stats": stats,
        "config": CONFIG,
    }))
}

/// Request IDs as the `security` plugin makes them: 32 hex digits from a counter hashed with
/// a key drawn at start.
#[derive(Clone, Default)]
struct Ids;

impl MakeRequestId for Ids {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        static KEYS: OnceLock<std::hash::RandomState> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let keys = KEYS.get_or_init(std::hash::RandomState::new);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{:016x}{:016x}",
            keys.hash_one((count, 0u8)),
            keys.hash_one((count, 1u8))
        );
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// `router` behind what PlexiChat puts around a plugin's route with the `security` plugin on
/// and one rate limit covering every path: a request body limit and a request timeout; a
/// request ID (kept from the client or made, on the request and the answer); the four
/// security headers; a rate limit per client address (`governor`, with its headers); a
/// panic guard on the route.
pub fn with_middleware(router: Router) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let governor = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .use_headers()
        .finish()
        .expect("a rate limit");
    let headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ]
    .map(|(name, value)| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    let [nosniff, policy, frames, referrer] = headers;
    // In PlexiChat's order: the core's limits outermost, then the `security` plugin's
    // middleware in its priority order, then the route.
    router.route_layer(CatchPanicLayer::new()).layer(
        ServiceBuilder::new()
            .layer(RequestBodyLimitLayer::new(2 * 1024 * 1024))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(30),
            ))
            .layer(SetRequestIdLayer::new(request_id.clone(), Ids))
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(nosniff)
            .layer(policy)
            .layer(frames)
            .layer(referrer)
            .layer(GovernorLayer::new(Arc::new(governor))),
    )
}

/// Serves `status` at the plugin's path and `/ready` on the address after `--bind`, behind
/// [`with_middleware`], printing the `serving address=` line the benchmark reads, until
/// Ctrl-C.
pub async fn serve(status: Router) {
    let bind = std::env::args()
        .skip_while(|arg| arg != "--bind")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let router =
        with_middleware(status.route("/ready", get(|| async { Json(json!({ "ready": true })) })));
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {bind}: {error}"));
    eprintln!("serving address={}", listener.local_addr().expect("bound"));
    // The rate limit counts per peer address.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .expect("serve");
}
