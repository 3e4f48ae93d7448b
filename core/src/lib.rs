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

// Layers, lowest first; a lower one never imports a higher one (a tidy test in
// `tests/it/tidy.rs` holds this): `abi` (descriptors, slices, traits) → `registry` → `config`
// → `runtime` and `storage` → `http`. This file sits on top and only re-exports.
mod abi;
pub mod config;
mod http;
pub mod registry;
pub mod runtime;
mod storage;
pub mod testing;

/// The files the server keeps: its private data folder and the admin token in it.
pub use storage::data_dir;
/// Typed events, the core lifecycle events, and what `#[on_event]` registers.
pub mod event {
    pub use crate::abi::event::*;
    pub use crate::runtime::{ConfigChanged, ConfigChanging};
}
/// Plugin lifecycle hooks, what they receive, and background tasks.
pub mod lifecycle {
    pub use crate::abi::hooks::*;
    pub use crate::runtime::{PluginContext, TaskContext, TaskStatus};
}
pub use abi::{plugin, route};
pub use config::secret;
pub use http::{error, extract};
/// The HTTP server: the application router, `serve`, and its options.
pub mod server {
    pub use crate::http::{
        LOG_TARGET, ServerError, ServerOptions, app, app_with, serve, shutdown_signal,
    };
}
pub use runtime::{info, state};

/// Re-exported for plugins that need more of axum than the prelude gives.
pub use axum;
pub use error::ApiError;
pub use event::{ConfigChanged, ConfigChanging, Event, Shutdown, Starting, Startup, Stopped};
pub use extract::{Events, PluginConfig, PluginState};
pub use lifecycle::{BoxError, Lifecycle, PluginContext, TaskContext};
pub use plexichat_macros::{config, event, on_event, plugin, route};
pub use plugin::{Plugin, PluginDescriptor, PluginType};
pub use registry::{Registry, RegistryError, RegistryErrors};
pub use runtime::{DispatchReport, Runtime};
/// Re-exported for `#[config]` types (`#[schemars(range(min = 1))]` and friends).
pub use schemars;
pub use secret::Secret;
/// Re-exported so that plugins need no direct serde dependency (`#[serde(crate = "plexichat::serde")]`).
pub use serde;
/// Re-exported so that plugins build JSON with the same version the framework serialises with.
pub use serde_json;
pub use state::PluginStatus;

/// The current time as RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T05:06:57.123Z`.
pub fn timestamp() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The version of this crate, checked against the macro crate's in every expansion.
pub use abi::expansion::VERSION;

/// What a plugin crate usually needs: `use plexichat::prelude::*;`.
pub mod prelude {
    pub use crate::axum::Json;
    pub use crate::axum::extract::{Path, Query};
    pub use crate::axum::http::StatusCode;
    pub use crate::serde_json::{Value, json};
    pub use crate::{
        ApiError, BoxError, ConfigChanged, ConfigChanging, Event, Events, Lifecycle, PluginConfig,
        PluginContext, PluginState, Shutdown, Starting, Startup, Stopped, TaskContext, config,
        event, on_event, plugin, route,
    };
}

/// Everything generated code touches, under one absolute path. Not public API: only the
/// macros of the matching `plexichat-macros` version may use it.
#[doc(hidden)]
pub mod __private {
    pub use crate::__plexichat_register as register;
    pub use crate::abi::config_spec::{ConfigSpec, defaults_of, parse_as, schema_of};
    pub use crate::abi::event::{
        Event, EventHandlerDescriptor, HandlerFn, HandlerFuture, HandlerOutcome,
    };
    pub use crate::abi::expansion::*;
    pub use crate::abi::hooks::{HooksOf, LifecycleHooks};
    pub use crate::abi::plugin::{Configurable, Plugin, PluginDescriptor, PluginType, UiPage};
    pub use crate::abi::route::{Method, RouteDescriptor, method_router};
    #[cfg(not(feature = "inventory"))]
    pub use crate::abi::slices::{PLEXICHAT_EVENT_HANDLERS, PLEXICHAT_PLUGINS, PLEXICHAT_ROUTES};
    pub use crate::runtime::Runtime;

    /// What a `#[route]`'s descriptor builds: the handler with the runtime as router state.
    pub type MethodRouter = axum::routing::MethodRouter<Runtime>;
    #[cfg(feature = "inventory")]
    pub use inventory;
    pub use linkme;
    pub use schemars;
    pub use serde;

    pub use std::any::{Any, TypeId};
    pub use std::boxed::Box;
    pub use std::format;
    pub use std::option::Option;
    pub use std::result::Result;
    pub use std::string::String;
    pub use std::sync::Arc;
}
