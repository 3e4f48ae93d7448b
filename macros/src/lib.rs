//! The proc macros behind `plexichat`'s `#[plugin]`, `#[route]`, `#[on_event]`, `#[event]`,
//! `#[command]`, `#[middleware]`, `#[health_check]` and `#[plugin_test]`.
//!
//! A private implementation detail: plugins depend on the `plexichat` facade, which pins this
//! crate with `=version` and re-exports the macros. Every macro is parse → validate → expand;
//! all mistakes in one invocation are reported together, each at the offending token, and the
//! user's item is emitted unchanged even on error, with the impls other code relies on
//! (`Plugin`, `Configurable`, `Event`), so one mistake gives one message.
//! Generated code names only `::core::…` and `::plexichat::__private::…`.

mod args;
mod assets;
mod command;
mod config;
mod debug_handler;
mod event;
mod health_check;
mod log_sink;
mod middleware;
mod migrations;
mod on_event;
mod payload;
mod plugin;
mod plugin_test;
mod route;
mod rules;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Declares the crate's plugin: its manifest, and the type that holds its state.
///
/// ```text
/// /// An awesome plugin for PlexiChat.
/// #[plugin(author = "Your Name", type = feature, prefix = "/api/v1/awesome")]
/// #[derive(Default)]
/// pub struct AwesomePlugin { /* state */ }
/// ```
#[proc_macro_attribute]
pub fn plugin(args: TokenStream, item: TokenStream) -> TokenStream {
    plugin::expand(args.into(), item.into()).into()
}

/// Registers an async axum handler at a path below the plugin's prefix: `#[route(GET, "/status")]`.
#[proc_macro_attribute]
pub fn route(args: TokenStream, item: TokenStream) -> TokenStream {
    route::expand(args.into(), item.into()).into()
}

/// Registers a handler for a typed event: `fn(&Event)` or `fn(&MyPlugin, &Event)`, sync or
/// async, optionally `#[on_event(priority = 10)]` (higher runs first).
#[proc_macro_attribute]
pub fn on_event(args: TokenStream, item: TokenStream) -> TokenStream {
    on_event::expand(args.into(), item.into()).into()
}

/// Registers HTTP middleware: `async fn(request: Request, next: Next) -> impl IntoResponse`,
/// optionally taking `context: PluginContext<MyPlugin>` first. `scope = plugin` (the default:
/// only this plugin's routes) or `scope = global` (every request); `priority = 10` (higher is
/// further out).
#[proc_macro_attribute]
pub fn middleware(args: TokenStream, item: TokenStream) -> TokenStream {
    middleware::expand(args.into(), item.into()).into()
}

/// Registers a log sink of a plugin: `#[log_sink(plugins = ["channels"], level = "warn",
/// capacity = 4096)]` (every key optional: everyone's records, `info` and above, 4096
/// waiting) on `fn(&PluginContext<MyPlugin>, &[LogRecord]) -> Result<(), E>` (or `&MyPlugin`
/// first), sync or async. It receives the records in batches, in order, from a bounded queue.
#[proc_macro_attribute]
pub fn log_sink(args: TokenStream, item: TokenStream) -> TokenStream {
    log_sink::expand(args.into(), item.into()).into()
}

/// Registers a named health check of a plugin: `#[health_check(liveness)]` (failing
/// repeatedly gets the plugin restarted) or `#[health_check(readiness)]` (failing makes
/// `/ready` answer 503), on a function of `&PluginContext<MyPlugin>`, `&MyPlugin` or nothing
/// that returns `Result<(), E>`.
#[proc_macro_attribute]
pub fn health_check(args: TokenStream, item: TokenStream) -> TokenStream {
    health_check::expand(args.into(), item.into()).into()
}

/// Registers a test of the plugin that ships inside the binary: `fn(&TestContext<MyPlugin>)
/// -> Result<(), E>` (or no argument), sync or async. Keys: `timeout = "30s"`, `retries = 2`,
/// `tags = ["smoke"]`, `category = security` (functionality, performance, security,
/// integration, analytics, user_experience; default functionality). Its doc comment says
/// what it checks.
#[proc_macro_attribute]
pub fn plugin_test(args: TokenStream, item: TokenStream) -> TokenStream {
    plugin_test::expand(args.into(), item.into()).into()
}

/// Declares an event type with its stable name: `#[event(name = "awesome.action.completed")]`.
#[proc_macro_attribute]
pub fn event(args: TokenStream, item: TokenStream) -> TokenStream {
    event::expand(args.into(), item.into()).into()
}

/// Registers a plugin CLI command, `plexichat <category> <name> [ARGS]`: an `async fn` taking
/// `CommandContext<MyPlugin>` and, optionally, a struct with `#[derive(clap::Args)]`. Its doc
/// comment is the help. Keys: `category` (default: the plugin's name), `name` (default: the
/// function's), `since`, `admin_only`, `dangerous`, `requires_auth`, `server`, `starts_plugins`.
#[proc_macro_attribute]
pub fn command(args: TokenStream, item: TokenStream) -> TokenStream {
    command::expand(args.into(), item.into()).into()
}

/// Makes a struct or enum a request or response body: derives `Serialize`, `Deserialize` and
/// `JsonSchema` through the facade. `#[payload(request)]` derives only `Deserialize` (and the
/// schema), `#[payload(response)]` only `Serialize`. `#[serde(...)]` attributes work as usual.
#[proc_macro_attribute]
pub fn payload(args: TokenStream, item: TokenStream) -> TokenStream {
    payload::expand(args.into(), item.into()).into()
}

/// Checks a route handler's arguments, return type and future one by one, each at its own
/// span: put it under `#[route]` when rustc says the function "is not a handler".
#[proc_macro_attribute]
pub fn debug_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    debug_handler::expand(args.into(), item.into()).into()
}

/// Makes a struct a plugin configuration section: derives `Serialize`, `Deserialize` and
/// `JsonSchema` through the facade, fills missing keys from `Default`, and rejects unknown
/// keys. Doc comments become the schema's descriptions; `#[schemars(range(min = 1))]` and
/// friends become its constraints.
#[proc_macro_attribute]
pub fn config(args: TokenStream, item: TokenStream) -> TokenStream {
    config::expand(args.into(), item.into()).into()
}

/// Fills a core enum with the variants of a `plexichat-rules` table. Core only.
#[doc(hidden)]
#[proc_macro_attribute]
pub fn __variants(args: TokenStream, item: TokenStream) -> TokenStream {
    rules::variants(args.into(), item.into()).into()
}

/// Core's permission vocabulary and marker traits, from `plexichat-rules`. Core only.
#[doc(hidden)]
#[proc_macro]
pub fn __permissions(args: TokenStream) -> TokenStream {
    rules::permissions(args.into()).into()
}
