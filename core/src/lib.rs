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

// The facade re-exports; it defines nothing a plugin calls. The layers are crates, lowest
// first: `plexichat-rules` → `plexichat-kernel` (ABI, registry, config, runtime, storage,
// the plugin extractors) → `plexichat-backup` → `plexichat-web` → `plexichat-testing`. What
// only the host may call (the `Runtime`'s constructors and transitions, storage and the data
// folder, serving, backups) stays in those crates, which the binary depends on and a plugin
// does not.

use plexichat_kernel::{abi, config, registry, runtime};
use plexichat_testing::selftest;

/// The AI service a plugin with the `ai` permission calls (`context.ai()`), and what a
/// provider implements.
pub use runtime::ai;
/// The analytics service a plugin with the `analytics` permission records to and queries
/// (`context.analytics()`), and what a provider implements.
pub mod analytics {
    pub use plexichat_kernel::runtime::analytics::{
        Analytics, AnalyticsError, AnalyticsFeed, AnalyticsFuture, AnalyticsProvider,
        AnalyticsQuery, AnalyticsRecord, AnalyticsRow, AnalyticsStats, MAX_DIMENSIONS,
        MAX_DIMENSIONS_JSON, MAX_NAME, MAX_VALUE, valid_name,
    };
}
/// reqwest, for what [`PluginContext::http`] returns (headers, bodies, errors).
pub use reqwest;
/// The outbound HTTP client of plugins that declare `http:client`.
pub use runtime::http_client;
/// Rate limits kept in memory: a burst, then a steady rate, per key.
pub use runtime::limit;
/// sqlx, for plugins' SQL through [`PluginContext::db`]: `sqlx::query("…").bind(…)`.
pub use sqlx;
/// What a plugin stores through its context: the key-value store ([`PluginContext::kv`]), its
/// data folder ([`PluginContext::files`]), and the database engine its SQL runs on.
pub mod storage {
    pub use plexichat_kernel::storage::database::{
        is_unique_violation, now_millis, rfc3339_millis,
    };
    pub use plexichat_kernel::storage::{DatabaseError, Engine, files, kv};
}
/// Typed events, the core lifecycle events, and what `#[on_event]` registers.
pub mod event {
    pub use crate::abi::event::*;
    pub use crate::runtime::{ConfigChanged, ConfigChanging, Rejection, RejectionCause};
}
/// Plugin lifecycle hooks, what they receive, and background tasks.
pub mod lifecycle {
    pub use crate::abi::backup::Backup;
    pub use crate::abi::health::{HealthCheckDescriptor, HealthKind};
    pub use crate::abi::hooks::*;
    pub use crate::runtime::outbox::{Outbox, OutboxEntry, OutboxError, OutboxWaiter};
    pub use crate::runtime::{
        Db, PluginContext, Plugins, TaskContext, TaskStatus, WriteTransaction,
    };
}
pub use abi::{migration, plugin, route};
pub use config::secret;
pub use plexichat_kernel::error;
/// Log sinks: what a `#[log_sink]` function receives.
pub mod logging {
    pub use crate::abi::log_sink::{LogLevel, LogRecord, LogSinkDescriptor};
    pub use crate::runtime::log_sinks::CORE;
}
/// Plugin CLI commands: what a `#[command]` function receives and may return.
pub mod command {
    pub use crate::abi::command::{
        CommandArgs, CommandDescriptor, CommandError, CommandFlags, CommandReturn, UsageError,
    };
    pub use crate::runtime::{CommandContext, Invocation, ServerClient};
}
/// HTTP middleware: what a `#[plexichat::middleware]` function takes, and its scopes.
///
/// `#[middleware(layer)]` takes any tower layer; axum's `from_fn`, `map_request` and
/// `map_response` make one from a function, and `Layer` and `Service` are here to write your
/// own without a tower dependency.
pub mod middleware {
    pub use crate::abi::middleware::{
        MiddlewareCall, MiddlewareDescriptor, MiddlewareForm, MiddlewareScope, Next,
    };
    pub use axum::extract::Request;
    /// What a function given to [`from_fn`] takes last (a `#[middleware]` function takes
    /// [`Next`]).
    pub use axum::middleware::Next as FromFnNext;
    pub use axum::middleware::{
        FromFnLayer, MapRequestLayer, MapResponseLayer, from_fn, map_request, map_response,
    };
    pub use axum::routing::Route;
    pub use tower::{Layer, Service};
}
/// Tests that ship inside the binary: what a `#[plugin_test]` receives, and the runner.
pub mod tests {
    pub use crate::abi::plugin_test::{PluginTestDescriptor, TestBody, TestCategory};
    pub use crate::selftest::*;
}
/// clap, for commands' arguments: `#[derive(clap::Args)]` works with the prelude in scope, so
/// a plugin crate needs no clap dependency of its own.
pub use clap;
pub use runtime::{info, state};
/// tower, for `#[middleware(layer)]`: its layers, `ServiceBuilder`, and the traits to write
/// your own.
pub use tower;
pub mod testing {
    //! Helpers for plugin tests: the linked plugins served through `oneshot`, no socket needed.
    //!
    //! ```
    //! # #[tokio::main(flavor = "current_thread")]
    //! # async fn main() {
    //! use plexichat::testing::TestApp;
    //! use plexichat::serde_json::json;
    //!
    //! let app = TestApp::linked().await;
    //! let (status, body) = app.get("/health").await;
    //! assert_eq!(status, 200);
    //! assert_eq!(body["status"], "ok");
    //!
    //! // An admin token (and, with plexichat's `validation` feature, a configuration:
    //! // `.config(toml)`), and requests with JSON bodies and headers.
    //! let app = TestApp::builder()
    //!     .admin_token("test-token-0123456789-0123456789ab")
    //!     .start()
    //!     .await;
    //! let (status, _) = app.post("/api/v1/admin/config/reload", json!({})).await;
    //! assert_eq!(status, 401);
    //! let (status, _) = app.request("POST", "/api/v1/admin/config/reload").admin().send().await;
    //! assert_ne!(status, 401);
    //! # }
    //! ```

