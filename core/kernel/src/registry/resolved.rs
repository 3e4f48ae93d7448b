//! The resolved forms of registrations that [`Registry`](super::Registry) hands out: each
//! descriptor with the plugin that owns it (and, for a route, its full path).

use crate::abi::command::CommandDescriptor;
use crate::abi::event::{EventDescriptor, EventHandlerDescriptor};
use crate::abi::health::HealthCheckDescriptor;
use crate::abi::log_sink::LogSinkDescriptor;
use crate::abi::middleware::MiddlewareDescriptor;
use crate::abi::plugin_test::PluginTestDescriptor;
use crate::abi::route::RouteDescriptor;

/// A route with its owning plugin resolved and its full path computed.
#[derive(Debug, Clone)]
pub struct ResolvedRoute {
    /// Owning plugin.
    pub plugin: &'static str,
    /// Prefix plus route path.
    pub full_path: String,
    /// The registration.
    pub descriptor: &'static RouteDescriptor,
}

/// An event handler with its owning plugin resolved.
#[derive(Debug, Clone)]
pub struct ResolvedHandler {
    /// Owning plugin.
    pub plugin: &'static str,
    /// The registration.
    pub descriptor: &'static EventHandlerDescriptor,
}

/// A command with its owning plugin and category resolved.
#[derive(Debug, Clone)]
pub struct ResolvedCommand {
    /// Owning plugin.
    pub plugin: &'static str,
    /// Its category: the declared one, or the plugin's name.
    pub category: &'static str,
    /// The registration.
    pub descriptor: &'static CommandDescriptor,
}

/// A middleware with its owning plugin resolved.
#[derive(Debug, Clone)]
pub struct ResolvedMiddleware {
    /// Owning plugin.
    pub plugin: &'static str,
    /// The registration.
    pub descriptor: &'static MiddlewareDescriptor,
}

/// A health check with its owning plugin resolved.
#[derive(Debug, Clone)]
pub struct ResolvedHealthCheck {
    /// Owning plugin.
    pub plugin: &'static str,
    /// The registration.
    pub descriptor: &'static HealthCheckDescriptor,
}

/// A log sink with its owning plugin resolved.
#[derive(Debug, Clone)]
pub struct ResolvedLogSink {
    /// Owning plugin.
    pub plugin: &'static str,
    /// The registration.
    pub descriptor: &'static LogSinkDescriptor,
}

/// A plugin test with its owning plugin resolved.
#[derive(Debug, Clone)]
pub struct ResolvedPluginTest {
    /// Owning plugin.
    pub plugin: &'static str,
    /// The registration.
    pub descriptor: &'static PluginTestDescriptor,
}

/// An event type with the plugin that declared it resolved.
#[derive(Debug, Clone)]
pub struct ResolvedEvent {
    /// The plugin of the declaring crate; `None` for the core's events and for events
    /// declared in a crate that is not a plugin (a shared types crate).
    pub plugin: Option<&'static str>,
    /// The registration.
    pub descriptor: &'static EventDescriptor,
}
