//! The HTTP server, above the kernel and backups: the core routes, every plugin's routes
//! under its prefix, the admin API, the input extractors (`Json`, `Query`, `Path` with
//! problem bodies), the connection layer, and the serve loop that runs a server's life, every phase of it bounded: `starting` → `init`s →
//! `startup` → serving → drain → `shutdown` → `stop`s and tasks → `stopped`.

pub mod admin;
pub mod assets;
mod backoff;
mod chain;
mod connections;
pub mod core_routes;
pub mod html;
pub mod input;
mod log_limit;
mod metrics;
mod middleware;
pub mod openapi;
mod origins;
mod session;
mod settings;
mod streams;
mod system;

use std::convert::Infallible;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::metrics::{HttpMetrics, RecordLayer};
use plexichat_kernel::abi::event::{Shutdown, Starting, Startup, Stopped};
use plexichat_kernel::config::ServerSection;
use plexichat_kernel::config::secret::Secret;
use plexichat_kernel::error::ApiError;
use plexichat_kernel::runtime::info::{Audience, PluginInfo};
use plexichat_kernel::runtime::{Delivery, Host, InitFailure, Runtime, behind, panic_message};

/// The runtime behind the router state, for the core's own handlers: plugins' handlers get
/// their context through the kernel's extractors instead.
pub(crate) struct Hosted(pub(crate) Runtime);

impl axum::extract::FromRequestParts<Host> for Hosted {
    type Rejection = Infallible;

    async fn from_request_parts(
        _parts: &mut axum::http::request::Parts,
        host: &Host,
    ) -> Result<Hosted, Infallible> {
        Ok(Hosted(behind::of_host(host).clone()))
    }
}

use crate::middleware::{JsonErrorsLayer, RunningGateLayer};
use connections::Limits;

/// Limits applied to every connection and request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// A request that has not been answered by then gets `408` and its handler is dropped.
    pub request_timeout: Duration,
    /// Largest accepted request body in bytes; larger bodies get `413`.
    pub body_limit: usize,
    /// The bearer token of `/api/v1/admin/*`; without one, every admin request gets 401.
    pub admin_token: Option<Secret>,
    /// Refuse to serve if any plugin fails to start, instead of serving the others.
    pub strict: bool,
    /// A request head that has begun must be complete within this time.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no traffic is closed after this time.
    pub idle_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before closing connections.
    pub drain_timeout: Duration,
    /// Most event streams open at once, apart from `max_connections`.
    pub max_streams: usize,
    /// Most event streams open at once from one client address; 0 for no cap.
    pub max_streams_per_client: usize,
    /// How long one event stream may last before its body ends (clients reconnect).
    pub stream_lifetime: Duration,
    /// Where `/metrics` is served without authentication; `None` serves it on the main
    /// address behind the admin token instead.
    pub metrics_bind: Option<std::net::SocketAddr>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions::from(&ServerSection::default())
    }
}

/// The limits a configuration's `[server]` section sets.
impl From<&ServerSection> for ServerOptions {
    fn from(section: &ServerSection) -> Self {
        ServerOptions {
            request_timeout: section.request_timeout,
            body_limit: usize::try_from(section.body_limit).unwrap_or(usize::MAX),
            admin_token: section.admin_token.clone(),
            strict: false,
            header_read_timeout: section.header_read_timeout,
            idle_timeout: section.idle_timeout,
            max_connections: section.max_connections as usize,
            drain_timeout: section.drain_timeout,
            max_streams: section.max_streams as usize,
            max_streams_per_client: section.max_streams_per_client as usize,
            stream_lifetime: section.stream_lifetime,
            metrics_bind: section.metrics_bind,
        }
    }
}

/// Why the server could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// axum refused a route (two patterns that match the same requests).
    #[error("route {path} of plugin `{plugin}` conflicts with another route: {reason}")]
    RouteConflict {
        /// Owning plugin.
        plugin: &'static str,
        /// Full path.
        path: String,
        /// axum's explanation.
        reason: String,
    },
    /// The socket failed.
    #[error("server i/o error")]
    Io(#[from] std::io::Error),
    /// `strict` was set and plugins failed to start.
    #[error("{}", strict_message(.0))]
    Strict(Vec<InitFailure>),
}

