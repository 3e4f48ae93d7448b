//! Plugins' `#[middleware]` put around the routes they apply to, in chain order, each skipped
//! while its plugin is not running and each panic contained and counted against its plugin.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use futures_util::FutureExt;
use serde_json::json;

use crate::abi::middleware::{MiddlewareDescriptor, MiddlewareScope};
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

/// Wraps `plugin`'s route in that plugin's own middleware; the first in chain order ends up
/// outermost.
pub(crate) fn wrap_route(
    runtime: &Runtime,
    plugin: &'static str,
    mut route: MethodRouter<Runtime>,
) -> MethodRouter<Runtime> {
    let own: Vec<&ResolvedMiddleware> = runtime
        .registry()
        .middleware_of(plugin)
        .filter(|middleware| middleware.descriptor.scope == MiddlewareScope::PluginRoutes)
        .collect();
    // `layer` wraps what is there, so the last applied is the first to see a request.
    for middleware in own.into_iter().rev() {
        route = route.layer(from_fn_with_state(Link::new(runtime, middleware), run));
    }
    route
}

/// Wraps the whole application (core routes, plugin routes, the fallback) in the global
/// middleware.
pub(crate) fn wrap_app(runtime: &Runtime, mut router: Router<Runtime>) -> Router<Runtime> {
    let global: Vec<&ResolvedMiddleware> = runtime
        .registry()
        .middleware()
        .iter()
        .filter(|middleware| middleware.descriptor.scope == MiddlewareScope::Global)
        .collect();
    for middleware in global.into_iter().rev() {
        router = router.layer(from_fn_with_state(Link::new(runtime, middleware), run));
    }
    router
}

/// Runs one middleware: passed over while its plugin is not running; a panic in it is a 500
/// for this request, logged with the plugin's name and counted in its route stats.
async fn run(State(link): State<Link>, request: Request, next: Next) -> Response {
    // Counted in flight like a route, so the plugin's `stop` waits for code of its own.
    let Some(_busy) = link.slot.enter() else {
        return next.run(request).await;
    };
    let call = (link.descriptor.call)(link.runtime.clone(), request, next);
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            link.counters
                .middleware_panics
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                plugin = link.plugin,
                middleware = link.descriptor.name,
                error = %panic_message(panic.as_ref()),
                "middleware panicked"
            );
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
                .with_details(json!({ "plugin": link.plugin }))
                .into_response()
        }
    }
}
