//! The registry: what the link-time slices (`abi::slices`) collected, checked by [`Registry`]
//! (unique names, unique routes, dependencies present and acyclic) and put in a deterministic
//! order.
//!
//! Neither linkme nor inventory orders or de-duplicates what it collects, and an unreferenced
//! crate's entries silently vanish; every check that they skip happens here, before anything
//! starts, and names both parties of a conflict. The checks are in `checks`, one function
//! each; the resolved forms the registry hands out are in `resolved`.

mod checks;
mod resolved;

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::abi::command::CommandDescriptor;
use crate::abi::event::{EventDescriptor, EventHandlerDescriptor};
use crate::abi::health::HealthCheckDescriptor;
use crate::abi::log_sink::LogSinkDescriptor;
use crate::abi::middleware::MiddlewareDescriptor;
use crate::abi::plugin::PluginDescriptor;
use crate::abi::plugin_test::PluginTestDescriptor;
use crate::abi::route::{Method, RouteDescriptor};

use crate::abi::slices as backend;

pub use resolved::{
    ResolvedCommand, ResolvedEvent, ResolvedHandler, ResolvedHealthCheck, ResolvedLogSink,
    ResolvedMiddleware, ResolvedPluginTest, ResolvedRoute,
};

/// Which collection mechanism this build uses, for listings and bug reports.
pub const BACKEND: &str = if cfg!(feature = "inventory") {
    "inventory"
} else {
    "linkme"
};

/// A reason the collected registrations cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Two plugins registered the same name.
    #[error("duplicate plugin name `{name}`: declared by `{first}` and by `{second}`")]
    DuplicatePlugin {
        /// The contested name.
        name: &'static str,
        /// Type of the first declaration.
        first: &'static str,
        /// Type of the second declaration.
        second: &'static str,
    },
    /// One crate declared two plugins (the macro rejects this; a second backend could not).
    #[error(
        "crate `{crate_name}` declares two plugins, `{first}` and `{second}`; a crate is one plugin"
    )]
    TwoPluginsInCrate {
        /// The crate.
        crate_name: &'static str,
        /// First plugin name.
        first: &'static str,
        /// Second plugin name.
        second: &'static str,
    },
    /// Two routes answer the same method and path.
    #[error("duplicate route {method} {path}: `{first}` and `{second}`")]
    DuplicateRoute {
        /// HTTP method.
        method: Method,
        /// Full path, prefix included.
        path: String,
        /// First handler, as `plugin::handler (file:line)`.
        first: String,
        /// Second handler.
        second: String,
    },
    /// A plugin depends on a plugin that is not compiled in.
    #[error(
        "plugin `{plugin}` depends on `{dependency}`, which is not compiled in; enable the `{dependency}` feature"
    )]
    MissingDependency {
        /// The dependent plugin.
        plugin: &'static str,
        /// The absent dependency.
        dependency: &'static str,
    },
    /// Dependencies form a cycle.
    #[error("dependency cycle: {}", .cycle.join(" -> "))]
    DependencyCycle {
        /// The plugins on the cycle, the first repeated at the end.
        cycle: Vec<&'static str>,
    },
    /// Two event types registered the same name; subscribers could not tell them apart.
    #[error("duplicate event name `{name}`: declared by `{first}` and by `{second}`")]
    DuplicateEvent {
        /// The contested name.
        name: &'static str,
        /// First type, with its location.
        first: String,
        /// Second type, with its location.
        second: String,
    },
    /// A route or handler lives in a crate that declares no plugin.
    #[error(
        "{what} `{item}` ({location}) is in crate `{crate_name}`, which declares no `#[plugin]`"
    )]
    Orphan {
        /// `route` or `event handler`.
        what: &'static str,
        /// Handler function name.
        item: &'static str,
        /// Source location.
        location: &'static str,
        /// The crate.
        crate_name: &'static str,
    },
    /// A plugin's prefix or route would shadow a path that core serves.
    #[error(
        "{what} {path} of plugin `{plugin}` would shadow core's `{core}`; choose another prefix"
    )]
    ReservedPath {
        /// The plugin.
        plugin: &'static str,
        /// `prefix` or `route` (with its handler and location).
        what: String,
        /// The plugin's path.
        path: String,
        /// The core path it collides with.
        core: &'static str,
    },
    /// A migration names a table (or index, view, …) that does not carry its plugin's prefix,
    /// or that carries another plugin's.
    #[error("migration `{file}` of plugin `{plugin}` touches `{object}`, {problem}: `{statement}`")]
    MigrationOutsidePrefix {
        /// The plugin.
        plugin: &'static str,
        /// The file, relative to the plugin crate.
        file: &'static str,
        /// The object the statement names.
        object: String,
        /// Why that is refused.
        problem: String,
        /// The statement.
        statement: String,
    },
    /// Two commands have the same category and name.
    #[error("duplicate command `plexichat {category} {name}`: `{first}` and `{second}`")]
    DuplicateCommand {
        /// The category.
        category: &'static str,
        /// The command.
        name: &'static str,
        /// First function, as `plugin::function (file:line)`.
        first: String,
        /// Second function.
        second: String,
    },
    /// Two tests of one plugin have the same name.
    #[error("duplicate test `{name}` of plugin `{plugin}`: at {first} and at {second}; rename one")]
    DuplicatePluginTest {
        /// The plugin.
        plugin: &'static str,
        /// The test's name.
        name: &'static str,
        /// First location.
        first: &'static str,
        /// Second location.
        second: &'static str,
    },
    /// A command's category is one of the binary's own commands.
    #[error(
        "command `{name}` of plugin `{plugin}` ({location}) is in category `{category}`, which is core's `plexichat {category}`; choose another category"
    )]
    CommandShadowsCore {
        /// The plugin.
        plugin: &'static str,
        /// The category.
        category: &'static str,
        /// The command.
        name: &'static str,
        /// Its location.
        location: &'static str,
    },
    /// The registered plugins differ from the ones the binary was built to contain.
    #[error("{}", mismatch_message(.missing, .unexpected))]
    Mismatch {
        /// Enabled but not registered: the linker dropped them.
        missing: Vec<String>,
        /// Registered but not enabled.
        unexpected: Vec<String>,
    },
}

