//! Axum extractors that give route handlers their plugin's state and the event bus.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::event::Event;
use crate::plugin::{Configurable, Plugin};
use crate::runtime::{DispatchReport, Runtime};

fn runtime(parts: &Parts) -> Result<&Runtime, ApiError> {
    parts.extensions.get::<Runtime>().ok_or_else(|| {
        ApiError::internal("route served outside `plexichat::server::app`: no runtime in request")
    })
}

/// The running instance of plugin `P`, for a route handler: `PluginState<MyPlugin>`.
///
/// A handler may name its own plugin or any plugin it depends on.
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

impl<P: Plugin, S: Send + Sync> FromRequestParts<S> for PluginState<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        runtime(parts)?
            .plugin::<P>()
            .map(PluginState)
            .ok_or_else(|| ApiError::unavailable(format!("plugin `{}` is not running", P::NAME)))
    }
}

/// The event bus, for a route handler that publishes: `events.publish(&MyEvent { .. }).await`.
#[derive(Clone, Debug)]
pub struct Events(Runtime);

impl Events {
    /// Delivers `event` to every handler of its type; see [`Runtime::publish`].
    pub async fn publish<E: Event>(&self, event: &E) -> DispatchReport {
        self.0.publish(event).await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Events {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        runtime(parts).cloned().map(Events)
    }
}

/// The current configuration of plugin `P` (its `[plugins.<name>]` section), for a route
/// handler: `config: PluginConfig<MyPlugin>` derefs to `MyPlugin`'s config type.
#[derive(Debug)]
pub struct PluginConfig<P: Configurable>(pub Arc<P::Config>);

impl<P: Configurable> Deref for PluginConfig<P> {
    type Target = P::Config;
    fn deref(&self) -> &P::Config {
        &self.0
    }
}

impl<P: Configurable, S: Send + Sync> FromRequestParts<S> for PluginConfig<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        runtime(parts)?
            .config::<P>()
            .map(PluginConfig)
            .ok_or_else(|| ApiError::unavailable(format!("plugin `{}` is not running", P::NAME)))
    }
}