fn strict_message(failures: &[InitFailure]) -> String {
    let list: Vec<String> = failures
        .iter()
        .map(|failure| format!("`{}`: {}", failure.plugin, failure.error))
        .collect();
    format!(
        "refusing to serve in strict mode: plugins failed to start: {}",
        list.join("; ")
    )
}

/// Builds the whole application with default [`ServerOptions`].
pub fn app(runtime: &Runtime) -> Result<Router, ServerError> {
    app_with(runtime, &ServerOptions::default())
}

/// Builds the whole application: core routes, plugin routes, the shared runtime, and the
/// middleware that enforces `options`.
///
/// Tests drive this with `oneshot`; [`serve`] puts it on a socket.
pub fn app_with(runtime: &Runtime, options: &ServerOptions) -> Result<Router, ServerError> {
    build(runtime, options).map(|(router, _)| router)
}

/// The paths of the server's own public routes (the admin API's are in `admin`); their one
/// list is `core_routes`.
pub(crate) mod paths {
    pub(crate) const HEALTH: &str = "/health";
    pub(crate) const READY: &str = "/ready";
    pub(crate) const PLUGIN_HEALTH: &str = "/api/v1/plugins/{name}/health";
    pub(crate) const PLUGINS: &str = "/api/v1/plugins";
    pub(crate) const PLUGIN: &str = "/api/v1/plugins/{name}";
    pub(crate) const OPENAPI: &str = "/openapi.json";
    /// The stylesheet every page links.
    pub(crate) const UI_CSS: &str = "/ui/plexichat.css";
    /// The script every page loads: the bar at the top, readable times.
    pub(crate) const UI_JS: &str = "/ui/plexichat.js";
}

/// [`app_with`], and the request metrics its routes record into.
fn build(
    runtime: &Runtime,
    options: &ServerOptions,
) -> Result<(Router, Arc<HttpMetrics>), ServerError> {
    let metrics = Arc::new(HttpMetrics::new(route_table(runtime)));
    // Core's own routes, from their one list; `/metrics` is among them only when it is not
    // served on an address of its own.
    let wiring = core_routes::Wiring::new(runtime, options, Arc::clone(&metrics));
    let mut router: Router<Host> = core_routes::router(&wiring);

    // Group methods by path first: axum merges two `route` calls on one path, but grouping
    // makes the merge explicit and keeps every insertion a distinct path.
    let chain = chain::Chain::new(runtime);
    let mut by_path: BTreeMap<&str, (&'static str, MethodRouter<Host>)> = BTreeMap::new();
    for route in runtime.registry().routes() {
        let method_router = guard_route(runtime, &chain, route.plugin, (route.descriptor.make)());
        match by_path.remove(route.full_path.as_str()) {
            Some((plugin, existing)) => {
                by_path.insert(&route.full_path, (plugin, existing.merge(method_router)));
            }
            None => {
                by_path.insert(&route.full_path, (route.plugin, method_router));
            }
        }
    }
    for (path, (plugin, method_router)) in by_path {
        router = add_route(router, plugin, path, method_router)?;
    }
    // UI pages are the plugin's routes too: the same guards, the same middleware.
    for plugin in runtime.registry().plugins() {
        if let Some(assets) = assets::PluginAssets::of(plugin) {
            for (path, method_router) in assets.routes() {
                let guarded = guard_route(runtime, &chain, plugin.name, method_router);
                router = add_route(router, plugin.name, &path, guarded)?;
            }
        }
    }

    // `ServiceBuilder` runs top to bottom: the first layer sees the request first and the
    // response last.
    let middleware = ServiceBuilder::new()
        // Which origin an answer's page runs in, decided last, once its headers are final.
        .layer(origins::OriginPolicyLayer)
        // Last word on every answer: an error without a JSON body gets one, including the
        // ones produced by the layers below and by axum itself (405, extractor rejections).
        .layer(JsonErrorsLayer {
            timeout: options.request_timeout,
        })
        .layer(RequestBodyLimitLayer::new(options.body_limit))
        // An empty 408 when the handler has not answered in time (the handler is dropped).
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ));
    // The runtime is router state rather than a request extension: handlers reach it
    // without a per-request clone and insert.
    let unmatched = Arc::clone(&metrics);
    let router = chain
        .wrap_app(router.fallback(move |request: Request| {
            unmatched.count_unmatched();
            not_found(request)
        }))
        // Outside every other layer of a route, so its time includes all middleware.
        .route_layer(RecordLayer(Arc::clone(&metrics)));
    Ok((
        router
            .layer(middleware)
            .with_state(behind::host(runtime.clone())),
        metrics,
    ))
}

