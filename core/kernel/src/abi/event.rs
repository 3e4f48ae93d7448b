//! Typed events: the [`Event`] trait that `#[event]` implements, the handler registrations that
//! `#[on_event]` writes, and the core lifecycle events.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::abi::plugin::Plugin;

// The handle every handler shim receives, and the context a handler may ask for: the runtime
// types this layer names (see the layering test in `tests/it/tidy.rs`).
use crate::runtime::Host;
use crate::runtime::PluginContext;

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

/// Plugin `Self` hands event `E` to webhooks: implemented by `#[plugin(webhooks = [E])]`, and
/// required to write `E` to the outbox ([`Outbox::write`](crate::storage::outbox::Outbox::write)),
/// so that every event a webhook can carry is one the manifest lists.
#[diagnostic::on_unimplemented(
    message = "plugin `{Self}` does not declare `{E}` in its `webhooks`",
    label = "only events the manifest lists go to the outbox",
    note = "add the event type to the manifest: `#[plugin(webhooks = [{E}])]`"
)]
pub trait DeclaresWebhook<E: Event>: Plugin {}

/// An event that is proposed before it happens: its pre-handlers (`#[on_event(pre)]`, taking
/// `&mut Event`) may modify it or reject it, in priority order, and the first rejection wins;
/// see [`Runtime::propose`]. Declared with `#[plexichat::event(name = "...", vetoable)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a vetoable event, so it has no pre-handlers",
    label = "a pre-handler needs an event declared `vetoable`",
    note = "declare it with `#[plexichat::event(name = \"...\", vetoable)]`, or drop `pre` to handle it after it happened"
)]
pub trait Vetoable: Event {}

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
    Sync(fn(&Host, &(dyn Any + Send + Sync)) -> Result<(), String>),
    /// An `async fn`, awaited by the publisher in priority order.
    Async(for<'a> fn(&'a Host, &'a (dyn Any + Send + Sync)) -> HandlerFuture<'a>),
    /// A plain `fn` pre-handler of a vetoable event: it may modify the event, and its error
    /// rejects it.
    PreSync(fn(&Host, &mut (dyn Any + Send + Sync)) -> Result<(), String>),
    /// An `async fn` pre-handler of a vetoable event.
    PreAsync(for<'a> fn(&'a Host, &'a mut (dyn Any + Send + Sync)) -> HandlerFuture<'a>),
}

impl HandlerFn {
    /// Whether this is a pre-handler, which runs when the event is proposed, before it is
    /// accepted.
    pub fn is_pre(&self) -> bool {
        matches!(self, HandlerFn::PreSync(_) | HandlerFn::PreAsync(_))
    }
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
    /// Declared `vetoable`: proposed before it happens, with pre-handlers.
    pub vetoable: bool,
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
                vetoable: false,
            }
        );
    )*};
}
pub(crate) use core_events;

core_events!(Starting, Startup, Shutdown, Stopped);

// What `#[on_event]`'s expansion checks a handler's signature with.
//
// The macro sees `fn on_x(a: &A)` and cannot tell from the tokens whether `A` is an event or
// the plugin: both are paths. The compiler can. Each type named in a handler's signature gets
// a role from the one impl of `EventArgument` or `PluginArgument` that applies to it (`AnEvent`
// for `#[event]` types, `APlugin` for `#[plugin]` types), and verdict traits implemented for
// every arrangement of roles but one turn each wrong arrangement into exactly one error, whose
// message says how to fix that arrangement. The expansion calls `one_argument_handler` or
// `two_argument_handler` in a single `const` item, so that every obligation lives in one body:
// a type that is neither an event nor a plugin is one error, not one per use, and the roles it
// leaves undecided raise no second "type annotations needed" error.
//
// In both functions the role bounds are written before the verdicts: the compiler takes
// where-clauses in order, and a verdict met while a role is still open would decide that role
// itself whenever only one of its impls fits the roles known so far, turning the verdict's
// message into a "not an event" or "not a plugin" one (and, with two arguments, a second
// error). The trybuild cases `on_event_*` hold every arrangement to one error.

/// The role of an `#[event]` type in a handler's signature.
#[doc(hidden)]
pub enum AnEvent {}

/// The role of a `#[plugin]` type in a handler's signature.
#[doc(hidden)]
pub enum APlugin {}

/// The role of a `PluginContext<P>` in a handler's signature: in the plugin's place, it
/// gives the handler its plugin's services.
#[doc(hidden)]
pub enum AContext {}

