//! The only distributed slices in the program: every `#[plugin]`, `#[route]`, `#[event]`,
//! `#[on_event]`, `#[command]`, `#[middleware]`, `#[health_check]`, `#[plugin_test]` and `#[log_sink]` registers its
//! descriptor here, through linkme's link sections or, with the
//! `inventory` feature, inventory's constructors. Neither orders nor de-duplicates what it
//! collects; the registry does.

use crate::abi::command::CommandDescriptor;
use crate::abi::event::{EventDescriptor, EventHandlerDescriptor};
use crate::abi::health::HealthCheckDescriptor;
use crate::abi::log_sink::LogSinkDescriptor;
use crate::abi::middleware::MiddlewareDescriptor;
use crate::abi::plugin::PluginDescriptor;
use crate::abi::plugin_test::PluginTestDescriptor;
use crate::abi::route::RouteDescriptor;

/// The one table of collections: each row is a slice's name, the reader the registry calls,
/// and the descriptor type. Both backends are generated from it, so a new extension point is
/// one row here (and one `register!` in its macro).
macro_rules! collections {
    ($($(#[$doc:meta])* $slice:ident, $reader:ident: $descriptor:ty;)*) => {
        /// The linkme slices, named by generated code through `__private`.
        #[cfg(not(feature = "inventory"))]
        pub mod statics {
            use super::*;
            $(
                $(#[$doc])*
                #[linkme::distributed_slice]
                pub static $slice: [$descriptor];
            )*
        }

        $(
            /// What this collection holds, in no particular order.
            #[cfg(not(feature = "inventory"))]
            pub fn $reader() -> impl Iterator<Item = &'static $descriptor> {
                statics::$slice.iter()
            }

            #[cfg(feature = "inventory")]
            inventory::collect!($descriptor);

            /// What this collection holds, in no particular order.
            #[cfg(feature = "inventory")]
            pub fn $reader() -> impl Iterator<Item = &'static $descriptor> {
                inventory::iter::<$descriptor>.into_iter()
            }
        )*
    };
}

collections! {
    /// Every `#[plugin]` in the program.
    PLEXICHAT_PLUGINS, plugins: PluginDescriptor;
    /// Every `#[route]` in the program.
    PLEXICHAT_ROUTES, routes: RouteDescriptor;
    /// Every `#[on_event]` in the program.
    PLEXICHAT_EVENT_HANDLERS, handlers: EventHandlerDescriptor;
    /// Every `#[event]` in the program, and the core's own events.
    PLEXICHAT_EVENTS, events: EventDescriptor;
    /// Every `#[command]` in the program.
    PLEXICHAT_COMMANDS, commands: CommandDescriptor;
    /// Every `#[middleware]` in the program.
    PLEXICHAT_MIDDLEWARE, middleware: MiddlewareDescriptor;
    /// Every `#[health_check]` in the program.
    PLEXICHAT_HEALTH_CHECKS, health_checks: HealthCheckDescriptor;
    /// Every `#[plugin_test]` in the program.
    PLEXICHAT_PLUGIN_TESTS, plugin_tests: PluginTestDescriptor;
    /// Every `#[log_sink]` in the program.
    PLEXICHAT_LOG_SINKS, log_sinks: LogSinkDescriptor;
}

/// The collection backends, for the registration macro's `$crate` paths.
#[cfg(feature = "inventory")]
pub use inventory;
#[cfg(not(feature = "inventory"))]
pub use linkme;

// The registration macro is outside the table: a `#[macro_export]` macro that another macro
// expands to cannot be named by path in its own crate, and `__private` names it.

/// Adds one element to a slice; generated code reaches it as
/// `::plexichat::__private::register!`.
#[cfg(not(feature = "inventory"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __plexichat_register {
    ($slice:ident, $ty:ty, $value:expr) => {
        const _: () = {
            #[$crate::abi::slices::linkme::distributed_slice($crate::abi::slices::statics::$slice)]
            #[linkme(crate = $crate::abi::slices::linkme)]
            static ELEMENT: $ty = $value;
        };
    };
}

/// Adds one element to a collection; generated code reaches it as
/// `::plexichat::__private::register!`.
#[cfg(feature = "inventory")]
#[doc(hidden)]
#[macro_export]
macro_rules! __plexichat_register {
    ($slice:ident, $ty:ty, $value:expr) => {
        $crate::abi::slices::inventory::submit! { $value }
    };
}