    pub use plexichat_testing::testing::*;
}

/// What a `#[route]` handler can take as arguments.
///
/// The plugin extractors (`PluginState`, `PluginConfig`, `PluginContext`), the input extractors
/// (`Json`, `Query`, `Path`: axum's, with JSON error bodies), the raw request pieces, and
/// WebSockets (`ws::WebSocketUpgrade`). Any other axum extractor works too, through
/// [`axum`]; these are the ones the guide documents.
pub mod extract {
    pub use crate::runtime::PluginContext;
    pub use axum::body::{Body, Bytes};
    /// WebSockets: take `WebSocketUpgrade` in a route and return
    /// `upgrade.on_upgrade(|socket| async move { .. })`; see the plugin guide.
    pub use axum::extract::ws;
    pub use axum::extract::{ConnectInfo, MatchedPath, OriginalUri, RawQuery, Request};
    pub use plexichat_kernel::extract::{ClientAddress, PluginConfig, PluginState};
    pub use plexichat_web::admin::Admin;
    pub use plexichat_web::input::{Json, JsonRejection, Path, Query};
}
/// The OpenAPI document of a binary's routes, and the traits by which a type documents
/// itself as a handler argument or return type.
pub mod openapi {
    pub use crate::abi::openapi::{Describer, InputDoc, OutputDoc};
    pub use plexichat_web::openapi::{document, operations, served};
}
/// The HTTP vocabulary: headers, methods, status codes, URIs.
pub mod http {
    pub use axum::http::{
        Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header, request,
    };
}
/// What a `#[route]` handler can return: anything that is [`IntoResponse`](response::IntoResponse).
pub mod response {
    pub use axum::response::{
        AppendHeaders, ErrorResponse, Html, IntoResponse, IntoResponseParts, NoContent, Redirect,
        Response, Result, sse,
    };
    pub use plexichat_kernel::error::ApiError;
    pub use plexichat_web::assets::content_type;
    pub use plexichat_web::html::escape_html;
    pub use plexichat_web::input::Json;
}

/// Re-exported for plugins that need more of axum than the facade names; the guide's
/// examples never need it.
pub use axum;
pub use error::ApiError;
pub use event::{ConfigChanged, ConfigChanging, Event, Shutdown, Starting, Startup, Stopped};
pub use extract::{PluginConfig, PluginState};
pub use lifecycle::{Backup, BoxError, Lifecycle, PluginContext, TaskContext};
pub use plexichat_macros::{
    command, config, debug_handler, event, health_check, log_sink, middleware, on_event, payload,
    plugin, plugin_test, route,
};
pub use plugin::{Plugin, PluginDescriptor, PluginType};
pub use registry::{Registry, RegistryError, RegistryErrors};
pub use runtime::DispatchReport;
/// Re-exported for `#[config]` types (`#[schemars(range(min = 1))]` and friends).
pub use schemars;
pub use secret::Secret;
/// Re-exported for `#[payload]` and `#[config]` types' `#[serde(...)]` attributes; plugins
/// derive through those two and need no serde dependency of their own.
pub use serde;
/// Re-exported so that plugins build JSON with the same version the framework serialises with.
pub use serde_json;
pub use state::PluginStatus;
/// Re-exported for logging and for [`PluginContext::span`] (`.instrument(context.span())`
/// through `tracing::Instrument`).
pub use tracing;

