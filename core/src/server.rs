//! The HTTP server: the core routes, every plugin's routes under its prefix, and a serve loop
//! that publishes the `startup` and `shutdown` events around graceful shutdown.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::event::{Shutdown, Starting, Startup, Stopped};
use crate::info::PluginInfo;
use crate::middleware::{JsonErrorsLayer, RunningGateLayer};
use crate::runtime::{HandlerStats, InitFailure, RouteStats, Runtime, panic_message};
use crate::state::PluginStatus;

/// Limits applied to every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// A request that has not been answered by then gets `408` and its handler is dropped.
    pub request_timeout: Duration,
    /// Largest accepted request body in bytes; larger bodies get `413`.
    pub body_limit: usize,
    /// The bearer token of `/api/v1/admin/*`; without one, every admin request gets 401.
    pub admin_token: Option<Arc<str>>,
    /// Longest a plugin's `init` or `stop` may take, and how long shutdown waits for
    /// background tasks.
    pub phase_timeout: Duration,
    /// Refuse to serve if any plugin fails to start, instead of serving the others.
    pub strict: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            request_timeout: Duration::from_secs(30),
            body_limit: 1024 * 1024,
            admin_token: None,
            phase_timeout: Duration::from_secs(10),
            strict: false,
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
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/v1/plugins/{name}/health", get(plugin_health))
        .route("/api/v1/plugins", get(list_plugins))
        .route("/api/v1/plugins/{name}", get(plugin_info))
        .merge(crate::admin::router(options.admin_token.clone()));

    // Group methods by path first: axum merges two `route` calls on one path, but grouping
    // makes the merge explicit and keeps every insertion a distinct path.
    let mut by_path: BTreeMap<&str, (&'static str, MethodRouter)> = BTreeMap::new();
    for route in runtime.registry().routes() {
        let method_router = guard_route(runtime, route.plugin, (route.descriptor.make)());
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
        // The registry rejects exact duplicates with both names; axum's router panics on the
        // rarer overlaps it finds itself, and that panic must not take the process down.
        router =
            std::panic::catch_unwind(AssertUnwindSafe(move || router.route(path, method_router)))
                .map_err(|panic| ServerError::RouteConflict {
                plugin,
                path: path.to_string(),
                reason: panic_message(panic.as_ref()),
            })?;
    }

    // `ServiceBuilder` runs top to bottom: the first layer sees the request first and the
    // response last.
    let middleware = ServiceBuilder::new()
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
        ))
        .layer(Extension(runtime.clone()));
    Ok(router.fallback(not_found).layer(middleware))
}

/// Wraps one of `plugin`'s routes in the two guards every plugin route has:
///
/// - while the plugin is not running, answer 503 naming why, without calling the handler
///   (one atomic load per request);
/// - a panic in the handler becomes a 500 for that request only, logged with the plugin's
///   name and counted in its route stats, while every other request goes on.
fn guard_route(runtime: &Runtime, plugin: &'static str, route: MethodRouter) -> MethodRouter {
    let counters = runtime
        .route_counters(plugin)
        .expect("every registered plugin has route counters");
    let contain_panics = CatchPanicLayer::custom(move |panic: Box<dyn Any + Send + 'static>| {
        counters.panics.fetch_add(1, Ordering::Relaxed);
        tracing::error!(plugin, error = %panic_message(panic.as_ref()), "route handler panicked");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            .with_details(json!({ "plugin": plugin }))
            .into_response()
    });
    let only_when_running = RunningGateLayer {
        plugin,
        slot: runtime
            .slot(plugin)
            .expect("every registered plugin has a state"),
    };
    route.layer(contain_panics).layer(only_when_running)
}