/// A type written where an event handler takes its event.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a PlexiChat event",
    label = "this type is not declared with `#[event]`",
    note = "declare the type with `#[plexichat::event(name = \"my.event.name\")]`"
)]
pub trait EventArgument<Role>: Send + Sync + 'static {
    /// The name the handler is registered under.
    const NAME: &'static str;
}

impl<E: Event> EventArgument<AnEvent> for E {
    const NAME: &'static str = E::NAME;
}

/// Gives a plugin in the event's place the role that a verdict explains; a build that selects
/// this impl fails, so the name is never registered.
impl<P: Plugin> EventArgument<APlugin> for P {
    const NAME: &'static str = P::NAME;
}

/// A type written where an event handler takes its plugin.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a PlexiChat plugin",
    label = "not declared with `#[plugin]`",
    note = "an event handler with two arguments takes its plugin first: `fn(plugin: &MyPlugin, event: &MyEvent)`"
)]
pub trait PluginArgument<Role>: Sized + Send + Sync + 'static {
    /// What the handler is called with: the plugin's instance, or its context. `crate_name`
    /// is the handler's crate: a context is given only to its own plugin's handlers.
    fn instance<'a>(
        runtime: &'a Host,
        crate_name: &'static str,
    ) -> Result<Argument<'a, Self>, String>;
}

/// A handler's first argument: borrowed from the runtime (the plugin) or made for the call
/// (its context).
#[doc(hidden)]
pub enum Argument<'a, T> {
    /// The plugin's instance.
    Borrowed(&'a T),
    /// A context built for this call.
    Owned(T),
}

impl<T> std::ops::Deref for Argument<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Argument::Borrowed(value) => value,
            Argument::Owned(value) => value,
        }
    }
}

impl<P: Plugin> PluginArgument<APlugin> for P {
    fn instance<'a>(host: &'a Host, _crate_name: &'static str) -> Result<Argument<'a, P>, String> {
        host.runtime()
            .plugin_ref::<P>()
            .map(Argument::Borrowed)
            .ok_or_else(|| format!("plugin `{}` is not running", P::NAME))
    }
}

impl<P: Plugin> PluginArgument<AContext> for PluginContext<P> {
    fn instance<'a>(
        host: &'a Host,
        crate_name: &'static str,
    ) -> Result<Argument<'a, Self>, String> {
        let runtime = host.runtime();
        // `#[on_event]` refuses another plugin's context as written; this holds the rule for
        // one hidden behind a type alias, which the macro cannot see.
        let owned = runtime
            .registry()
            .plugin(P::NAME)
            .is_some_and(|plugin| plugin.crate_name == crate_name);
        if owned {
            Ok(Argument::Owned(PluginContext::new(runtime.clone())))
        } else {
            Err(format!(
                "a handler of crate `{crate_name}` asked for the context of plugin `{}`; a handler gets only its own plugin's",
                P::NAME
            ))
        }
    }
}

/// Gives an event in the plugin's place the role that a verdict explains; a build that
/// selects this impl fails, so no handler ever calls it.
impl<E: Event> PluginArgument<AnEvent> for E {
    fn instance<'a>(_host: &'a Host, _crate_name: &'static str) -> Result<Argument<'a, E>, String> {
        Err(format!(
            "`{}` is an event, not a plugin",
            std::any::type_name::<E>()
        ))
    }
}

/// The verdict on `fn(plugin: &MyPlugin)`: a handler's only argument is its event.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a plugin, but an event handler's last argument is the event it handles",
    label = "add the event as the last argument (`&MyEvent`)",
    note = "a handler that needs its plugin takes it first: `fn(plugin: &{Self}, event: &MyEvent)`"
)]
pub trait LastArgumentIsTheEvent<Role> {}

impl<E> LastArgumentIsTheEvent<AnEvent> for E {}

/// The verdict on `fn(event: &MyEvent, plugin: &MyPlugin)`, implemented for every other
/// arrangement of the two roles.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the arguments are swapped: the plugin comes first, the event second",
    label = "`{Self}` is an event, and `{E}` is the plugin",
    note = "write `fn(plugin: &{E}, event: &{Self})`"
)]
pub trait PluginComesFirst<E, PluginRole, EventRole> {}

impl<P, E> PluginComesFirst<E, APlugin, AnEvent> for P {}
impl<P, E> PluginComesFirst<E, AnEvent, AnEvent> for P {}
impl<P, E> PluginComesFirst<E, APlugin, APlugin> for P {}
impl<P, E> PluginComesFirst<E, AContext, AnEvent> for P {}
impl<P, E> PluginComesFirst<E, AContext, APlugin> for P {}