pub use plexichat_kernel::timestamp;

/// The version of this crate, checked against the macro crate's in every expansion.
pub use abi::expansion::VERSION;

/// What a plugin crate usually needs: `use plexichat::prelude::*;`.
pub mod prelude {
    pub use crate::extract::{Admin, Json, Path, Query};
    pub use crate::http::StatusCode;
    pub use crate::response::IntoResponse;
    pub use crate::serde_json::{Value, json};
    pub use crate::tests::{ContextTests as _, TestContext};
    pub use crate::{
        ApiError, Backup, BoxError, ConfigChanged, ConfigChanging, Event, Lifecycle, PluginConfig,
        PluginContext, PluginState, Shutdown, Starting, Startup, Stopped, TaskContext, config,
        event, health_check, log_sink, middleware, on_event, payload, plugin, plugin_test, route,
    };
    // Not the `command` attribute: clap's derives use `#[command(...)]` as a helper, and both
    // in scope would be ambiguous. Write `#[plexichat::command]`.
    pub use crate::clap;
    pub use crate::command::CommandContext;
}

/// Everything generated code touches, under one absolute path. Not public API: only the
/// macros of the matching `plexichat-macros` version may use it.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::assets::EmbeddedFile;
    pub use crate::abi::backup::{BackupHooks, BackupHooksOf};
    pub use crate::abi::command::{
        ArgsShape, CommandDescriptor, CommandFlags, CommandFuture, NoArgs, args_shape, run_command,
    };
    pub use crate::abi::config_spec::{ConfigSpec, defaults_of, parse_as, schema_of};
    pub use crate::abi::debug::{check_argument, check_last_argument, check_response, check_send};
    pub use crate::abi::event::{
        DeclaresWebhook, Event, EventDescriptor, EventHandlerDescriptor, HandlerFn, HandlerFuture,
        HandlerOutcome,
    };
    pub use crate::abi::expansion::*;
    pub use crate::abi::health::{
        CheckOutcome, HealthCheckDescriptor, HealthFuture, HealthKind,
        check_argument as health_check_argument,
    };
    pub use crate::abi::hooks::{HooksOf, LifecycleHooks};
    pub use crate::abi::log_sink::{LogSinkDescriptor, LogSinkFuture, SinkOutcome, sink_argument};
    pub use crate::abi::middleware::Next;
    pub use crate::abi::middleware::{
        BoxedService, ErasedLayer, MiddlewareCall, MiddlewareContext, MiddlewareDescriptor,
        MiddlewareFuture, MiddlewareLayer, MiddlewareScope,
    };
    pub use crate::abi::migration::Migration;
    pub use crate::abi::openapi::{
        Describer, Probe, ProbeInput, ProbeInputFallback, ProbeOutput, ProbeOutputFallback,
        Undescribed,
    };
    /// The permissions' marker traits, which `#[plugin]` implements for what a plugin declares.
    pub use crate::abi::permission as perm;
    pub use crate::abi::plugin::{Configurable, Plugin, PluginDescriptor, PluginType, UiPage};
    pub use crate::abi::plugin_test::TestEnv;
    pub use crate::abi::plugin_test::{
        PluginTestDescriptor, TestBody, TestCategory, TestFuture, TestOutcome,
    };
    pub use crate::abi::route::{Method, RouteDescriptor, method_router};
    #[cfg(not(feature = "inventory"))]
    pub use crate::abi::slices::statics::*;
    pub use crate::runtime::Host;
    pub use crate::runtime::Invocation;
    pub use crate::selftest::TestContext;
    /// What a `#[middleware]` function's shim takes: the request and the rest of the chain.
    pub use axum::extract::Request;
    pub use clap;
    pub use plexichat_kernel::__plexichat_register as register;

    /// What a `#[route]`'s descriptor builds: the handler with the runtime as router state.
    pub type MethodRouter = axum::routing::MethodRouter<Host>;
    #[cfg(feature = "inventory")]
    pub use crate::abi::slices::inventory;
    #[cfg(not(feature = "inventory"))]
    pub use crate::abi::slices::linkme;
    pub use axum;
    pub use axum::response::IntoResponse;
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
