//! Plugins' `#[middleware]` put around the routes they apply to, in chain order, each skipped
//! while its plugin is not running and each panic contained and counted against its plugin.

use std::any::Any;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, Route};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, CatchUnwind};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};

use plexichat_kernel::abi::middleware::{
    BoxedService, ErasedLayer, MiddlewareCall, MiddlewareDescriptor, MiddlewareFuture,
    MiddlewareScope, Next,
};
use plexichat_kernel::error::ApiError;
use plexichat_kernel::registry::ResolvedMiddleware;
use plexichat_kernel::runtime::state::{Busy, Slot};
use plexichat_kernel::runtime::{Host, RouteCounters, Runtime, behind, panic_message};

/// One middleware with what running it needs: its plugin's state and counters.
struct Link {
    runtime: Runtime,
    plugin: &'static str,
    descriptor: &'static MiddlewareDescriptor,
    slot: Arc<Slot>,
    counters: Arc<RouteCounters>,
}

impl Link {
    fn new(runtime: &Runtime, middleware: &ResolvedMiddleware) -> Arc<Link> {
        let entry = runtime
            .entry(middleware.plugin)
            .expect("the registry resolved every middleware to a compiled-in plugin");
        Arc::new(Link {
            runtime: runtime.clone(),
            plugin: middleware.plugin,
            descriptor: middleware.descriptor,
            slot: Arc::clone(&entry.slot),
            counters: Arc::clone(&entry.route_counters),
        })
    }

    /// Counts and logs a panic of this middleware's code; `when` (empty, or ` while …`) says
    /// which part panicked.
    fn count_panic(&self, panic: &(dyn Any + Send), when: &str) {
        self.counters
            .middleware_panics
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            plugin = self.plugin,
            middleware = self.descriptor.name,
            error = %panic_message(panic),
            "middleware panicked{when}"
        );
    }

    /// The answer to a request this middleware failed: 500 naming its plugin.
    fn failed(&self) -> Response {
        ApiError::plugin_failed(self.plugin).into_response()
    }
}

/// Every middleware ready to wrap: built once per application, so a layer function runs
/// once and the layer value it returns (and any state it holds) serves every route it wraps.
pub(crate) struct Chain {
    /// Global middleware, in chain order.
    global: Vec<Wrapper>,
    /// Each plugin's own, in chain order.
    own: HashMap<&'static str, Vec<Wrapper>>,
}

/// One middleware, ready to put around a route or the application.
enum Wrapper {
    /// An `async fn(request, next)`, called per request by [`Called`].
    Function(Shim),
    /// A tower layer, under [`Guard`].
    Layer(Guard),
}

/// A function middleware as a layer: the link and the shim to call.
#[derive(Clone)]
struct Shim {
    link: Arc<Link>,
    call: fn(Host, Request, Next) -> MiddlewareFuture,
}

