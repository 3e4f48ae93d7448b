//! Generated code names only `::core::…` and `::plexichat::__private::…`: every one of the
//! eleven macros expands here, with no prelude and with crate-root items that shadow every
//! name an expansion could pick up by accident. A relative path in an expansion fails to
//! compile.

#![no_implicit_prelude]
#![allow(dead_code, non_camel_case_types)]

// Modules named like the crates an expansion uses: `::core` and `::plexichat` must still
// mean the crates, and a relative `serde::` or `std::` would land here.
mod core {}
mod std {}
mod alloc {}
mod serde {}
mod schemars {}
mod linkme {}
mod axum {}
mod plexichat {}
mod __private {}

// Items named like the prelude and the primitive types an expansion writes.
struct Option;
struct Some;
struct None;
struct Result;
struct Ok;
struct Err;
struct Box;
struct String;
struct Vec;
struct Default;
struct Send;
struct Sync;
struct Sized;
struct Any;
struct TypeId;
struct Arc;
struct str;
struct u8;
struct i32;
struct bool;
struct Plugin;
struct Event;
struct Configurable;
struct Runtime;
struct Method;
struct MethodRouter;
struct PluginDescriptor;
struct RouteDescriptor;
struct EventHandlerDescriptor;
struct ELEMENT;
struct PREFIX;
struct PREFIX_LEN;
struct make;
struct shim;
struct Request;
struct Next;
struct Response;
struct IntoResponse;
struct Future;
struct Pin;
struct PluginContext;
struct CommandContext;
struct TestContext;
struct Json;
struct ARGS;
struct CALL;
struct run;

/// `#[config]` itself writes only absolute derive paths, but the serde and schemars derives it
/// routes to expect the prelude (`.into()`, `Some`, `str`), so its struct lives in a module that
/// imports the prelude and sees none of the shadowing items above.
mod settings {
    use ::plexichat::clap;
    use ::std::prelude::rust_2024::*;

    /// The plugin's settings.
    #[::plexichat::config]
    #[derive(Default)]
    pub struct Settings {
        /// A setting.
        pub level: u32,
    }

    /// A response body; `#[payload]`, like `#[config]`, routes derives that expect the prelude.
    #[::plexichat::payload(response)]
    pub struct Report {
        /// A count.
        pub count: u32,
    }

    /// A command's arguments (clap's derive expects the prelude too).
    #[derive(Debug, ::plexichat::clap::Args)]
    pub struct ListArgs {
        /// Print JSON.
        #[arg(long)]
        pub json: bool,
    }
}

use settings::{ListArgs, Report, Settings};

/// A plugin with a configuration, its default name and its default prefix.
#[::plexichat::plugin(
    author = "Tester",
    type = custom,
    config = Settings,
    lifecycle = false,
    permissions = ["plugin:read", "events:publish", "plugins:read"]
)]
#[derive(::core::default::Default)]
struct Hygienic;

/// An event.
#[::plexichat::event(name = "hygiene.happened")]
struct Happened;

#[::plexichat::on_event(priority = 1)]
fn on_happened_sync(_plugin: &Hygienic, _event: &Happened) {}

#[::plexichat::on_event]
async fn on_happened_async(_event: &Happened) -> ::core::result::Result<(), ::std::string::String> {
    ::core::result::Result::Ok(())
}

#[::plexichat::route(GET, "/status/{id}")]
async fn status(
    _state: ::plexichat::PluginState<Hygienic>,
    _config: ::plexichat::PluginConfig<Hygienic>,
) -> &'static ::core::primitive::str {
    "ok"
}

#[::plexichat::route(GET, "/report")]
#[::plexichat::debug_handler]
async fn report(_state: ::plexichat::PluginState<Hygienic>) -> ::plexichat::extract::Json<Report> {
    ::plexichat::extract::Json(Report { count: 1 })
}

/// Lists things.
#[::plexichat::command(category = "hygiene", name = "list", dangerous = true, starts_plugins = true)]
async fn list(
    _context: ::plexichat::command::CommandContext<Hygienic>,
    _args: ListArgs,
) -> ::core::result::Result<(), ::plexichat::BoxError> {
    ::core::result::Result::Ok(())
}

#[::plexichat::middleware(scope = global, priority = 3)]
async fn stamp(
    _context: ::plexichat::PluginContext<Hygienic>,
    request: ::plexichat::middleware::Request,
    next: ::plexichat::middleware::Next,
) -> ::plexichat::response::Response {
    next.run(request).await
}

#[::plexichat::middleware(layer)]
fn identity() -> ::plexichat::tower::layer::util::Identity {
    ::plexichat::tower::layer::util::Identity::new()
}

#[::plexichat::health_check(liveness)]
async fn alive(
    _context: &::plexichat::PluginContext<Hygienic>,
) -> ::core::result::Result<(), ::std::string::String> {
    ::core::result::Result::Ok(())
}

/// An async test.
#[::plexichat::plugin_test(timeout = "5s", tags = ["smoke"], category = integration)]
async fn answers(
    _context: &::plexichat::tests::TestContext<Hygienic>,
) -> ::core::result::Result<(), ::std::string::String> {
    ::core::result::Result::Ok(())
}

/// A sync test.
#[::plexichat::plugin_test]
fn answers_at_once(
    _context: &::plexichat::tests::TestContext<Hygienic>,
) -> ::core::result::Result<(), ::std::string::String> {
    ::core::result::Result::Ok(())
}

fn main() {}
