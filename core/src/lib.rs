//! PlexiChat: an application server composed from plugins at compile time.
//!
//! This crate is the facade every plugin depends on. A plugin is a crate that declares one
//! type with [`plugin`], routes with [`route`], and event handlers with [`on_event`]; the
//! macros register into link-time slices declared here, and the `plexichat` binary serves
//! whatever cargo features compiled in. See the README's "your first plugin".
//!
//! ```
//! use plexichat::prelude::*;
//!
//! /// Says hello.
//! #[plugin(author = "You")]
//! #[derive(Default)]
//! pub struct Hello;
//!
//! #[route(GET, "/greeting")]
//! async fn greeting() -> Json<Value> {
//!     Json(json!({ "hello": "world" }))
//! }
//! # fn main() {}
//! ```

// Generated code names `::plexichat::…`; this lets the crate's own tests use the macros too.
extern crate self as plexichat;

pub mod error;
pub mod event;
pub mod extract;
pub mod info;
pub mod plugin;
pub mod registry;
pub mod route;
pub mod runtime;
pub mod server;
pub mod testing;

/// Re-exported for plugins that need more of axum than the prelude gives.
pub use axum;
pub use error::ApiError;
pub use event::{Event, Shutdown, Startup};
pub use extract::{Events, PluginState};
pub use plexichat_macros::{event, on_event, plugin, route};
pub use plugin::{Plugin, PluginDescriptor, PluginType};
pub use registry::{Registry, RegistryError, RegistryErrors};
pub use runtime::{DispatchReport, Runtime};
/// Re-exported so that plugins need no direct serde dependency (`#[serde(crate = "plexichat::serde")]`).
pub use serde;
/// Re-exported so that plugins build JSON with the same version the framework serialises with.
pub use serde_json;

/// The current time as RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T05:06:57.123Z`.
pub fn timestamp() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The version of this crate, checked against the macro crate's in every expansion.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a plugin crate usually needs: `use plexichat::prelude::*;`.
pub mod prelude {
    pub use crate::axum::Json;
    pub use crate::axum::extract::{Path, Query};
    pub use crate::axum::http::StatusCode;
    pub use crate::serde_json::{Value, json};
    pub use crate::{
        ApiError, Event, Events, PluginState, Shutdown, Startup, event, on_event, plugin, route,
    };
}

/// Everything generated code touches, under one absolute path. Not public API: only the
/// macros of the matching `plexichat-macros` version may use it.
#[doc(hidden)]
pub mod __private {
    pub use crate::__plexichat_register as register;
    pub use crate::event::{
        Event, EventHandlerDescriptor, HandlerFn, HandlerFuture, HandlerOutcome,
    };
    pub use crate::plugin::{Plugin, PluginDescriptor, PluginType, UiPage};
    #[cfg(not(feature = "inventory"))]
    pub use crate::registry::{PLEXICHAT_EVENT_HANDLERS, PLEXICHAT_PLUGINS, PLEXICHAT_ROUTES};
    pub use crate::route::{Method, RouteDescriptor, method_router};
    pub use crate::runtime::Runtime;
    pub use axum::routing::MethodRouter;
    #[cfg(feature = "inventory")]
    pub use inventory;
    pub use linkme;
    pub use serde;

    pub use std::any::{Any, TypeId};
    pub use std::boxed::Box;
    pub use std::format;
    pub use std::option::Option;
    pub use std::result::Result;
    pub use std::string::String;
    pub use std::sync::Arc;

    /// The error an event handler shim reports when it cannot call the user's function.
    pub fn fail(message: std::fmt::Arguments<'_>) -> Result<(), String> {
        Err(message.to_string())
    }

    /// `None` for an empty string: cargo sets `CARGO_PKG_HOMEPAGE` and friends to `""` when
    /// the manifest leaves them out.
    pub const fn non_empty(value: &'static str) -> Option<&'static str> {
        if value.is_empty() { None } else { Some(value) }
    }

    /// Creates a plugin's state; `#[plugin]` types implement `Default`.
    pub fn construct<P: Default + Send + Sync + 'static>() -> Arc<dyn Any + Send + Sync> {
        Arc::new(P::default())
    }

    /// Fails the build when the macros that expanded a plugin come from another version than
    /// this facade, which can only happen if a crate depends on `plexichat-macros` directly.
    pub const fn check_macros_version(macros: &str) {
        let (a, b) = (macros.as_bytes(), crate::VERSION.as_bytes());
        let mut same = a.len() == b.len();
        let mut index = 0;
        while same && index < a.len() {
            same = a[index] == b[index];
            index += 1;
        }
        if !same {
            panic!(
                "plexichat-macros and plexichat versions differ: depend on the `plexichat` facade only"
            );
        }
    }
}
