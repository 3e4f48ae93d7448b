//! Typed events: the [`Event`] trait that `#[event]` implements, the handler registrations that
//! `#[on_event]` writes, and the core lifecycle events.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

// The handle every handler shim receives: the one runtime type this layer names besides
// `PluginContext` (see the layering test in `tests/it/tidy.rs`).
use crate::runtime::Runtime;

/// A value that can be published on the event bus.
///
/// Declared with `#[plexichat::event(name = "awesome.action.completed")]`, which also derives
/// `Serialize` so that every event can leave the process (webhooks, audit logs) unchanged.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a PlexiChat event",
    label = "this type is not declared with `#[event]`",
    note = "declare the type with `#[plexichat::event(name = \"my.event.name\")]`"
)]
pub trait Event: Serialize + Send + Sync + 'static {
    /// Stable dotted name, used in listings, logs and webhooks.
    const NAME: &'static str;
}

/// Published first, before any plugin's `init` runs: the "pre" hook of start-up.
#[derive(Clone, Debug, Serialize)]
pub struct Starting {
    /// Names of the plugins about to start (not disabled), in start order.
    pub plugins: Vec<&'static str>,
}

impl Event for Starting {
    const NAME: &'static str = "starting";
}

/// Published last, after every `stop` hook ran and background tasks ended: the "post" hook
/// of shutdown.
#[derive(Clone, Debug, Serialize)]
pub struct Stopped {
    /// Background tasks that did not stop in time, as `plugin/task`.
    pub stuck_tasks: Vec<String>,
}

impl Event for Stopped {
    const NAME: &'static str = "stopped";
}

/// Published once every plugin's `init` ran, before the server accepts connections: the
/// "post" hook of start-up.
#[derive(Clone, Debug, Serialize)]
pub struct Startup {
    /// Names of the plugins that started, in start order.
    pub plugins: Vec<&'static str>,
}

impl Event for Startup {
    const NAME: &'static str = "startup";
}

/// Published when shutdown begins, after the server stopped accepting connections and
/// finished in-flight requests, before any `stop` hook: the "pre" hook of shutdown.
#[derive(Clone, Debug, Serialize)]
pub struct Shutdown {
    /// Why the server is stopping.
    pub reason: String,
}

impl Event for Shutdown {
    const NAME: &'static str = "shutdown";
}

/// The boxed future an async handler shim returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A type-erased handler, written by `#[on_event]` around the user's function.
#[derive(Clone, Copy)]
pub enum HandlerFn {
    /// A plain `fn`, called inline by the publisher.
    Sync(fn(&Runtime, &(dyn Any + Send + Sync)) -> Result<(), String>),
    /// An `async fn`, awaited by the publisher in priority order.
    Async(for<'a> fn(&'a Runtime, &'a (dyn Any + Send + Sync)) -> HandlerFuture<'a>),
}

/// One `#[on_event]` registration.
pub struct EventHandlerDescriptor {
    /// The event's [`Event::NAME`].
    pub event: &'static str,
    /// The event's type; dispatch is by type, the name is for people.
    pub event_type: fn() -> TypeId,
    /// Name of the handler function.
    pub handler: &'static str,
    /// Crate that declared the handler; it belongs to that crate's plugin.
    pub crate_name: &'static str,
    /// Source location, for messages.
    pub location: &'static str,
    /// Higher runs first; equal priorities run in (plugin, handler) name order.
    pub priority: i32,
    /// The shim that downcasts the event and calls the user's function.
    pub call: HandlerFn,
}

impl fmt::Debug for EventHandlerDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} (priority {}, {})",
            self.handler, self.event, self.priority, self.location
        )
    }
}

/// What an event handler may return: nothing, or a `Result` whose error is reported.
#[diagnostic::on_unimplemented(
    message = "an event handler must return `()` or `Result<(), E>` where `E: Display`",
    label = "`{Self}` cannot be reported as a handler outcome"
)]
pub trait HandlerOutcome {
    /// Converts the outcome into the bus's uniform result.
    fn into_outcome(self) -> Result<(), String>;
}

impl HandlerOutcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> HandlerOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|error| error.to_string())
    }
}

/// One `#[event]` declaration: the stable name, the Rust type behind it and where it was
/// declared, so that listings can tell an author which type to subscribe to.
#[derive(Debug)]
pub struct EventDescriptor {
    /// The event's [`Event::NAME`].
    pub name: &'static str,
    /// The full Rust path of the type, e.g. `my_awesome_plugin::ActionCompleted`.
    pub type_name: &'static str,
    /// Crate that declared it; the event belongs to that crate's plugin, if it has one.
    pub crate_name: &'static str,
    /// Source location, for messages.
    pub location: &'static str,
}

/// Registers the core lifecycle events like `#[event]` registers a plugin's.
macro_rules! core_events {
    ($($ty:ty),* $(,)?) => {$(
        crate::__plexichat_register!(
            PLEXICHAT_EVENTS,
            crate::abi::event::EventDescriptor,
            crate::abi::event::EventDescriptor {
                name: <$ty as crate::abi::event::Event>::NAME,
                type_name: ::core::concat!("plexichat::event::", ::core::stringify!($ty)),
                crate_name: "plexichat",
                location: ::core::concat!(::core::file!(), ":", ::core::line!()),
            }
        );
    )*};
}
pub(crate) use core_events;

core_events!(Starting, Startup, Shutdown, Stopped);
