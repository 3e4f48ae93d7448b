//! Axum extractors that give route handlers a plugin's state, its configuration, and the
//! event bus. They read the runtime from the router's state, so a request pays no clone for
//! them, and they answer 503 (JSON) when the plugin they name is not running.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::json;

use crate::abi::event::Event;
use crate::abi::plugin::{Configurable, Plugin};
use crate::runtime::state::PluginStatus;
use crate::runtime::{Delivery, DispatchReport, HandlerFailure, Runtime};
use crate::web::error::ApiError;

/// 503 naming the plugin and its state; the reason names states only.
fn not_running(plugin: &'static str, status: PluginStatus) -> ApiError {
    ApiError::unavailable(status.reason(plugin).unwrap_or_default())
        .with_details(json!({ "plugin": plugin, "state": status }))
}

/// The running instance of plugin `P`, for a route handler: `PluginState<MyPlugin>`.
///
/// A handler may name its own plugin or any plugin it depends on; when that plugin is not
/// running (disabled, failed, starting, stopping), the request gets 503 without the handler
/// being called.
#[derive(Debug)]
pub struct PluginState<P>(pub Arc<P>);

impl<P> Clone for PluginState<P> {
    fn clone(&self) -> Self {
        PluginState(Arc::clone(&self.0))
    }
}

impl<P> Deref for PluginState<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.0
    }
}

impl<P: Plugin> FromRequestParts<Runtime> for PluginState<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        _parts: &mut Parts,
        runtime: &Runtime,
    ) -> Result<Self, Self::Rejection> {
        runtime
            .running_plugin::<P>()
            .map(PluginState)
            .map_err(|status| not_running(P::NAME, status))
    }
}

/// The event bus, for a route handler that publishes: `events.publish(&MyEvent { .. }).await`.
#[derive(Clone, Debug)]
pub struct Events(Runtime);

impl Events {
    /// Delivers `event` to every handler of its type; see [`Runtime::publish`].
    ///
    /// The dispatch runs on a task of its own: if the request times out (408) or its client
    /// goes away while handlers run, every handler still runs, in order, to the end. The
    /// event is cloned for that task. Like a lifecycle event's, the dispatch is bounded by
    /// the phase timeout, so a handler that never returns cannot pile up tasks.
    pub async fn publish<E: Event + Clone>(&self, event: &E) -> DispatchReport {
        let (runtime, event) = (self.0.clone(), event.clone());
        let dispatch = async move {
            let deadline = tokio::time::Instant::now() + runtime.phase_timeout();
            runtime
                .dispatch(&event, Delivery::Running, Some(deadline))
                .await
        };
        match tokio::spawn(dispatch).await {
            Ok(report) => report,
            // Handler panics are caught inside; this is the runtime being shut down.
            Err(error) => DispatchReport {
                succeeded: 0,
                failures: vec![HandlerFailure {
                    plugin: "*",
                    handler: "*",
                    error: format!("the dispatch did not complete: {error}"),
                }],
            },
        }
    }
}

impl FromRequestParts<Runtime> for Events {
    type Rejection = ApiError;

    async fn from_request_parts(
        _parts: &mut Parts,
        runtime: &Runtime,
    ) -> Result<Self, Self::Rejection> {
        Ok(Events(runtime.clone()))
    }
}

/// The current configuration of plugin `P` (its `[plugins.<name>]` section), for a route
/// handler: `config: PluginConfig<MyPlugin>` derefs to `MyPlugin`'s config type. 503 when
/// `P` is not running.
#[derive(Debug)]
pub struct PluginConfig<P: Configurable>(pub Arc<P::Config>);

impl<P: Configurable> Deref for PluginConfig<P> {
    type Target = P::Config;
    fn deref(&self) -> &P::Config {
        &self.0
    }
}

impl<P: Configurable> FromRequestParts<Runtime> for PluginConfig<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        _parts: &mut Parts,
        runtime: &Runtime,
    ) -> Result<Self, Self::Rejection> {
        if let Err(status) = runtime.running_plugin::<P>() {
            return Err(not_running(P::NAME, status));
        }
        runtime
            .config::<P>()
            .map(PluginConfig)
            .ok_or_else(|| not_running(P::NAME, PluginStatus::Stopped))
    }
}