/// The first words of the `plexichat` binary's own commands, and of those planned, which no
/// plugin command category may take. The binary's tests check that its commands are here.
pub const CORE_COMMANDS: &[&str] = &[
    "backup", "commands", "config", "db", "gui", "help", "openapi", "plugins", "serve", "version",
];

/// The prefix every table of core's own carries; no plugin's objects may start with it.
pub const CORE_TABLE_PREFIX: &str = "plexichat_";

fn mismatch_message(missing: &[String], unexpected: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "enabled plugins missing from the registry: {} (their registrations were not linked; \
             the binary must reference each enabled plugin crate with `extern crate name as _;`)",
            missing.join(", ")
        ));
    }
    if !unexpected.is_empty() {
        // The app's features enable a plugin and its `extern crate` together, so a plugin
        // registers without being enabled only when an enabled plugin crate depends on it:
        // the feature of that plugin was generated before the dependency was added.
        parts.push(format!(
            "registered plugins that were not enabled: {} (an enabled plugin depends on {}, \
             but the app's features predate that dependency: run `cargo xtask codegen` and \
             rebuild; `cargo xtask build-app` does both)",
            unexpected.join(", "),
            if unexpected.len() == 1 { "it" } else { "them" }
        ));
    }
    if !missing.is_empty() && !unexpected.is_empty() {
        parts.push(
            "a plugin in both lists may be one crate whose `#[plugin(name = ...)]` differs from \
             its crate name, which the app's features use"
                .to_string(),
        );
    }
    parts.join("; ")
}

/// Every problem found in one pass, so that a build with three mistakes shows three messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryErrors(pub Vec<RegistryError>);

impl fmt::Display for RegistryErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RegistryErrors {}

/// Everything the slices collected, before any check: what [`Registry::from_registrations`]
/// takes. Tests build one by hand; `Default` leaves the kinds they do not care about empty.
#[derive(Debug, Default)]
pub struct Registrations {
    /// `#[plugin]` declarations.
    pub plugins: Vec<&'static PluginDescriptor>,
    /// `#[route]` handlers.
    pub routes: Vec<&'static RouteDescriptor>,
    /// `#[on_event]` handlers.
    pub handlers: Vec<&'static EventHandlerDescriptor>,
    /// `#[event]` types.
    pub events: Vec<&'static EventDescriptor>,
    /// `#[command]` functions.
    pub commands: Vec<&'static CommandDescriptor>,
    /// `#[middleware]` functions.
    pub middleware: Vec<&'static MiddlewareDescriptor>,
    /// `#[health_check]` functions.
    pub health_checks: Vec<&'static HealthCheckDescriptor>,
    /// `#[plugin_test]` functions.
    pub plugin_tests: Vec<&'static PluginTestDescriptor>,
    /// `#[log_sink]` functions.
    pub log_sinks: Vec<&'static LogSinkDescriptor>,
}

