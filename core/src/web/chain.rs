//! Plugins' `#[middleware]` put around the routes they apply to, in chain order, each skipped
//! while its plugin is not running and each panic contained and counted against its plugin.

use std::collections::HashMap;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, Route};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::json;
use tower::{Layer, Service, ServiceExt};

use crate::abi::middleware::{
    BoxedService, ErasedLayer, MiddlewareCall, MiddlewareDescriptor, MiddlewareScope,
};
use crate::registry::ResolvedMiddleware;
use crate::runtime::state::Slot;
use crate::runtime::{RouteCounters, Runtime, panic_message};
use crate::web::error::ApiError;

/// One middleware with what running it needs: its plugin's state and counters.
#[derive(Clone)]
struct Link {
    runtime: Runtime,
    plugin: &'static str,
    descriptor: &'static MiddlewareDescriptor,
    slot: Arc<Slot>,
    counters: Arc<RouteCounters>,
}

impl Link {
    fn new(runtime: &Runtime, middleware: &ResolvedMiddleware) -> Link {
        let entry = runtime
            .entry(middleware.plugin)
            .expect("the registry resolved every middleware to a compiled-in plugin");
        Link {
            runtime: runtime.clone(),
            plugin: middleware.plugin,
            descriptor: middleware.descriptor,
            slot: Arc::clone(&entry.slot),
            counters: Arc::clone(&entry.route_counters),
        }
    }
}

/// Every middleware ready to wrap: built once per application, so a layer's state (a rate
/// limiter's table, say) is one for all the routes it wraps.
pub(crate) struct Chain {
    /// Global middleware, in chain order.
    global: Vec<Wrapper>,
    /// Each plugin's own, in chain order.
    own: HashMap<&'static str, Vec<Wrapper>>,
}

/// One middleware, ready to put around a route or the application.
enum Wrapper {
    Function(Link),
    Layer(Guard),
}

impl Chain {
    pub(crate) fn new(runtime: &Runtime) -> Chain {
        let mut chain = Chain {
            global: Vec::new(),
            own: HashMap::new(),
        };
        for middleware in runtime.registry().middleware() {
            let link = Link::new(runtime, middleware);
            let wrapper = match middleware.descriptor.call {
                MiddlewareCall::Function(_) => Wrapper::Function(link),
                MiddlewareCall::Layer(make) => Wrapper::Layer(Guard {
                    layer: make(runtime.clone()),
                    link,
                }),
            };
            match middleware.descriptor.scope {
                MiddlewareScope::Global => chain.global.push(wrapper),
                MiddlewareScope::PluginRoutes => {
                    chain
                        .own
                        .entry(middleware.plugin)
                        .or_default()
                        .push(wrapper);
                }
            }
        }
        chain
    }

    /// Wraps `plugin`'s route in that plugin's own middleware; the first in chain order ends
    /// up outermost.
    pub(crate) fn wrap_route(
        &self,
        plugin: &'static str,
        mut route: MethodRouter<Runtime>,
    ) -> MethodRouter<Runtime> {
        // `layer` wraps what is there, so the last applied is the first to see a request.
        for wrapper in self.own.get(plugin).into_iter().flatten().rev() {
            route = match wrapper {
                Wrapper::Function(link) => route.layer(from_fn_with_state(link.clone(), run)),
                Wrapper::Layer(guard) => route.layer(guard.clone()),
            };
        }
        route
    }

    /// Wraps the whole application (core routes, plugin routes, the fallback) in the global
    /// middleware.
    pub(crate) fn wrap_app(&self, mut router: Router<Runtime>) -> Router<Runtime> {
        for wrapper in self.global.iter().rev() {
            router = match wrapper {
                Wrapper::Function(link) => router.layer(from_fn_with_state(link.clone(), run)),
                Wrapper::Layer(guard) => router.layer(guard.clone()),
            };
        }
        router
    }
}

/// Runs one middleware: passed over while its plugin is not running; a panic in it is a 500
/// for this request, logged with the plugin's name and counted in its route stats.
async fn run(State(link): State<Link>, request: Request, next: Next) -> Response {
    // Counted in flight like a route, so the plugin's `stop` waits for code of its own.
    let Some(_busy) = link.slot.enter() else {
        return next.run(request).await;
    };
    let MiddlewareCall::Function(call) = link.descriptor.call else {
        unreachable!("layers are applied by `Guard`, not through `run`")
    };
    let call = call(link.runtime.clone(), request, next);
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => link.panicked(panic.as_ref()),
    }
}

impl Link {
    /// The answer to a request whose middleware panicked: logged with the plugin's name and
    /// counted in its route stats.
    fn panicked(&self, panic: &(dyn std::any::Any + Send)) -> Response {
        self.counters
            .middleware_panics
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            plugin = self.plugin,
            middleware = self.descriptor.name,
            error = %panic_message(panic),
            "middleware panicked"
        );
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            .with_details(json!({ "plugin": self.plugin }))
            .into_response()
    }
}

/// A `#[middleware(layer)]` under the same rules as a function: its plugin's layer wraps what
/// is inside, and each request goes through it only while the plugin runs (straight to what
/// is inside otherwise), with a panic contained and counted.
#[derive(Clone)]
struct Guard {
    layer: ErasedLayer,
    link: Link,
}

impl Layer<Route> for Guard {
    type Service = Guarded;

    fn layer(&self, inner: Route) -> Guarded {
        Guarded {
            layered: (self.layer)(inner.clone()),
            bypass: inner,
            link: self.link.clone(),
        }
    }
}

#[derive(Clone)]
struct Guarded {
    layered: BoxedService,
    bypass: Route,
    link: Link,
}

impl Service<Request> for Guarded {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call readies a clone of its path with `oneshot`, as axum's own routes do.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let Some(_busy) = this.link.slot.enter() else {
                return this.bypass.oneshot(request).await;
            };
            match AssertUnwindSafe(this.layered.oneshot(request))
                .catch_unwind()
                .await
            {
                Ok(answer) => answer,
                Err(panic) => Ok(this.link.panicked(panic.as_ref())),
            }
        })
    }
}
