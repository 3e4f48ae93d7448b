//! HTTP middleware registered by `#[plexichat::middleware]`: the descriptor, its scope, and
//! the type-erased call the core wraps around routes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::abi::plugin::Plugin;
// The handles a middleware shim receives and builds: the runtime types this layer names (see
// the layering test in `tests/it/tidy.rs`).
use crate::runtime::PluginContext;
use crate::runtime::Runtime;

/// Which requests a middleware sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MiddlewareScope {
    /// Every request the server answers: core routes, every plugin's routes, and 404s.
    Global,
    /// Only the routes of the middleware's own plugin, written `scope = plugin`. (Not named
    /// `Plugin`: a public item of that name makes rustc spell the `Plugin` trait with its
    /// full path in every diagnostic.)
    #[serde(rename = "plugin")]
    PluginRoutes,
}

impl MiddlewareScope {
    /// `global` or `plugin`, as listings and the attribute write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            MiddlewareScope::Global => "global",
            MiddlewareScope::PluginRoutes => "plugin",
        }
    }
}

/// The boxed future a middleware shim returns.
pub type MiddlewareFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// One `#[plexichat::middleware]` function.
pub struct MiddlewareDescriptor {
    /// The function's name.
    pub name: &'static str,
    /// Crate that declared it; it belongs to that crate's plugin.
    pub crate_name: &'static str,
    /// Source location, for messages.
    pub location: &'static str,
    /// Which requests it sees.
    pub scope: MiddlewareScope,
    /// Higher runs first (further out); equal priorities run in (plugin, name) order.
    pub priority: i32,
    /// The shim: builds what the function takes and calls it.
    pub call: fn(Runtime, Request, Next) -> MiddlewareFuture,
}

impl fmt::Debug for MiddlewareDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, priority {}, {})",
            self.name,
            self.scope.as_str(),
            self.priority,
            self.location
        )
    }
}

/// What a middleware may take before the request: its plugin's context.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a middleware's first argument",
    label = "expected its plugin's `PluginContext<MyPlugin>`",
    note = "a middleware is `async fn(request: Request, next: Next) -> impl IntoResponse`, optionally taking `context: PluginContext<MyPlugin>` first"
)]
pub trait MiddlewareContext: Sized {
    /// The context for one request.
    fn build(runtime: Runtime) -> Self;
}

impl<P: Plugin> MiddlewareContext for PluginContext<P> {
    fn build(runtime: Runtime) -> Self {
        PluginContext::new(runtime)
    }
}
