//! The serialisable description of a compiled-in plugin, shared by `GET /api/v1/plugins` and
//! `plexichat plugins list --json` so the two can never disagree.

use serde::Serialize;

use crate::plugin::PluginDescriptor;
use crate::registry::Registry;
use crate::route::Method;

/// A plugin's manifest plus what it registered.
#[derive(Debug, Serialize)]
pub struct PluginInfo {
    /// The manifest fields, flattened into this object.
    #[serde(flatten)]
    pub manifest: &'static PluginDescriptor,
    /// Routes with full paths.
    pub routes: Vec<RouteInfo>,
    /// Event handlers in dispatch order.
    pub event_handlers: Vec<HandlerInfo>,
}

/// One route of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteInfo {
    /// HTTP method.
    pub method: Method,
    /// Full path, prefix included.
    pub path: String,
    /// Handler function name.
    pub handler: &'static str,
}

/// One event handler of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerInfo {
    /// Event name.
    pub event: &'static str,
    /// Handler function name.
    pub handler: &'static str,
    /// Dispatch priority; higher runs first.
    pub priority: i32,
}

impl PluginInfo {
    /// Describes `plugin` from what `registry` collected.
    pub fn new(registry: &Registry, plugin: &'static PluginDescriptor) -> PluginInfo {
        PluginInfo {
            manifest: plugin,
            routes: registry
                .routes_of(plugin.name)
                .map(|route| RouteInfo {
                    method: route.descriptor.method,
                    path: route.full_path.clone(),
                    handler: route.descriptor.handler,
                })
                .collect(),
            event_handlers: registry
                .handlers_of(plugin.name)
                .map(|handler| HandlerInfo {
                    event: handler.descriptor.event,
                    handler: handler.descriptor.handler,
                    priority: handler.descriptor.priority,
                })
                .collect(),
        }
    }

    /// Describes every plugin, in start order.
    pub fn all(registry: &Registry) -> Vec<PluginInfo> {
        registry
            .plugins()
            .iter()
            .map(|plugin| PluginInfo::new(registry, plugin))
            .collect()
    }
}