/// Every route of the application with its owner, for the metrics' labels.
fn route_table(runtime: &Runtime) -> Vec<(&'static str, String)> {
    let mut table: Vec<(&'static str, String)> = core_routes::paths()
        .map(|path| (metrics::CORE, path.to_string()))
        .collect();
    table.extend(
        runtime
            .registry()
            .routes()
            .iter()
            .map(|route| (route.plugin, route.full_path.clone())),
    );
    for plugin in runtime.registry().plugins() {
        if !plugin.ui_files.is_empty() {
            table.extend(assets::route_paths(plugin.name).map(|path| (plugin.name, path)));
        }
    }
    table
}

/// The registry rejects exact duplicates with both names; axum's router panics on the rarer
/// overlaps it finds itself, and that panic must not take the process down.
fn add_route(
    router: Router<Host>,
    plugin: &'static str,
    path: &str,
    method_router: MethodRouter<Host>,
) -> Result<Router<Host>, ServerError> {
    std::panic::catch_unwind(AssertUnwindSafe(move || router.route(path, method_router))).map_err(
        |panic| ServerError::RouteConflict {
            plugin,
            path: path.to_string(),
            reason: panic_message(panic.as_ref()),
        },
    )
}

/// Wraps one of `plugin`'s routes in the two guards every plugin route has:
///
/// - while the plugin is not running, answer 503 naming why, without calling the handler
///   (one atomic load per request);
/// - a panic in the handler becomes a 500 for that request only, logged with the plugin's
///   name and counted in its route stats, while every other request goes on.
fn guard_route(
    runtime: &Runtime,
    chain: &chain::Chain,
    plugin: &'static str,
    route: MethodRouter<Host>,
) -> MethodRouter<Host> {
    let entry = runtime
        .entry(plugin)
        .expect("the registry resolved every route to a compiled-in plugin");
    let counters = Arc::clone(&entry.route_counters);
    let contain_panics = CatchPanicLayer::custom(move |panic: Box<dyn Any + Send + 'static>| {
        counters.panics.fetch_add(1, Ordering::Relaxed);
        tracing::error!(plugin, error = %panic_message(panic.as_ref()), "route handler panicked");
        ApiError::plugin_failed(plugin).into_response()
    });
    let permissions = runtime
        .registry()
        .plugin(plugin)
        .map_or(&[][..], |descriptor| descriptor.permissions);
    let trusted = permissions.contains(&plexichat_rules::UI_TRUSTED_PERMISSION);
    let uses_storage = permissions
        .iter()
        .any(|permission| plexichat_rules::STORAGE_PERMISSIONS.contains(permission));
    let only_when_running = RunningGateLayer {
        plugin,
        slot: Arc::clone(&entry.slot),
        trusted,
        database: uses_storage.then(|| runtime.storage().database().clone()),
    };
    let guarded = route.layer(contain_panics).layer(only_when_running);
    chain.wrap_route(plugin, guarded)
}

