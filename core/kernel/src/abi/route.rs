//! HTTP routes registered by `#[route(METHOD, "/path")]`.

use std::fmt;

use axum::routing::{MethodFilter, MethodRouter};
use serde::Serialize;

use crate::runtime::Host;

/// The HTTP methods `#[route]` accepts; the variants, `ALL` and `as_str` (the upper-case wire
/// name) come from `plexichat_rules::METHODS`, the table `#[route]` checks against.
#[plexichat_macros::__variants(METHODS)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Method {}

impl Method {
    pub(crate) fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Patch => MethodFilter::PATCH,
            Method::Delete => MethodFilter::DELETE,
            Method::Head => MethodFilter::HEAD,
            Method::Options => MethodFilter::OPTIONS,
            Method::Trace => MethodFilter::TRACE,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One route, as registered by `#[route]`; its path is relative to the plugin's prefix.
pub struct RouteDescriptor {
    /// HTTP method.
    pub method: Method,
    /// Path below the plugin prefix, checked at compile time (starts with `/`, `{param}` syntax).
    pub path: &'static str,
    /// Name of the handler function, for listings and messages.
    pub handler: &'static str,
    /// Crate that declared the route; it belongs to that crate's plugin.
    pub crate_name: &'static str,
    /// Source location, so duplicate-route errors can name both parties.
    pub location: &'static str,
    /// Builds the axum method router for the handler.
    pub make: fn() -> MethodRouter<Host>,
    /// The handler's doc comment: the first paragraph is the operation's summary in the
    /// OpenAPI document, the rest its description.
    pub doc: &'static str,
    /// Adds the parameters, body and responses the handler's types document.
    pub describe: fn(&mut crate::abi::openapi::Describer),
}

impl fmt::Debug for RouteDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.method, self.path, self.location)
    }
}

/// An axum handler with the runtime as its state: what `#[route]` accepts.
///
/// It exists for its diagnostic: rustc reports the trait a call asked for, so a function
/// axum cannot serve gets this message, which names the facade's `debug_handler` instead of
/// `axum::debug_handler` (unreachable from a crate that depends on `plexichat` only).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a route handler",
    label = "axum cannot call this function with the request",
    note = "every argument but the last must read the request's head (`PluginState`, `Query`, `HeaderMap`, ...), the last may read the body (`Json`, `String`, `Bytes`), the return type must implement `IntoResponse`, and the future must be `Send`",
    note = "put `#[plexichat::debug_handler]` under `#[route]` to see which of these is wrong"
)]
pub trait RouteHandler<T>: axum::handler::Handler<T, Host> {}

impl<H: axum::handler::Handler<T, Host>, T> RouteHandler<T> for H {}

/// Wraps an axum handler for a route descriptor; generated code calls this so that a handler
/// that axum cannot serve is reported on the user's function.
#[doc(hidden)]
pub fn method_router<H, T>(method: Method, handler: H) -> MethodRouter<Host>
where
    H: RouteHandler<T>,
    T: 'static,
{
    axum::routing::on(method.filter(), handler)
}