/// The checked, ordered set of everything compiled in.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Plugins in start order: dependencies first, then by name.
    plugins: Vec<&'static PluginDescriptor>,
    by_name: HashMap<&'static str, usize>,
    /// Routes by plugin, then method and path.
    routes: Vec<ResolvedRoute>,
    /// Handlers by event name, then descending priority, then plugin and handler name.
    handlers: Vec<ResolvedHandler>,
    /// Event types by name.
    events: Vec<ResolvedEvent>,
    /// Commands by category, then name.
    commands: Vec<ResolvedCommand>,
    /// Middleware in chain order, outermost first: global before per-plugin, then descending
    /// priority, then plugin and function name.
    middleware: Vec<ResolvedMiddleware>,
    /// Health checks by plugin, then kind, then name.
    health_checks: Vec<ResolvedHealthCheck>,
    /// Plugin tests by plugin, then name.
    plugin_tests: Vec<ResolvedPluginTest>,
    /// Log sinks by plugin, then name.
    log_sinks: Vec<ResolvedLogSink>,
    /// For the lists kept in another order, where each plugin's items are.
    index: PluginIndex,
}

/// Positions into the lists that are not sorted by plugin, sorted by plugin (then position),
/// so `commands_of`, `handlers_of`, `middleware_of` and `events_of` are binary searches.
/// Listing every plugin (`plugins list`, `/api/v1/plugins`) asks each of them once per
/// plugin, which was quadratic: 47 ms of `plugins list` at 1000 plugins.
#[derive(Debug, Clone, Default)]
struct PluginIndex {
    commands: Vec<u32>,
    handlers: Vec<u32>,
    middleware: Vec<u32>,
    events: Vec<u32>,
}

impl PluginIndex {
    fn positions<T>(items: &[T], plugin: impl Fn(&T) -> Option<&'static str>) -> Vec<u32> {
        let mut positions: Vec<u32> = (0..items.len())
            .filter(|&at| plugin(&items[at]).is_some())
            .map(|at| u32::try_from(at).expect("fewer than 2^32 registrations"))
            .collect();
        positions.sort_by_key(|&at| (plugin(&items[at as usize]), at));
        positions
    }

    /// The items of `positions` whose plugin is `wanted`, in list order.
    fn of<'a, T>(
        positions: &'a [u32],
        items: &'a [T],
        wanted: &'a str,
        plugin: impl Fn(&T) -> Option<&'static str> + 'a,
    ) -> impl Iterator<Item = &'a T> + 'a {
        let start = positions.partition_point(|&at| plugin(&items[at as usize]) < Some(wanted));
        positions[start..]
            .iter()
            .map(move |&at| &items[at as usize])
            .take_while(move |item| plugin(item) == Some(wanted))
    }
}

impl Registry {
    /// Checks and orders everything linked into this program.
    pub fn linked() -> Result<Self, RegistryErrors> {
        Self::from_registrations(Registrations {
            plugins: backend::plugins().collect(),
            routes: backend::routes().collect(),
            handlers: backend::handlers().collect(),
            events: backend::events().collect(),
            commands: backend::commands().collect(),
            middleware: backend::middleware().collect(),
            health_checks: backend::health_checks().collect(),
            plugin_tests: backend::plugin_tests().collect(),
            log_sinks: backend::log_sinks().collect(),
        })
    }

    /// Checks and orders plugins, routes and handlers given explicitly, with no event types.
    pub fn from_parts(
        plugins: Vec<&'static PluginDescriptor>,
        routes: Vec<&'static RouteDescriptor>,
        handlers: Vec<&'static EventHandlerDescriptor>,
    ) -> Result<Self, RegistryErrors> {
        Self::from_registrations(Registrations {
            plugins,
            routes,
            handlers,
            ..Registrations::default()
        })
    }