/// Serves `runtime` on `listener` until `shutdown` resolves, then drains and stops.
///
/// Every phase is bounded: each lifecycle event's handlers, each `init` and `stop`, and
/// each plugin's tasks by the phase timeout, the drain by `drain_timeout`. A handler or hook
/// that never returns is logged by name and left behind; the server still stops.
pub async fn serve(
    listener: TcpListener,
    runtime: Runtime,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (router, metrics) = build(&runtime, &options)?;
    // Bound before any plugin starts, so a taken address fails the start at once.
    let metrics_listener = match options.metrics_bind {
        Some(address) => Some(TcpListener::bind(address).await?),
        None => None,
    };
    // Plugins' log sinks get records from here (what plugins log as they start included)
    // until the connections are drained.
    let log_sinks = plexichat_kernel::runtime::log_sinks::start(&runtime);
    if let Err(error) = start_plugins(&runtime, options.strict).await {
        log_sinks.stop(runtime.phase_timeout()).await;
        return Err(error);
    }
    // A stable target, not the module path: operators filter on it (`RUST_LOG=
    // plexichat::server=info`) and tools read the address from this line.
    tracing::info!(target: LOG_TARGET, address = %listener.local_addr()?, "serving");
    let limits = Limits {
        header_read_timeout: options.header_read_timeout,
        idle_timeout: options.idle_timeout,
        max_connections: options.max_connections,
        drain_timeout: options.drain_timeout,
        streams: streams::StreamLimits {
            max_streams: options.max_streams,
            max_per_client: options.max_streams_per_client,
            lifetime: options.stream_lifetime,
        },
    };
    let (stop_feed, feed_stopped) = tokio::sync::oneshot::channel();
    let analytics_feed = tokio::spawn(metrics::feed_analytics(
        Arc::clone(&metrics),
        runtime.clone(),
        feed_stopped,
    ));
    let metrics_server = metrics_listener
        .map(|listener| serve_metrics(listener, metrics, &runtime))
        .transpose()?;
    // On PostgreSQL, notices an outage without waiting for a request to time out.
    let database = runtime.storage().database().clone();
    let watcher = tokio::spawn(async move { database.watch().await });
    connections::serve(listener, router, limits, shutdown).await;
    watcher.abort();
    // The requests since the last record go to analytics while it still runs.
    let _ = stop_feed.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), analytics_feed).await;
    // Scrapes are short and read-only: nothing to drain.
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    // What the sinks have queued is written while their plugins still run.
    log_sinks.stop(runtime.phase_timeout()).await;
    stop_plugins(&runtime).await;
    tracing::info!(target: LOG_TARGET, "stopped");
    Ok(())
}

/// `starting` (to the plugins about to start) → each plugin's `init` → `startup`; in strict
/// mode a failed start stops everything and is the error.
async fn start_plugins(runtime: &Runtime, strict: bool) -> Result<(), ServerError> {
    // In start order for the event; as a set for the delivery.
    let starting = Starting {
        plugins: runtime
            .registry()
            .plugins()
            .iter()
            .map(|plugin| plugin.name)
            .filter(|name| {
                runtime.status(name)
                    == Some(plexichat_kernel::runtime::state::PluginStatus::Stopped)
            })
            .collect(),
    };
    let about_to_start: BTreeSet<&'static str> = starting.plugins.iter().copied().collect();
    runtime
        .dispatch(
            &starting,
            Delivery::Only(&about_to_start),
            Some(phase_deadline(runtime)),
        )
        .await;
    let failures = runtime.start().await;
    if strict && !failures.is_empty() {
        runtime.shutdown().await;
        return Err(ServerError::Strict(failures));
    }
    let startup = Startup {
        plugins: runtime.running(),
    };
    runtime
        .dispatch(&startup, Delivery::Running, Some(phase_deadline(runtime)))
        .await;
    Ok(())
}

/// `/metrics` on an address of its own, without authentication, until aborted.
fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<HttpMetrics>,
    runtime: &Runtime,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    tracing::info!(target: LOG_TARGET, address = %listener.local_addr()?, "serving metrics");
    let router = metrics::router(metrics, runtime.clone());
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics listener failed");
        }
    }))
}

/// `shutdown` → each running plugin's `stop` and its tasks → `stopped` (to the plugins just
/// stopped, naming the tasks that would not end).
async fn stop_plugins(runtime: &Runtime) {
    let shutting_down = Shutdown {
        reason: "shutdown requested".to_string(),
    };
    runtime
        .dispatch(
            &shutting_down,
            Delivery::Running,
            Some(phase_deadline(runtime)),
        )
        .await;
    let report = runtime.shutdown().await;
    let stopped: BTreeSet<&'static str> = report.stopped.iter().copied().collect();
    let stuck_tasks = report
        .stuck_tasks
        .iter()
        .map(|task| format!("{}/{}", task.plugin, task.name))
        .collect();
    runtime
        .dispatch(
            &Stopped { stuck_tasks },
            Delivery::Only(&stopped),
            Some(phase_deadline(runtime)),
        )
        .await;
}

/// The log target of the server's life-cycle lines ("serving", signals, "stopped").
pub const LOG_TARGET: &str = "plexichat::server";

