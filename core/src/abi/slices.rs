//! The only distributed slices in the program: every `#[plugin]`, `#[route]`, `#[event]`,
//! `#[on_event]`, `#[command]`, `#[middleware]`, `#[health_check]` and `#[plugin_test]` registers its
//! descriptor here, through linkme's link sections or, with the
//! `inventory` feature, inventory's constructors. Neither orders nor de-duplicates what it
//! collects; the registry does.

use crate::abi::command::CommandDescriptor;
use crate::abi::event::{EventDescriptor, EventHandlerDescriptor};
use crate::abi::health::HealthCheckDescriptor;
use crate::abi::middleware::MiddlewareDescriptor;
use crate::abi::plugin::PluginDescriptor;
use crate::abi::plugin_test::PluginTestDescriptor;
use crate::abi::route::RouteDescriptor;

#[cfg(not(feature = "inventory"))]
mod backend {
    use super::*;

    /// Every `#[plugin]` in the program.
    #[linkme::distributed_slice]
    pub static PLEXICHAT_PLUGINS: [PluginDescriptor];

    /// Every `#[route]` in the program.
    #[linkme::distributed_slice]
    pub static PLEXICHAT_ROUTES: [RouteDescriptor];

    /// Every `#[on_event]` in the program.
    #[linkme::distributed_slice]
    pub static PLEXICHAT_EVENT_HANDLERS: [EventHandlerDescriptor];

    /// Every `#[event]` in the program, and the core's own events.
    #[linkme::distributed_slice]
    pub static PLEXICHAT_EVENTS: [EventDescriptor];

    /// Every `#[command]` in the program.
    #[linkme::distributed_slice]
    pub static PLEXICHAT_COMMANDS: [CommandDescriptor];

    /// Every `#[middleware]` in the program.
    #[linkme::distributed_slice]
    pub static PLEXICHAT_MIDDLEWARE: [MiddlewareDescriptor];

    /// Every `#[health_check]` in the program.
    #[linkme::distributed_slice]
    pub static PLEXICHAT_HEALTH_CHECKS: [HealthCheckDescriptor];

    /// Every `#[plugin_test]` in the program.
    #[linkme::distributed_slice]
    pub static PLEXICHAT_PLUGIN_TESTS: [PluginTestDescriptor];

    pub(crate) fn plugins() -> impl Iterator<Item = &'static PluginDescriptor> {
        PLEXICHAT_PLUGINS.iter()
    }
    pub(crate) fn routes() -> impl Iterator<Item = &'static RouteDescriptor> {
        PLEXICHAT_ROUTES.iter()
    }
    pub(crate) fn handlers() -> impl Iterator<Item = &'static EventHandlerDescriptor> {
        PLEXICHAT_EVENT_HANDLERS.iter()
    }
    pub(crate) fn events() -> impl Iterator<Item = &'static EventDescriptor> {
        PLEXICHAT_EVENTS.iter()
    }
    pub(crate) fn commands() -> impl Iterator<Item = &'static CommandDescriptor> {
        PLEXICHAT_COMMANDS.iter()
    }
    pub(crate) fn middleware() -> impl Iterator<Item = &'static MiddlewareDescriptor> {
        PLEXICHAT_MIDDLEWARE.iter()
    }
    pub(crate) fn health_checks() -> impl Iterator<Item = &'static HealthCheckDescriptor> {
        PLEXICHAT_HEALTH_CHECKS.iter()
    }
    pub(crate) fn plugin_tests() -> impl Iterator<Item = &'static PluginTestDescriptor> {
        PLEXICHAT_PLUGIN_TESTS.iter()
    }

    /// Adds one element to a slice; generated code reaches it as
    /// `::plexichat::__private::register!`.
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __plexichat_register {
        ($slice:ident, $ty:ty, $value:expr) => {
            const _: () = {
                #[::plexichat::__private::linkme::distributed_slice(::plexichat::__private::$slice)]
                #[linkme(crate = ::plexichat::__private::linkme)]
                static ELEMENT: $ty = $value;
            };
        };
    }
}

#[cfg(feature = "inventory")]
mod backend {
    use super::*;

    inventory::collect!(PluginDescriptor);
    inventory::collect!(RouteDescriptor);
    inventory::collect!(EventHandlerDescriptor);
    inventory::collect!(EventDescriptor);
    inventory::collect!(CommandDescriptor);
    inventory::collect!(MiddlewareDescriptor);
    inventory::collect!(HealthCheckDescriptor);
    inventory::collect!(PluginTestDescriptor);

    pub(crate) fn plugins() -> impl Iterator<Item = &'static PluginDescriptor> {
        inventory::iter::<PluginDescriptor>.into_iter()
    }
    pub(crate) fn routes() -> impl Iterator<Item = &'static RouteDescriptor> {
        inventory::iter::<RouteDescriptor>.into_iter()
    }
    pub(crate) fn handlers() -> impl Iterator<Item = &'static EventHandlerDescriptor> {
        inventory::iter::<EventHandlerDescriptor>.into_iter()
    }
    pub(crate) fn events() -> impl Iterator<Item = &'static EventDescriptor> {
        inventory::iter::<EventDescriptor>.into_iter()
    }
    pub(crate) fn commands() -> impl Iterator<Item = &'static CommandDescriptor> {
        inventory::iter::<CommandDescriptor>.into_iter()
    }
    pub(crate) fn middleware() -> impl Iterator<Item = &'static MiddlewareDescriptor> {
        inventory::iter::<MiddlewareDescriptor>.into_iter()
    }
    pub(crate) fn health_checks() -> impl Iterator<Item = &'static HealthCheckDescriptor> {
        inventory::iter::<HealthCheckDescriptor>.into_iter()
    }
    pub(crate) fn plugin_tests() -> impl Iterator<Item = &'static PluginTestDescriptor> {
        inventory::iter::<PluginTestDescriptor>.into_iter()
    }

    /// Adds one element to a collection; generated code reaches it as
    /// `::plexichat::__private::register!`.
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __plexichat_register {
        ($slice:ident, $ty:ty, $value:expr) => {
            ::plexichat::__private::inventory::submit! { $value }
        };
    }
}

#[cfg(not(feature = "inventory"))]
pub use backend::{
    PLEXICHAT_COMMANDS, PLEXICHAT_EVENT_HANDLERS, PLEXICHAT_EVENTS, PLEXICHAT_HEALTH_CHECKS,
    PLEXICHAT_MIDDLEWARE, PLEXICHAT_PLUGIN_TESTS, PLEXICHAT_PLUGINS, PLEXICHAT_ROUTES,
};
pub(crate) use backend::{
    commands, events, handlers, health_checks, middleware, plugin_tests, plugins, routes,
};
