//! The registry: what the link-time slices (`abi::slices`) collected, checked and put in a
//! deterministic order by [`Registry`] (unique names, unique routes, dependencies present and
//! acyclic) and puts it in a deterministic order.
//!
//! Neither linkme nor inventory orders or de-duplicates what it collects, and an unreferenced
//! crate's entries silently vanish; every check that they skip happens here, before anything
//! starts, and names both parties of a conflict.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::abi::command::CommandDescriptor;
use crate::abi::event::{EventDescriptor, EventHandlerDescriptor};
use crate::abi::health::HealthCheckDescriptor;
use crate::abi::middleware::MiddlewareDescriptor;
use crate::abi::plugin::PluginDescriptor;
use crate::abi::plugin_test::PluginTestDescriptor;
use crate::abi::route::{Method, RouteDescriptor};

use crate::abi::slices as backend;

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

/// Each object a plugin's migrations touch must start with `<name>_`, and not with the
/// longer prefix of another plugin (`foo_bar_x` belongs to plugin `foo_bar`, not `foo`) or
/// core's `plexichat_`. `plugins` is sorted by name.
fn check_migrations(
    plugin: &'static PluginDescriptor,
    plugins: &[&'static PluginDescriptor],
    errors: &mut Vec<RegistryError>,
) {
    let own = format!("{}_", plugin.name);
    for migration in plugin.migrations {
        let texts = [
            (migration.sqlite_file, migration.sqlite),
            (migration.postgres_file, migration.postgres),
        ];
        for (index, (file, sql)) in texts.into_iter().enumerate() {
            if index == 1 && file == migration.sqlite_file {
                continue;
            }
            for touched in crate::abi::migration::touched_objects(sql) {
                let object = touched.object.as_str();
                let problem = if !object.starts_with(&own) {
                    Some(format!(
                        "which does not start with the plugin's prefix `{own}`"
                    ))
                } else if object.starts_with(CORE_TABLE_PREFIX) {
                    Some(format!("whose prefix `{CORE_TABLE_PREFIX}` is core's"))
                } else {
                    // A longer plugin name the object starts with, up to one of its `_`: a
                    // lookup per `_` in the sorted names, not a scan of every plugin per object.
                    object
                        .match_indices('_')
                        .map(|(at, _)| &object[..at])
                        .filter(|name| name.len() > plugin.name.len())
                        .find_map(|name| {
                            let at = plugins.binary_search_by(|p| p.name.cmp(name)).ok()?;
                            Some(plugins[at])
                        })
                        .map(|other| {
                            format!(
                                "which is in plugin `{}`'s prefix `{}_`",
                                other.name, other.name
                            )
                        })
                };
                if let Some(problem) = problem {
                    errors.push(RegistryError::MigrationOutsidePrefix {
                        plugin: plugin.name,
                        file,
                        object: touched.object,
                        problem,
                        statement: touched.statement,
                    });
                    break;
                }
            }
        }
    }
}

/// Each registration of a kind that belongs to its crate's plugin, resolved by `make`; one
/// in a crate without a plugin is reported as an orphan. `key` gives its crate, name and
/// location.
fn owned<D: 'static, R>(
    items: Vec<&'static D>,
    by_crate: &HashMap<&'static str, &'static PluginDescriptor>,
    errors: &mut Vec<RegistryError>,
    what: &'static str,
    key: impl Fn(&D) -> (&'static str, &'static str, &'static str),
    make: impl Fn(&'static str, &'static D) -> R,
) -> Vec<R> {
    let mut resolved = Vec::with_capacity(items.len());
    for item in items {
        let (crate_name, name, location) = key(item);
        match by_crate.get(crate_name) {
            Some(plugin) => resolved.push(make(plugin.name, item)),
            None => errors.push(RegistryError::Orphan {
                what,
                item: name,
                location,
                crate_name,
            }),
        }
    }
    resolved
}

/// Each command with its plugin and category, sorted by category, name and location, with
/// every orphan, duplicate and shadowing of core reported.
fn resolve_commands(
    commands: Vec<&'static CommandDescriptor>,
    by_crate: &HashMap<&'static str, &'static PluginDescriptor>,
    errors: &mut Vec<RegistryError>,
) -> Vec<ResolvedCommand> {
    let mut resolved = Vec::with_capacity(commands.len());
    for command in commands {
        let Some(plugin) = by_crate.get(command.crate_name) else {
            errors.push(RegistryError::Orphan {
                what: "command",
                item: command.handler,
                location: command.location,
                crate_name: command.crate_name,
            });
            continue;
        };
        let category = command.category.unwrap_or(plugin.name);
        if CORE_COMMANDS.contains(&category) {
            errors.push(RegistryError::CommandShadowsCore {
                plugin: plugin.name,
                category,
                name: command.name,
                location: command.location,
            });
        }
        resolved.push(ResolvedCommand {
            plugin: plugin.name,
            category,
            descriptor: command,
        });
    }
    resolved.sort_by_key(|c| {
        (
            c.category,
            c.descriptor.name,
            c.plugin,
            c.descriptor.location,
        )
    });
    // inventory may collect one registration twice when a crate is linked twice.
    resolved.dedup_by(|a, b| std::ptr::eq(a.descriptor, b.descriptor));
    let describe = |c: &ResolvedCommand| {
        format!(
            "{}::{} ({})",
            c.plugin, c.descriptor.handler, c.descriptor.location
        )
    };
    for pair in resolved.windows(2) {
        if (pair[0].category, pair[0].descriptor.name)
            == (pair[1].category, pair[1].descriptor.name)
        {
            errors.push(RegistryError::DuplicateCommand {
                category: pair[1].category,
                name: pair[1].descriptor.name,
                first: describe(&pair[0]),
                second: describe(&pair[1]),
            });
        }
    }
    resolved
}

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

/// A route with its owning plugin resolved and its full path computed.
#[derive(Debug, Clone)]
pub struct ResolvedRoute {
    /// Owning plugin.
    pub plugin: &'static str,
    /// Prefix plus route path.
    pub full_path: String,
    /// The registration.
    pub descriptor: &'static RouteDescriptor,
}

/// An event handler with its owning plugin resolved.
#[derive(Debug, Clone)]
pub struct ResolvedHandler {
    /// Owning plugin.
    pub plugin: &'static str,
    /// The registration.
    pub descriptor: &'static EventHandlerDescriptor,
}

/// A command with its owning plugin and category resolved.
#[derive(Debug, Clone)]
pub struct ResolvedCommand {
    /// Owning plugin.
    pub plugin: &'static str,
    /// Its category: the declared one, or the plugin's name.
    pub category: &'static str,
    /// The registration.
    pub descriptor: &'static CommandDescriptor,
}

/// A middleware with its owning plugin resolved.
#[derive(Debug, Clone)]
pub struct ResolvedMiddleware {
    /// Owning plugin.
    pub plugin: &'static str,
    /// The registration.
    pub descriptor: &'static MiddlewareDescriptor,
}

/// A health check with its owning plugin resolved.
#[derive(Debug, Clone)]
pub struct ResolvedHealthCheck {
    /// Owning plugin.
    pub plugin: &'static str,
    /// The registration.
    pub descriptor: &'static HealthCheckDescriptor,
}

/// A plugin test with its owning plugin resolved.
#[derive(Debug, Clone)]
pub struct ResolvedPluginTest {
    /// Owning plugin.
    pub plugin: &'static str,
    /// The registration.
    pub descriptor: &'static PluginTestDescriptor,
}

/// An event type with the plugin that declared it resolved.
#[derive(Debug, Clone)]
pub struct ResolvedEvent {
    /// The plugin of the declaring crate; `None` for the core's events and for events
    /// declared in a crate that is not a plugin (a shared types crate).
    pub plugin: Option<&'static str>,
    /// The registration.
    pub descriptor: &'static EventDescriptor,
}

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
            mut plugins,
            routes,
            handlers,
            mut events,
            commands,
            middleware,
            health_checks,
            plugin_tests,
        } = registrations;
        let mut errors = Vec::new();
        // Link order is unspecified, so every listing and check works on sorted input.
        plugins.sort_by_key(|plugin| (plugin.name, plugin.type_name));

        let mut by_crate: HashMap<&'static str, &'static PluginDescriptor> = HashMap::new();
        let mut unique: Vec<&'static PluginDescriptor> = Vec::with_capacity(plugins.len());
        for plugin in plugins {
            if let Some(first) = unique.last().filter(|first| first.name == plugin.name) {
                errors.push(RegistryError::DuplicatePlugin {
                    name: plugin.name,
                    first: first.type_name,
                    second: plugin.type_name,
                });
                continue;
            }
            if let Some(first) = by_crate.insert(plugin.crate_name, plugin) {
                errors.push(RegistryError::TwoPluginsInCrate {
                    crate_name: plugin.crate_name,
                    first: first.name,
                    second: plugin.name,
                });
            }
            unique.push(plugin);
        }

        let order = match start_order(&unique) {
            Ok(order) => order,
            Err(mut order_errors) => {
                errors.append(&mut order_errors);
                unique.clone()
            }
        };

        for plugin in &unique {
            if let Some(core) = reserved(plugin.prefix) {
                errors.push(RegistryError::ReservedPath {
                    plugin: plugin.name,
                    what: "prefix".to_string(),
                    path: plugin.prefix.to_string(),
                    core,
                });
            }
        }

        for plugin in &unique {
            check_migrations(plugin, &unique, &mut errors);
        }

        let mut resolved_routes = Vec::with_capacity(routes.len());
        for route in routes {
            match by_crate.get(route.crate_name) {
                Some(plugin) => resolved_routes.push(ResolvedRoute {
                    plugin: plugin.name,
                    full_path: join_path(plugin.prefix, route.path),
                    descriptor: route,
                }),
                None => errors.push(RegistryError::Orphan {
                    what: "route",
                    item: route.handler,
                    location: route.location,
                    crate_name: route.crate_name,
                }),
            }
        }
        resolved_routes.sort_by(|a, b| {
            (
                a.plugin,
                &a.full_path,
                a.descriptor.method,
                a.descriptor.location,
            )
                .cmp(&(
                    b.plugin,
                    &b.full_path,
                    b.descriptor.method,
                    b.descriptor.location,
                ))
        });
        for route in &resolved_routes {
            let prefix_reported = by_crate
                .get(route.descriptor.crate_name)
                .is_some_and(|plugin| reserved(plugin.prefix).is_some());
            if let (false, Some(core)) = (prefix_reported, reserved(&route.full_path)) {
                errors.push(RegistryError::ReservedPath {
                    plugin: route.plugin,
                    what: format!(
                        "route `{}` ({})",
                        route.descriptor.handler, route.descriptor.location
                    ),
                    path: route.full_path.clone(),
                    core,
                });
            }
        }
        // Paths that differ only in parameter names (`/{id}` and `/{key}`) match the same
        // requests, so they are compared in a normalised form.
        let mut seen: HashMap<(Method, String), &ResolvedRoute> = HashMap::new();
        for route in &resolved_routes {
            let key = (route.descriptor.method, normalize_params(&route.full_path));
            if let Some(first) = seen.get(&key) {
                errors.push(RegistryError::DuplicateRoute {
                    method: route.descriptor.method,
                    path: route.full_path.clone(),
                    first: describe_route(first),
                    second: describe_route(route),
                });
            } else {
                seen.insert(key, route);
            }
        }

        let mut resolved_handlers = Vec::with_capacity(handlers.len());
        for handler in handlers {
            match by_crate.get(handler.crate_name) {
                Some(plugin) => resolved_handlers.push(ResolvedHandler {
                    plugin: plugin.name,
                    descriptor: handler,
                }),
                None => errors.push(RegistryError::Orphan {
                    what: "event handler",
                    item: handler.handler,
                    location: handler.location,
                    crate_name: handler.crate_name,
                }),
            }
        }
        resolved_handlers.sort_by(|a, b| {
            let key = |h: &ResolvedHandler| {
                (
                    h.descriptor.event,
                    std::cmp::Reverse(h.descriptor.priority),
                    h.plugin,
                    h.descriptor.handler,
                    h.descriptor.location,
                )
            };
            key(a).cmp(&key(b))
        });

        events.sort_by_key(|event| (event.name, event.type_name));
        let mut resolved_events: Vec<ResolvedEvent> = Vec::with_capacity(events.len());
        for event in events {
            match resolved_events.last() {
                // inventory may collect one registration twice when a crate is linked twice;
                // the same type is the same event.
                Some(last) if last.descriptor.type_name == event.type_name => continue,
                Some(last) if last.descriptor.name == event.name => {
                    errors.push(RegistryError::DuplicateEvent {
                        name: event.name,
                        first: describe_event(last.descriptor),
                        second: describe_event(event),
                    });
                    continue;
                }
                _ => {}
            }
            resolved_events.push(ResolvedEvent {
                plugin: by_crate.get(event.crate_name).map(|plugin| plugin.name),
                descriptor: event,
            });
        }

        let resolved_commands = resolve_commands(commands, &by_crate, &mut errors);

        let mut resolved_middleware = owned(
            middleware,
            &by_crate,
            &mut errors,
            "middleware",
            |layer| (layer.crate_name, layer.name, layer.location),
            |plugin, descriptor| ResolvedMiddleware { plugin, descriptor },
        );
        let mut resolved_checks = owned(
            health_checks,
            &by_crate,
            &mut errors,
            "health check",
            |check| (check.crate_name, check.name, check.location),
            |plugin, descriptor| ResolvedHealthCheck { plugin, descriptor },
        );
        let mut resolved_tests = owned(
            plugin_tests,
            &by_crate,
            &mut errors,
            "plugin test",
            |test| (test.crate_name, test.name, test.location),
            |plugin, descriptor| ResolvedPluginTest { plugin, descriptor },
        );
        resolved_tests
            .sort_by_key(|test| (test.plugin, test.descriptor.name, test.descriptor.location));
        // inventory may collect one registration twice when a crate is linked twice.
        resolved_tests.dedup_by(|a, b| std::ptr::eq(a.descriptor, b.descriptor));
        for pair in resolved_tests.windows(2) {
            if (pair[0].plugin, pair[0].descriptor.name)
                == (pair[1].plugin, pair[1].descriptor.name)
            {
                errors.push(RegistryError::DuplicatePluginTest {
                    plugin: pair[1].plugin,
                    name: pair[1].descriptor.name,
                    first: pair[0].descriptor.location,
                    second: pair[1].descriptor.location,
                });
            }
        }
        resolved_checks.sort_by_key(|check| {
            (
                check.plugin,
                check.descriptor.kind,
                check.descriptor.name,
                check.descriptor.location,
            )
        });
        resolved_middleware.sort_by_key(|layer| {
            (
                layer.descriptor.scope,
                std::cmp::Reverse(layer.descriptor.priority),
                layer.plugin,
                layer.descriptor.name,
                layer.descriptor.location,
            )
        });

        if !errors.is_empty() {
            return Err(RegistryErrors(errors));
        }
        let by_name = order
            .iter()
            .enumerate()
            .map(|(index, plugin)| (plugin.name, index))
            .collect();
        let index = PluginIndex {
            commands: PluginIndex::positions(&resolved_commands, |c| Some(c.plugin)),
            handlers: PluginIndex::positions(&resolved_handlers, |h| Some(h.plugin)),
            middleware: PluginIndex::positions(&resolved_middleware, |m| Some(m.plugin)),
            events: PluginIndex::positions(&resolved_events, |e| e.plugin),
        };
        Ok(Registry {
            plugins: order,
            by_name,
            index,
            routes: resolved_routes,
            handlers: resolved_handlers,
            events: resolved_events,
            commands: resolved_commands,
            middleware: resolved_middleware,
            health_checks: resolved_checks,
            plugin_tests: resolved_tests,
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

fn describe_event(event: &EventDescriptor) -> String {
    format!("{} ({})", event.type_name, event.location)
}

/// Orders plugins so that each comes after its dependencies; ties are broken by name so the
/// order is the same on every build.
fn start_order(
    plugins: &[&'static PluginDescriptor],
) -> Result<Vec<&'static PluginDescriptor>, Vec<RegistryError>> {
    let by_name: BTreeMap<&str, &'static PluginDescriptor> = plugins
        .iter()
        .map(|plugin| (plugin.name, *plugin))
        .collect();
    let mut errors = Vec::new();
    for plugin in plugins {
        for dependency in plugin.dependencies {
            if !by_name.contains_key(dependency) {
                errors.push(RegistryError::MissingDependency {
                    plugin: plugin.name,
                    dependency,
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut remaining: BTreeMap<&str, usize> = plugins
        .iter()
        .map(|plugin| (plugin.name, plugin.dependencies.len()))
        .collect();
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for plugin in plugins {
        for dependency in plugin.dependencies {
            dependents.entry(dependency).or_default().push(plugin.name);
        }
    }
    let mut ready: BTreeSet<&str> = remaining
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut order = Vec::with_capacity(plugins.len());
    while let Some(name) = ready.pop_first() {
        remaining.remove(name);
        order.push(by_name[name]);
        for dependent in dependents.get(name).into_iter().flatten() {
            let count = remaining.get_mut(dependent).expect("dependent is pending");
            *count -= 1;
            if *count == 0 {
                ready.insert(dependent);
            }
        }
    }
    if remaining.is_empty() {
        return Ok(order);
    }
    Err(vec![RegistryError::DependencyCycle {
        cycle: find_cycle(&by_name, &remaining),
    }])
}

/// Walks dependency edges among the plugins left over by the topological sort until a name
/// repeats. Every leftover plugin still waits on a leftover dependency, so the walk never
/// stops before it finds a cycle.
fn find_cycle(
    by_name: &BTreeMap<&str, &'static PluginDescriptor>,
    leftover: &BTreeMap<&str, usize>,
) -> Vec<&'static str> {
    let start = *leftover.keys().next().expect("a cycle leaves plugins over");
    let mut path: Vec<&'static str> = vec![by_name[start].name];
    loop {
        let current = by_name[path.last().expect("path is never empty")];
        let next = current
            .dependencies
            .iter()
            .copied()
            .filter(|dependency| leftover.contains_key(dependency))
            .min()
            .expect("a leftover plugin waits on a leftover dependency");
        if let Some(position) = path.iter().position(|name| *name == next) {
            let mut cycle = path.split_off(position);
            cycle.push(next);
            return cycle;
        }
        path.push(next);
    }
}

fn describe_route(route: &ResolvedRoute) -> String {
    format!(
        "{}::{} ({})",
        route.plugin, route.descriptor.handler, route.descriptor.location
    )
}

/// The paths core serves, each with everything below it; no plugin path may fall on or
/// under one of them, so a plugin can never answer in core's place.
pub const CORE_PATHS: [&str; 5] = [
    "/health",
    "/ready",
    "/api/v1/plugins",
    "/api/v1/admin",
    // Plugins' UI pages and static files.
    "/plugins",
];

/// The core path that `path` falls on or under, if any.
pub fn reserved(path: &str) -> Option<&'static str> {
    let path = path.trim_end_matches('/');
    CORE_PATHS.into_iter().find(|core| {
        path == *core
            || path
                .strip_prefix(core)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Joins a prefix and a route path; the route `/` maps to the prefix itself.
pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if path == "/" && !prefix.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}{path}")
    }
}

fn normalize_params(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with("{*") {
                "{*}"
            } else if segment.starts_with('{') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