fn phase_deadline(runtime: &Runtime) -> Instant {
    Instant::now() + runtime.phase_timeout()
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, the two ways operators and supervisors stop us.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!(target: LOG_TARGET, "SIGINT received, shutting down"),
        () = terminate => tracing::info!(target: LOG_TARGET, "SIGTERM received, shutting down"),
    }
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when every plugin the operator wants is running and ready; 503 naming the plugins
/// that are not and their states (the reasons are in the log and the admin view).
async fn ready(Hosted(runtime): Hosted) -> Response {
    let readiness = runtime.readiness().await;
    if readiness.ready {
        return Json(json!({ "ready": true })).into_response();
    }
    let plugins: serde_json::Map<String, Value> = readiness
        .plugins
        .into_iter()
        .map(|(plugin, problem)| (plugin.to_string(), Value::from(problem.state)))
        .collect();
    let mut details = json!({ "ready": false, "plugins": plugins });
    if !readiness.database {
        details["database"] = json!("unreachable");
    }
    ApiError::unavailable("not ready")
        .with_details(details)
        .into_response()
}

/// The answer of `GET /api/v1/plugins/{name}/health`.
#[derive(serde::Serialize)]
struct Health {
    plugin: &'static str,
    #[serde(flatten)]
    status: plexichat_kernel::runtime::state::PluginStatus,
    ready: bool,
    /// The state that keeps it from being ready, or `not_ready` when its `ready` hook refused.
    not_ready: Option<&'static str>,
    /// With a 503, what every error answer has: why, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(flatten)]
    live: Option<plexichat_kernel::runtime::info::Live>,
}

/// One plugin's state, readiness (checking only that plugin) and counters.
async fn plugin_health(
    Hosted(runtime): Hosted,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let plugin = runtime
        .registry()
        .plugin(&name)
        .ok_or_else(|| unknown_plugin(runtime.registry(), &name))?;
    let readiness = runtime.plugin_readiness(&name).await;
    let problem = readiness.and_then(Result::err).map(|problem| problem.state);
    let info = PluginInfo::of_running(&runtime, plugin, Audience::Public);
    let body = Health {
        plugin: plugin.name,
        status: info.status,
        ready: problem.is_none(),
        not_ready: problem,
        error: problem.map(|state| format!("plugin `{}` is not ready: {state}", plugin.name)),
        live: info.live,
    };
    let code = if problem.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(body)).into_response())
}

async fn list_plugins(Hosted(runtime): Hosted) -> Json<Value> {
    Json(json!({ "plugins": PluginInfo::all_running(&runtime, Audience::Public) }))
}

async fn plugin_info(
    Hosted(runtime): Hosted,
    Path(name): Path<String>,
) -> Result<Json<PluginInfo>, ApiError> {
    let plugin = runtime
        .registry()
        .plugin(&name)
        .ok_or_else(|| unknown_plugin(runtime.registry(), &name))?;
    Ok(Json(PluginInfo::of_running(
        &runtime,
        plugin,
        Audience::Public,
    )))
}

/// 404 for a plugin name that is not compiled in, listing the ones that are.
pub(crate) fn unknown_plugin(
    registry: &plexichat_kernel::registry::Registry,
    name: &str,
) -> ApiError {
    let known: Vec<&str> = registry
        .plugins()
        .iter()
        .map(|plugin| plugin.name)
        .collect();
    ApiError::not_found(format!("unknown plugin `{name}`")).with_details(json!({ "known": known }))
}

/// The fallback's answer: 404 naming the method and path.
/// The answer when no route matches: a `GET` or `HEAD` of a path with a trailing slash is
/// sent to the path without it (`/docs/my_plugin/` → `/docs/my_plugin`), as routes are
/// declared without one; anything else is 404 naming the method and path.
fn not_found(request: Request) -> std::future::Ready<Response> {
    let path = request.uri().path();
    let trimmed = path.trim_end_matches('/');
    // Never `//host` or `/\host`, which a browser would read as another site; and not under
    // `/plugins/`, where a page's folder is the form with the slash.
    let local = trimmed.len() > 1
        && !trimmed.starts_with("//")
        && !trimmed.starts_with("/\\")
        && !trimmed.starts_with("/plugins/");
    if matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) && path.ends_with('/')
        && local
    {
        let mut location = trimmed.to_string();
        if let Some(query) = request.uri().query() {
            location.push('?');
            location.push_str(query);
        }
        if let Ok(location) = axum::http::HeaderValue::try_from(location) {
            return std::future::ready(
                (
                    StatusCode::PERMANENT_REDIRECT,
                    [(axum::http::header::LOCATION, location)],
                )
                    .into_response(),
            );
        }
    }
    std::future::ready(
        ApiError::not_found(format!("no route for {} {}", request.method(), path)).into_response(),
    )
}