/// The verdict on `fn(first: &EventA, second: &EventB)`, implemented for every other
/// arrangement of the two roles.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is an event, but an event handler handles one event, and its first argument is the plugin",
    label = "expected a type declared with `#[plugin]`",
    note = "write `fn(plugin: &MyPlugin, event: &{E})`, or one handler per event"
)]
pub trait OneEventPerHandler<E, PluginRole, EventRole> {}

impl<P, E> OneEventPerHandler<E, APlugin, AnEvent> for P {}
impl<P, E> OneEventPerHandler<E, AnEvent, APlugin> for P {}
impl<P, E> OneEventPerHandler<E, APlugin, APlugin> for P {}
impl<P, E> OneEventPerHandler<E, AContext, AnEvent> for P {}
impl<P, E> OneEventPerHandler<E, AContext, APlugin> for P {}

/// The verdict on `fn(plugin: &MyPlugin, other: &OtherPlugin)`, implemented for every other
/// arrangement of the two roles.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a plugin, but an event handler's second argument is the event it handles",
    label = "expected a type declared with `#[event]`",
    note = "write `fn(plugin: &{P}, event: &MyEvent)`"
)]
pub trait EventComesSecond<P, PluginRole, EventRole> {}

impl<P, E> EventComesSecond<P, APlugin, AnEvent> for E {}
impl<P, E> EventComesSecond<P, AnEvent, APlugin> for E {}
impl<P, E> EventComesSecond<P, AnEvent, AnEvent> for E {}
impl<P, E> EventComesSecond<P, AContext, AnEvent> for E {}

/// A type written where a pre-handler takes its event: the event must be vetoable. A plugin in
/// that place gets the role whose verdict explains the mistake instead.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a vetoable event, so it has no pre-handlers",
    label = "a pre-handler needs an event declared `vetoable`",
    note = "declare it with `#[plexichat::event(name = \"...\", vetoable)]`, or drop `pre` to handle it after it happened"
)]
pub trait VetoableArgument<Role> {}

impl<E: Vetoable> VetoableArgument<AnEvent> for E {}
impl<P: Plugin> VetoableArgument<APlugin> for P {}

/// The name a one-argument handler registers under; fails the build with a verdict's message
/// unless the argument is an event.
#[doc(hidden)]
pub const fn one_argument_handler<E, Role>() -> &'static str
where
    E: EventArgument<Role>,
    E: LastArgumentIsTheEvent<Role>,
{
    E::NAME
}

/// The event name and the plugin lookup of a two-argument handler; fails the build with a
/// verdict's message unless the plugin comes first and the event second.
#[doc(hidden)]
pub const fn two_argument_handler<P, E, PluginRole, EventRole>() -> TwoArguments<P>
where
    P: PluginArgument<PluginRole>,
    E: EventArgument<EventRole>,
    P: PluginComesFirst<E, PluginRole, EventRole>,
    P: OneEventPerHandler<E, PluginRole, EventRole>,
    E: EventComesSecond<P, PluginRole, EventRole>,
{
    TwoArguments {
        event: E::NAME,
        instance: P::instance,
    }
}

/// [`one_argument_handler`] for a pre-handler: the event must also be vetoable.
#[doc(hidden)]
pub const fn one_argument_pre_handler<E, Role>() -> &'static str
where
    E: EventArgument<Role>,
    E: LastArgumentIsTheEvent<Role>,
    E: VetoableArgument<Role>,
{
    E::NAME
}

/// [`two_argument_handler`] for a pre-handler: the event must also be vetoable.
#[doc(hidden)]
pub const fn two_argument_pre_handler<P, E, PluginRole, EventRole>() -> TwoArguments<P>
where
    P: PluginArgument<PluginRole>,
    E: EventArgument<EventRole>,
    P: PluginComesFirst<E, PluginRole, EventRole>,
    P: OneEventPerHandler<E, PluginRole, EventRole>,
    E: EventComesSecond<P, PluginRole, EventRole>,
    E: VetoableArgument<EventRole>,
{
    TwoArguments {
        event: E::NAME,
        instance: P::instance,
    }
}

/// How a shim gets a handler's first argument (or a health check's) from the runtime and the
/// handler's crate.
#[doc(hidden)]
pub type InstanceFn<P> = for<'a> fn(&'a Host, &'static str) -> Result<Argument<'a, P>, String>;

/// What [`two_argument_handler`] hands the expansion: the name to register under and how the
/// shim finds the plugin.
#[doc(hidden)]
pub struct TwoArguments<P: 'static> {
    /// The event's name.
    pub event: &'static str,
    /// The plugin's running instance, or its context.
    pub instance: InstanceFn<P>,
}
