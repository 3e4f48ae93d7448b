//! Axum extractors that give route handlers a plugin's state, its configuration, and its
//! context (with the services its permissions grant). They read the runtime from the
//! router's state, and they answer 503 (JSON) when the plugin they name is not running.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::json;

use crate::abi::plugin::{Configurable, Plugin};
use crate::error::ApiError;
use crate::runtime::state::PluginStatus;
use crate::runtime::{Host, PluginContext, Runtime};

/// The plugin whose route a request reached: put in the request's extensions by the route's
/// `RunningGate`. Its type is crate-private, so no plugin can forge it; the extractors below
/// hand a route only its own plugin's context, and its own or a dependency's state and
/// configuration, whatever the handler's argument types say (a type alias, or a call to
/// `from_request_parts` by hand).
#[derive(Clone, Copy, Debug)]
pub struct RouteOwner(pub &'static str);

/// The route's plugin, when it may use plugin `wanted` (`own_only`: only itself).
fn check_owner(
    parts: &Parts,
    runtime: &Runtime,
    wanted: &'static str,
    own_only: bool,
) -> Result<(), ApiError> {
    let owner = parts.extensions.get::<RouteOwner>().map(|owner| owner.0);
    let allowed = owner.is_some_and(|owner| {
        owner == wanted
            || (!own_only
                && runtime
                    .registry()
                    .plugin(owner)
                    .is_some_and(|plugin| plugin.dependencies.contains(&wanted)))
    });
    if allowed {
        return Ok(());
    }
    let owner = owner.unwrap_or("(none)");
    tracing::error!(
        plugin = owner,
        wanted,
        "a route asked for another plugin's {}; refused",
        if own_only {
            "context"
        } else {
            "state or configuration"
        }
    );
    Err(ApiError::plugin_failed(owner))
}

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

impl<P: Plugin> FromRequestParts<Host> for PluginState<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, host: &Host) -> Result<Self, Self::Rejection> {
        let runtime = host.runtime();
        check_owner(parts, runtime, P::NAME, false)?;
        runtime
            .running_plugin::<P>()
            .map(PluginState)
            .map_err(|status| not_running(P::NAME, status))
    }
}

/// Plugin `P`'s context, for a route handler: `context: PluginContext<MyPlugin>` gives the
/// services its permissions grant (`context.kv()`, `context.db()`, `context.publish(..)`).
/// `#[route]` accepts only the route's own plugin here. 503 when `P` is not running.
impl<P: Plugin> FromRequestParts<Host> for PluginContext<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, host: &Host) -> Result<Self, Self::Rejection> {
        let runtime = host.runtime();
        check_owner(parts, runtime, P::NAME, true)?;
        match runtime.running_plugin::<P>() {
            Ok(_) => Ok(PluginContext::new(runtime.clone())),
            Err(status) => Err(not_running(P::NAME, status)),
        }
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

impl<P: Configurable> FromRequestParts<Host> for PluginConfig<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, host: &Host) -> Result<Self, Self::Rejection> {
        let runtime = host.runtime();
        check_owner(parts, runtime, P::NAME, false)?;
        if let Err(status) = runtime.running_plugin::<P>() {
            return Err(not_running(P::NAME, status));
        }
        runtime
            .config::<P>()
            .map(PluginConfig)
            .ok_or_else(|| not_running(P::NAME, PluginStatus::Stopped))
    }
}

/// The client's IP address, for limits and session listings: what a middleware that knows
/// the deployment's proxies put in the request's extensions (the `security` plugin, with
/// `trust_forwarded_for`), else the connection's peer; `None` for an in-process request.
///
/// A middleware sets it with `request.extensions_mut().insert(ClientAddress(Some(ip)))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl ClientAddress {
    /// The address of a request's `parts`.
    pub fn of(parts: &Parts) -> ClientAddress {
        if let Some(address) = parts.extensions.get::<ClientAddress>() {
            return *address;
        }
        ClientAddress(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress::of(parts))
    }
}