/// Serves `runtime` on `listener` until `shutdown` resolves, then drains connections.
///
/// Publishes [`Startup`] before accepting and [`Shutdown`] after the last request finished.
pub async fn serve(
    listener: TcpListener,
    runtime: Runtime,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let router = app_with(&runtime, &options)?;
    runtime
        .publish(&Starting {
            plugins: runtime.running(),
        })
        .await;
    let failures = runtime.start(options.phase_timeout).await;
    if options.strict && !failures.is_empty() {
        runtime.stop(options.phase_timeout).await;
        return Err(ServerError::Strict(failures));
    }
    let plugins = runtime.running();
    runtime.publish(&Startup { plugins }).await;
    tracing::info!(address = %listener.local_addr()?, "serving");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    runtime
        .publish(&Shutdown {
            reason: "shutdown requested".to_string(),
        })
        .await;
    let stuck = runtime.stop(options.phase_timeout).await;
    let stuck_tasks = stuck
        .iter()
        .map(|task| format!("{}/{}", task.plugin, task.name))
        .collect();
    runtime.publish(&Stopped { stuck_tasks }).await;
    tracing::info!("stopped");
    Ok(())
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
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// A plugin as the API shows it: its manifest and registrations plus live state.
#[derive(Serialize)]
struct PluginView {
    #[serde(flatten)]
    info: PluginInfo,
    #[serde(flatten)]
    status: PluginStatus,
    handler_stats: Vec<HandlerStats>,
    route_stats: RouteStats,
    tasks: Vec<crate::lifecycle::TaskStatus>,
}

fn status_of(runtime: &Runtime, info: PluginInfo) -> PluginView {
    PluginView {
        handler_stats: runtime.handler_stats(info.manifest.name),
        route_stats: runtime.route_stats(info.manifest.name),
        tasks: runtime.task_status(info.manifest.name),
        status: runtime
            .status(info.manifest.name)
            .expect("listed plugins have a state"),
        info,
    }
}

/// 200 when every plugin the operator wants is running and ready; 503 with the reasons.
async fn ready(Extension(runtime): Extension<Runtime>) -> Response {
    let reasons = runtime.readiness().await;
    if reasons.is_empty() {
        return Json(json!({ "ready": true })).into_response();
    }
    let plugins: serde_json::Map<String, Value> = reasons
        .into_iter()
        .map(|(plugin, reason)| (plugin.to_string(), Value::String(reason)))
        .collect();
    ApiError::unavailable("not ready")
        .with_details(json!({ "ready": false, "plugins": plugins }))
        .into_response()
}

/// One plugin's state, readiness and background tasks.
async fn plugin_health(
    Extension(runtime): Extension<Runtime>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let status = runtime
        .status(&name)
        .ok_or_else(|| unknown_plugin(runtime.registry(), &name))?;
    let problem = runtime
        .readiness()
        .await
        .into_iter()
        .find(|(plugin, _)| *plugin == name || *plugin == "*")
        .map(|(_, reason)| reason);
    let body = json!({
        "plugin": name,
        "status": status,
        "ready": problem.is_none(),
        "reason": problem,
        "tasks": runtime.task_status(&name),
        "route_stats": runtime.route_stats(&name),
        "handler_stats": runtime.handler_stats(&name),
    });
    let code = if problem.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(body)).into_response())
}

async fn list_plugins(Extension(runtime): Extension<Runtime>) -> Json<Value> {
    let plugins: Vec<PluginView> = PluginInfo::all(runtime.registry())
        .into_iter()
        .map(|info| status_of(&runtime, info))
        .collect();
    Json(json!({ "plugins": plugins }))
}

async fn plugin_info(
    Extension(runtime): Extension<Runtime>,
    Path(name): Path<String>,
) -> Result<Json<PluginView>, ApiError> {
    let registry = runtime.registry();
    let plugin = registry
        .plugin(&name)
        .ok_or_else(|| unknown_plugin(runtime.registry(), &name))?;
    Ok(Json(status_of(&runtime, PluginInfo::new(registry, plugin))))
}

/// 404 for a plugin name that is not compiled in, listing the ones that are.
pub(crate) fn unknown_plugin(registry: &crate::registry::Registry, name: &str) -> ApiError {
    let known: Vec<&str> = registry
        .plugins()
        .iter()
        .map(|plugin| plugin.name)
        .collect();
    ApiError::not_found(format!("unknown plugin `{name}`")).with_details(json!({ "known": known }))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}
