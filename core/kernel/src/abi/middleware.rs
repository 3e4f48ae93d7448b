//! HTTP middleware registered by `#[plexichat::middleware]`: the descriptor, its scope, and
//! the type-erased call the core wraps around routes.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::Route;
use axum::routing::future::RouteFuture;
use serde::Serialize;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use crate::abi::plugin::Plugin;
// The handles a middleware shim receives and builds: the runtime types this layer names (see
// the layering test in `tests/it/tidy.rs`).
use crate::runtime::Host;
use crate::runtime::PluginContext;

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

/// The rest of the chain after a `#[middleware]` function: the middleware further in, then
/// the route's handler. Pass the request on with [`Next::run`], or answer without calling it.
///
/// It holds the inner route itself, not a boxed copy of it as axum's `from_fn` does, so
/// passing a request on costs what calling the route costs. Clone it to call the rest of the
/// chain more than once (a retry).
#[derive(Clone)]
pub struct Next {
    inner: Route,
}

impl Next {
    /// The chain after a middleware (the core builds it per request).
    #[doc(hidden)]
    pub fn new(inner: Route) -> Next {
        Next { inner }
    }

    /// Runs the rest of the chain on `request` and answers its response.
    pub async fn run(mut self, request: Request) -> Response {
        match self.inner.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").finish_non_exhaustive()
    }
}

/// A `Next` is a tower service too, for code that takes one (`ServiceExt::oneshot`).
impl Service<Request> for Next {
    type Response = Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.inner, context)
    }

    fn call(&mut self, request: Request) -> RouteFuture<Infallible> {
        self.inner.call(request)
    }
}

/// The boxed future a middleware shim returns.
pub type MiddlewareFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// A request handler as a layer sees it: what it wraps, or what it made of that.
pub type BoxedService = BoxCloneSyncService<Request, Response, Infallible>;

/// A tower layer with its type erased: wraps a route (or the whole application) in itself.
pub type ErasedLayer = Arc<dyn Fn(Route) -> BoxedService + Send + Sync>;

/// The two forms of `#[plexichat::middleware]`.
#[derive(Clone, Copy)]
pub enum MiddlewareCall {
    /// An `async fn(request, next)`: the shim builds what it takes and calls it, per request.
    Function(fn(Host, Request, Next) -> MiddlewareFuture),
    /// `#[middleware(layer)]`, a function returning a tower `Layer`: called once, when the
    /// application is built, and the layer it returns wraps the routes.
    Layer(fn(Host) -> ErasedLayer),
}

impl MiddlewareCall {
    /// Which of the two forms this is.
    pub const fn form(self) -> MiddlewareForm {
        match self {
            MiddlewareCall::Function(_) => MiddlewareForm::Function,
            MiddlewareCall::Layer(_) => MiddlewareForm::Layer,
        }
    }
}

/// The form of a middleware, as listings show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MiddlewareForm {
    /// An `async fn(request, next)`, called per request.
    Function,
    /// A tower layer, built once with the application.
    Layer,
}

impl MiddlewareForm {
    /// `function` or `layer`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MiddlewareForm::Function => "function",
            MiddlewareForm::Layer => "layer",
        }
    }
}

/// What a `#[middleware(layer)]` function may return: any tower layer axum's own
/// `Router::layer` takes.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tower layer a middleware can return",
    label = "a `#[middleware(layer)]` function returns a `tower::Layer` (axum's `middleware::from_fn`, tower-http's layers, your own)",
    note = "its service must be `Clone + Send + Sync + 'static`, answer something that implements `IntoResponse`, and never fail (`Error = Infallible`)"
)]
pub trait MiddlewareLayer {
    /// Erases the layer's type.
    fn erase(self) -> ErasedLayer;
}

impl<L> MiddlewareLayer for L
where
    L: Layer<Route> + Clone + Send + Sync + 'static,
    L::Service: Service<Request> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Response: IntoResponse + 'static,
    <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    fn erase(self) -> ErasedLayer {
        Arc::new(move |route| {
            BoxCloneSyncService::new(
                self.layer(route)
                    .map_response(IntoResponse::into_response)
                    .map_err(Into::into),
            )
        })
    }
}

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
    /// The shim: a function called per request, or a layer built with the application.
    pub call: MiddlewareCall,
}

impl fmt::Debug for MiddlewareDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, priority {}, {}, {})",
            self.name,
            self.scope.as_str(),
            self.priority,
            self.call.form().as_str(),
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
    fn build(host: Host) -> Self;
}

impl<P: Plugin> MiddlewareContext for PluginContext<P> {
    fn build(host: Host) -> Self {
        PluginContext::new(host.into_runtime())
    }
}
