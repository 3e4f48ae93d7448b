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

mod admin;
pub mod config;
mod connections;
pub mod data_dir;
pub mod error;
pub mod event;
pub mod extract;
pub mod info;
pub mod lifecycle;
mod log_limit;
mod middleware;
pub mod plugin;
pub mod registry;
pub mod route;
pub mod runtime;
pub mod secret;
pub mod server;
pub mod state;
pub mod testing;

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
pub use secret::Secret;
/// Re-exported for `#[config]` types (`#[schemars(range(min = 1))]` and friends).
pub use schemars;
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
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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
    pub use crate::config::{ConfigSpec, defaults_of, parse_as, schema_of};
    pub use crate::event::{
        Event, EventHandlerDescriptor, HandlerFn, HandlerFuture, HandlerOutcome,
    };
    pub use crate::lifecycle::{HooksOf, LifecycleHooks};
    pub use crate::plugin::{Configurable, Plugin, PluginDescriptor, PluginType, UiPage};
    #[cfg(not(feature = "inventory"))]
    pub use crate::registry::{PLEXICHAT_EVENT_HANDLERS, PLEXICHAT_PLUGINS, PLEXICHAT_ROUTES};
    pub use crate::route::{Method, RouteDescriptor, method_router};
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

    /// The facade's version, the default `min_plexichat_version`.
    pub use crate::VERSION;

    /// The error an event handler shim reports when it cannot call the user's function.
    pub fn fail(message: std::fmt::Arguments<'_>) -> Result<(), String> {
        Err(message.to_string())
    }

    /// `None` for an empty string: cargo sets `CARGO_PKG_HOMEPAGE` and friends to `""` when
    /// the manifest leaves them out.
    pub const fn non_empty(value: &'static str) -> Option<&'static str> {
        if value.is_empty() { None } else { Some(value) }
    }

    /// Fails the build when a plugin needs a newer PlexiChat than the facade it is compiled
    /// against. Both versions are `major.minor.patch`; the macro checked the plugin's syntax.
    pub const fn check_min_version(required: &str) {
        let (need, have) = (
            parse_version(required.as_bytes()),
            parse_version(crate::VERSION.as_bytes()),
        );
        let newer = need[0] > have[0]
            || (need[0] == have[0] && need[1] > have[1])
            || (need[0] == have[0] && need[1] == have[1] && need[2] > have[2]);
        if newer {
            panic!(
                "this plugin's `min_plexichat_version` is newer than the plexichat it is built against"
            );
        }
    }

    /// `major.minor.patch` as numbers; stops at the first character that is not a digit or a
    /// dot, so pre-release suffixes are ignored.
    const fn parse_version(text: &[u8]) -> [u64; 3] {
        let mut parts = [0u64; 3];
        let (mut index, mut part) = (0, 0);
        while index < text.len() && part < 3 {
            let byte = text[index];
            if byte == b'.' {
                part += 1;
            } else if byte.is_ascii_digit() {
                parts[part] = parts[part] * 10 + (byte - b'0') as u64;
            } else {
                break;
            }
            index += 1;
        }
        parts
    }

    /// Creates a plugin's state; `#[plugin]` types implement `Default`.
    pub fn construct<P: Default + Send + Sync + 'static>() -> Arc<dyn Any + Send + Sync> {
        Arc::new(P::default())
    }

    /// Fails the build when the macros that expanded a plugin come from another version than
    /// this facade, which can only happen if a crate depends on `plexichat-macros` directly.
    pub const fn check_macros_version(macros: &str) {
        if !str_eq(macros, crate::VERSION) {
            panic!(
                "plexichat-macros and plexichat versions differ: depend on the `plexichat` facade only"
            );
        }
    }

    /// `a == b` in const context.
    const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        let mut same = a.len() == b.len();
        let mut index = 0;
        while same && index < a.len() {
            same = a[index] == b[index];
            index += 1;
        }
        same
    }

    /// Plugin names that core's own routes use below `/api/v1/`. `#[plugin]` rejects them
    /// when written as `name = "..."`; [`check_plugin_name`] catches the default name, the
    /// crate name, which only rustc knows.
    pub const RESERVED_PLUGIN_NAMES: [&str; 2] = ["admin", "plugins"];

    /// Fails the build when a plugin's name is one of [`RESERVED_PLUGIN_NAMES`].
    pub const fn check_plugin_name(name: &str) {
        let mut index = 0;
        while index < RESERVED_PLUGIN_NAMES.len() {
            if str_eq(name, RESERVED_PLUGIN_NAMES[index]) {
                panic!(
                    "plugin name is reserved for core routes (`admin`, `plugins`); the name defaults to the crate name: set `#[plugin(name = \"...\")]`"
                );
            }
            index += 1;
        }
    }

    /// Where a plugin's routes are mounted unless it sets `prefix`.
    const PREFIX_ROOT: &str = "/api/v1/";

    /// The length of [`default_prefix`] for `name`, for the array type that holds it.
    pub const fn default_prefix_len(name: &str) -> usize {
        PREFIX_ROOT.len() + name.len()
    }

    /// `/api/v1/<name with '-' for '_'>` as bytes, computed in const context because the
    /// default name is the crate name, which only rustc knows; [`utf8`] makes it a `&str`.
    pub const fn default_prefix<const N: usize>(name: &str) -> [u8; N] {
        let (root, name) = (PREFIX_ROOT.as_bytes(), name.as_bytes());
        let mut prefix = [0u8; N];
        let mut index = 0;
        while index < N {
            let byte = if index < root.len() {
                root[index]
            } else {
                name[index - root.len()]
            };
            prefix[index] = if byte == b'_' { b'-' } else { byte };
            index += 1;
        }
        prefix
    }

    /// The text of [`default_prefix`]; it only maps `_` to `-`, so it stays UTF-8.
    pub const fn utf8(bytes: &'static [u8]) -> &'static str {
        match core::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => panic!("a default plugin prefix is not UTF-8"),
        }
    }
}