    /// Checks and orders an explicit set of registrations (tests build registries this way).
    pub fn from_registrations(registrations: Registrations) -> Result<Self, RegistryErrors> {
        let Registrations {
            plugins,
            routes,
            handlers,
            events,
            commands,
            middleware,
            health_checks,
            plugin_tests,
            log_sinks,
        } = registrations;
        // Every check appends what it refuses and goes on, in this order, which is the order
        // of the messages.
        let mut errors = Vec::new();
        let (plugins, by_crate) = checks::unique_plugins(plugins, &mut errors);
        let order = checks::start_order(&plugins, &mut errors);
        checks::reserved_prefixes(&plugins, &mut errors);
        checks::migrations(&plugins, &mut errors);
        let routes = checks::resolve_routes(routes, &by_crate, &mut errors);
        checks::reserved_routes(&routes, &by_crate, &mut errors);
        checks::duplicate_routes(&routes, &mut errors);
        let handlers = checks::resolve_handlers(handlers, &by_crate, &mut errors);
        let events = checks::resolve_events(events, &by_crate, &mut errors);
        let commands = checks::resolve_commands(commands, &by_crate, &mut errors);
        let middleware = checks::resolve_middleware(middleware, &by_crate, &mut errors);
        let health_checks = checks::resolve_health_checks(health_checks, &by_crate, &mut errors);
        let plugin_tests = checks::resolve_plugin_tests(plugin_tests, &by_crate, &mut errors);
        let log_sinks = checks::resolve_log_sinks(log_sinks, &by_crate, &mut errors);
        if !errors.is_empty() {
            return Err(RegistryErrors(errors));
        }

        let by_name = order
            .iter()
            .enumerate()
            .map(|(index, plugin)| (plugin.name, index))
            .collect();
        let index = PluginIndex {
            commands: PluginIndex::positions(&commands, |c| Some(c.plugin)),
            handlers: PluginIndex::positions(&handlers, |h| Some(h.plugin)),
            middleware: PluginIndex::positions(&middleware, |m| Some(m.plugin)),
            events: PluginIndex::positions(&events, |e| e.plugin),
        };
        Ok(Registry {
            plugins: order,
            by_name,
            index,
            routes,
            handlers,
            events,
            commands,
            middleware,
            health_checks,
            plugin_tests,
            log_sinks,
        })
    }

