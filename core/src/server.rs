//! The HTTP server: the core routes, every plugin's routes under its prefix, and a serve loop
//! that publishes the `startup` and `shutdown` events around graceful shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use axum::extract::{Path, Request};
use axum::routing::{MethodRouter, get};
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::event::{Shutdown, Startup};
use crate::info::PluginInfo;
use crate::runtime::{HandlerStats, Runtime, panic_message};

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
}

/// Builds the whole application: core routes, plugin routes, and the shared runtime.
///
/// Tests drive this with `oneshot`; [`serve`] puts it on a socket.
pub fn app(runtime: &Runtime) -> Result<Router, ServerError> {
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/api/v1/plugins", get(list_plugins))
        .route("/api/v1/plugins/{name}", get(plugin_info));

    // Group methods by path first: axum merges two `route` calls on one path, but grouping
    // makes the merge explicit and keeps every insertion a distinct path.
    let mut by_path: BTreeMap<&str, (&'static str, MethodRouter)> = BTreeMap::new();
    for route in runtime.registry().routes() {
        let method_router = (route.descriptor.make)();
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

    Ok(router.fallback(not_found).layer(Extension(runtime.clone())))
}

/// Serves `runtime` on `listener` until `shutdown` resolves, then drains connections.
///
/// Publishes [`Startup`] before accepting and [`Shutdown`] after the last request finished.
pub async fn serve(
    listener: TcpListener,
    runtime: Runtime,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let router = app(&runtime)?;
    let plugins = runtime
        .registry()
        .plugins()
        .iter()
        .map(|plugin| plugin.name)
        .collect();
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
struct PluginStatus {
    #[serde(flatten)]
    info: PluginInfo,
    status: &'static str,
    handler_stats: Vec<HandlerStats>,
}

fn status_of(runtime: &Runtime, info: PluginInfo) -> PluginStatus {
    PluginStatus {
        handler_stats: runtime.handler_stats(info.manifest.name),
        info,
        status: "running",
    }
}

async fn list_plugins(Extension(runtime): Extension<Runtime>) -> Json<Value> {
    let plugins: Vec<PluginStatus> = PluginInfo::all(runtime.registry())
        .into_iter()
        .map(|info| status_of(&runtime, info))
        .collect();
    Json(json!({ "plugins": plugins }))
}

async fn plugin_info(
    Extension(runtime): Extension<Runtime>,
    Path(name): Path<String>,
) -> Result<Json<PluginStatus>, ApiError> {
    let registry = runtime.registry();
    let plugin = registry.plugin(&name).ok_or_else(|| {
        let known: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
        ApiError::not_found(format!("unknown plugin `{name}`"))
            .with_details(json!({ "known": known }))
    })?;
    Ok(Json(status_of(&runtime, PluginInfo::new(registry, plugin))))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}