impl Chain {
    /// Readies every middleware of `runtime`'s registry. A layer function runs here, when the
    /// application is built (before any `init`, whether its plugin is enabled or not); if it
    /// panics, the panic is logged and counted, and the requests it would wrap answer 500
    /// while its plugin runs, as a panicking function middleware's do.
    pub(crate) fn new(runtime: &Runtime) -> Chain {
        let mut chain = Chain {
            global: Vec::new(),
            own: HashMap::new(),
        };
        for middleware in runtime.registry().middleware() {
            let link = Link::new(runtime, middleware);
            let wrapper = match middleware.descriptor.call {
                MiddlewareCall::Function(call) => Wrapper::Function(Shim { link, call }),
                MiddlewareCall::Layer(make) => {
                    let made =
                        catch_unwind(AssertUnwindSafe(|| make(behind::host(runtime.clone()))));
                    let layer = made
                        .inspect_err(|panic| {
                            link.count_panic(panic.as_ref(), " while building its layer");
                        })
                        .ok();
                    Wrapper::Layer(Guard { layer, link })
                }
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
        mut route: MethodRouter<Host>,
    ) -> MethodRouter<Host> {
        // `layer` wraps what is there, so the last applied is the first to see a request.
        for wrapper in self.own.get(plugin).into_iter().flatten().rev() {
            route = match wrapper {
                Wrapper::Function(shim) => route.layer(shim.clone()),
                Wrapper::Layer(guard) => route.layer(guard.clone()),
            };
        }
        route
    }

    /// Wraps the whole application (core routes, plugin routes, the fallback) in the global
    /// middleware.
    pub(crate) fn wrap_app(&self, mut router: Router<Host>) -> Router<Host> {
        for wrapper in self.global.iter().rev() {
            router = match wrapper {
                Wrapper::Function(shim) => router.layer(shim.clone()),
                Wrapper::Layer(guard) => router.layer(guard.clone()),
            };
        }
        router
    }
}

impl Layer<Route> for Shim {
    type Service = Called;

    fn layer(&self, inner: Route) -> Called {
        Called {
            shim: self.clone(),
            inner: Arc::new(inner),
        }
    }
}

/// One route (or the application) behind a function middleware: passed over while its plugin
/// is not running; a panic in it is a 500 for this request, logged with the plugin's name and
/// counted in its route stats. Unlike axum's `from_fn`, it neither boxes the rest of the chain
/// again nor boxes a future of its own: per request it clones the rest of the chain once (for
/// [`Next`]) and the shim boxes the middleware's future. (Calling `next.run` then costs what
/// calling any axum route costs: another clone of its boxed service and a boxed future.)
///
/// axum clones a route's service for every request it answers, so what this holds is behind
/// `Arc`s: cloning it allocates nothing.
#[derive(Clone)]
struct Called {
    shim: Shim,
    inner: Arc<Route>,
}

impl Service<Request> for Called {
    type Response = Response;
    type Error = Infallible;
    type Future = CalledFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A route is always ready: axum readies a clone of it per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> CalledFuture {
        let link = &self.shim.link;
        let next = Next::new(Route::clone(&self.inner));
        // Counted in flight like a route, so the plugin's `stop` waits for code of its own.
        let Some(busy) = link.slot.enter() else {
            return CalledFuture::Passed(Box::pin(next.run(request)));
        };
        let call = (self.shim.call)(behind::host(link.runtime.clone()), request, next);
        CalledFuture::Running {
            call: AssertUnwindSafe(call).catch_unwind(),
            link: Arc::clone(link),
            _busy: busy,
        }
    }
}

/// The answer of a function middleware, or of the rest of the chain while its plugin is not
/// running.
enum CalledFuture {
    Running {
        call: CatchUnwind<AssertUnwindSafe<MiddlewareFuture>>,
        link: Arc<Link>,
        _busy: Busy,
    },
    Passed(Pin<Box<dyn Future<Output = Response> + Send>>),
}

impl Future for CalledFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin` (the futures are boxed), so no projection is needed.
        match self.get_mut() {
            CalledFuture::Running { call, link, .. } => match call.poll_unpin(context) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(response)) => Poll::Ready(Ok(response)),
                Poll::Ready(Err(panic)) => {
                    link.count_panic(panic.as_ref(), "");
                    Poll::Ready(Ok(link.failed()))
                }
            },
            CalledFuture::Passed(rest) => rest.poll_unpin(context).map(Ok),
        }
    }
}

/// A `#[middleware(layer)]` under the same rules as a function: its layer wraps what is
/// inside, and a request goes through it only while its plugin runs (straight to what is
/// inside otherwise), with a panic contained and counted. `layer` is `None` when the layer
/// function panicked.
#[derive(Clone)]
struct Guard {
    layer: Option<ErasedLayer>,
    link: Arc<Link>,
}

impl Layer<Route> for Guard {
    type Service = Guarded;

    /// axum calls this once per route and method (and for a global layer, per route of the
    /// application): state a layer makes here, rather than holds, is per route.
    fn layer(&self, inner: Route) -> Guarded {
        let layered = self.layer.as_ref().and_then(|layer| {
            catch_unwind(AssertUnwindSafe(|| layer(inner.clone())))
                .inspect_err(|panic| {
                    self.link
                        .count_panic(panic.as_ref(), " while wrapping a route");
                })
                .ok()
        });
        Guarded {
            paths: Arc::new(Paths {
                layered,
                bypass: inner,
            }),
            link: Arc::clone(&self.link),
        }
    }
}

/// One route behind a layer: the layered service, or the route itself while the plugin is
/// not running. Cloned by axum for every request, so what it holds is behind an `Arc`.
#[derive(Clone)]
struct Guarded {
    paths: Arc<Paths>,
    link: Arc<Link>,
}

/// The two ways through a [`Guarded`].
struct Paths {
    /// `None` when the layer could not be built: its requests answer 500.
    layered: Option<BoxedService>,
    bypass: Route,
}

impl Service<Request> for Guarded {
    type Response = Response;
    type Error = Infallible;
    type Future = GuardedFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call readies a clone of the path it takes with `oneshot`, as axum's own
        // routes do, so there is nothing to wait for here.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> GuardedFuture {
        let Some(busy) = self.link.slot.enter() else {
            return GuardedFuture::Passed(Box::pin(self.paths.bypass.clone().oneshot(request)));
        };
        let Some(layered) = self.paths.layered.clone() else {
            return GuardedFuture::Failed(Some(self.link.failed()));
        };
        GuardedFuture::Running {
            // `oneshot` calls the layer's service inside the future, so a panic in its
            // synchronous part is caught here too.
            call: AssertUnwindSafe(layered.oneshot(request)).catch_unwind(),
            link: Arc::clone(&self.link),
            // Counted in flight like a route, so the plugin's `stop` waits for it.
            _busy: busy,
        }
    }
}

/// The answer of a layered route, of the route itself while the plugin is not running, or a
/// 500 when the layer could not be built.
enum GuardedFuture {
    Running {
        call: CatchUnwind<AssertUnwindSafe<Oneshot<BoxedService, Request>>>,
        link: Arc<Link>,
        _busy: Busy,
    },
    Passed(BoxFuture<'static, Result<Response, Infallible>>),
    Failed(Option<Response>),
}

impl Future for GuardedFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            GuardedFuture::Running { call, link, .. } => match call.poll_unpin(context) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(answer)) => Poll::Ready(answer),
                Poll::Ready(Err(panic)) => {
                    link.count_panic(panic.as_ref(), "");
                    Poll::Ready(Ok(link.failed()))
                }
            },
            GuardedFuture::Passed(rest) => rest.poll_unpin(context),
            GuardedFuture::Failed(answer) => Poll::Ready(Ok(answer
                .take()
                .expect("a GuardedFuture is not polled after it answered"))),
        }
    }
}