    /// Fails unless the registered plugin names are exactly `enabled`.
    ///
    /// The binary calls this at start with the list its cargo features produced, which is how
    /// a registration dropped by the linker becomes a refusal to start instead of a missing
    /// feature discovered in production.
    pub fn expect_exactly(&self, enabled: &[&str]) -> Result<(), RegistryError> {
        let enabled: BTreeSet<&str> = enabled.iter().copied().collect();
        let registered: BTreeSet<&str> = self.by_name.keys().copied().collect();
        let missing: Vec<String> = enabled
            .difference(&registered)
            .map(|name| name.to_string())
            .collect();
        let unexpected: Vec<String> = registered
            .difference(&enabled)
            .map(|name| name.to_string())
            .collect();
        if missing.is_empty() && unexpected.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::Mismatch {
                missing,
                unexpected,
            })
        }
    }

    /// Plugins in start order (dependencies before dependents).
    pub fn plugins(&self) -> &[&'static PluginDescriptor] {
        &self.plugins
    }

    /// Looks a plugin up by name without scanning.
    pub fn plugin(&self, name: &str) -> Option<&'static PluginDescriptor> {
        self.by_name.get(name).map(|&index| self.plugins[index])
    }

    /// Every route, sorted by plugin and path.
    pub fn routes(&self) -> &[ResolvedRoute] {
        &self.routes
    }

    /// Commands, sorted by category, then name.
    pub fn commands(&self) -> &[ResolvedCommand] {
        &self.commands
    }

    /// The commands of one category, in name order.
    pub fn commands_in<'a>(
        &'a self,
        category: &'a str,
    ) -> impl Iterator<Item = &'a ResolvedCommand> {
        // Sorted by category: the category's commands are one run, found by binary search.
        let start = self.commands.partition_point(|c| c.category < category);
        self.commands[start..]
            .iter()
            .take_while(move |c| c.category == category)
    }

    /// Every middleware in chain order, outermost first: the global ones, then each plugin's
    /// own (which wrap only that plugin's routes), each group by descending priority, then
    /// plugin and function name.
    pub fn middleware(&self) -> &[ResolvedMiddleware] {
        &self.middleware
    }

    /// Middleware of one plugin, in chain order.
    pub fn middleware_of<'a>(
        &'a self,
        plugin: &'a str,
    ) -> impl Iterator<Item = &'a ResolvedMiddleware> {
        PluginIndex::of(&self.index.middleware, &self.middleware, plugin, |m| {
            Some(m.plugin)
        })
    }

    /// Health checks of one plugin, liveness first, then by name.
    pub fn health_checks_of<'a>(
        &'a self,
        plugin: &'a str,
    ) -> impl Iterator<Item = &'a ResolvedHealthCheck> {
        // Sorted by plugin: one plugin's checks are one run, found by binary search.
        let start = self.health_checks.partition_point(|c| c.plugin < plugin);
        self.health_checks[start..]
            .iter()
            .take_while(move |c| c.plugin == plugin)
    }

    /// Log sinks of one plugin, by name.
    pub fn log_sinks_of<'a>(
        &'a self,
        plugin: &'a str,
    ) -> impl Iterator<Item = &'a ResolvedLogSink> {
        let start = self.log_sinks.partition_point(|s| s.plugin < plugin);
        self.log_sinks[start..]
            .iter()
            .take_while(move |s| s.plugin == plugin)
    }

    /// Every log sink, by plugin and name.
    pub fn log_sinks(&self) -> &[ResolvedLogSink] {
        &self.log_sinks
    }

    /// Every health check, by plugin, kind and name.
    pub fn health_checks(&self) -> &[ResolvedHealthCheck] {
        &self.health_checks
    }

    /// Every plugin test, by plugin, then name.
    pub fn plugin_tests(&self) -> &[ResolvedPluginTest] {
        &self.plugin_tests
    }

    /// The tests of one plugin, in name order.
    pub fn plugin_tests_of<'a>(
        &'a self,
        plugin: &'a str,
    ) -> impl Iterator<Item = &'a ResolvedPluginTest> {
        // Sorted by plugin: one plugin's tests are one run, found by binary search.
        let start = self.plugin_tests.partition_point(|t| t.plugin < plugin);
        self.plugin_tests[start..]
            .iter()
            .take_while(move |t| t.plugin == plugin)
    }

    /// Commands of one plugin.
    pub fn commands_of<'a>(&'a self, plugin: &'a str) -> impl Iterator<Item = &'a ResolvedCommand> {
        PluginIndex::of(&self.index.commands, &self.commands, plugin, |c| {
            Some(c.plugin)
        })
    }

    /// Routes of one plugin.
    pub fn routes_of<'a>(&'a self, plugin: &'a str) -> impl Iterator<Item = &'a ResolvedRoute> {
        // Sorted by plugin: one plugin's routes are one run, found by binary search.
        let start = self.routes.partition_point(|route| route.plugin < plugin);
        self.routes[start..]
            .iter()
            .take_while(move |route| route.plugin == plugin)
    }

    /// Every event handler, in dispatch order per event.
    pub fn handlers(&self) -> &[ResolvedHandler] {
        &self.handlers
    }

    /// Event handlers of one plugin.
    pub fn handlers_of<'a>(&'a self, plugin: &'a str) -> impl Iterator<Item = &'a ResolvedHandler> {
        PluginIndex::of(&self.index.handlers, &self.handlers, plugin, |h| {
            Some(h.plugin)
        })
    }

    /// Every event type, sorted by name.
    pub fn events(&self) -> &[ResolvedEvent] {
        &self.events
    }

    /// The event types one plugin declares.
    pub fn events_of<'a>(&'a self, plugin: &'a str) -> impl Iterator<Item = &'a ResolvedEvent> {
        PluginIndex::of(&self.index.events, &self.events, plugin, |e| e.plugin)
    }

    /// The event type registered under `name`.
    pub fn event(&self, name: &str) -> Option<&ResolvedEvent> {
        self.events
            .binary_search_by(|event| event.descriptor.name.cmp(name))
            .ok()
            .map(|index| &self.events[index])
    }
}

/// The paths core serves, each with everything below it; no plugin path may fall on or
/// under one of them, so a plugin can never answer in core's place (`plexichat_rules`' list,
/// which xtask's scaffold checks too).
pub use plexichat_rules::CORE_PATHS;
/// The core path that a path falls on or under, if any.
pub use plexichat_rules::reserved_path as reserved;

/// Joins a prefix and a route path; the route `/` maps to the prefix itself.
pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if path == "/" && !prefix.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}{path}")
    }
}
