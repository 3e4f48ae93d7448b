//! Generated code names only `::core::…` and `::plexichat::__private::…`: every macro expands
//! here, with no prelude and with crate-root items that shadow every name an expansion could
//! pick up by accident. A relative path in an expansion fails to compile.

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

/// `#[config]` itself writes only absolute derive paths, but the serde and schemars derives it
/// routes to expect the prelude (`.into()`, `Some`, `str`), so its struct lives in a module that
/// imports the prelude and sees none of the shadowing items above.
mod settings {
    use ::std::prelude::rust_2024::*;

    /// The plugin's settings.
    #[::plexichat::config]
    #[derive(Default)]
    pub struct Settings {
        /// A setting.
        pub level: u32,
    }
}

use settings::Settings;

/// A plugin with a configuration, its default name and its default prefix.
#[::plexichat::plugin(author = "Tester", type = custom, config = Settings, lifecycle = false)]
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

fn main() {}
