//! The start-up checks behind [`Registry::from_registrations`](super::Registry), one function
//! per check, each resolving one kind of registration and appending what it refuses.
//!
//! Every check appends to one list instead of stopping at the first problem, so that a build
//! with three mistakes shows three messages; `from_registrations` calls them in a fixed order,
//! which is the order the messages appear in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::abi::command::CommandDescriptor;
use crate::abi::event::{EventDescriptor, EventHandlerDescriptor};
use crate::abi::health::HealthCheckDescriptor;
use crate::abi::log_sink::LogSinkDescriptor;
use crate::abi::middleware::MiddlewareDescriptor;
use crate::abi::plugin::PluginDescriptor;
use crate::abi::plugin_test::PluginTestDescriptor;
use crate::abi::route::{Method, RouteDescriptor};

use super::{
    CORE_COMMANDS, CORE_TABLE_PREFIX, RegistryError, ResolvedCommand, ResolvedEvent,
    ResolvedHandler, ResolvedHealthCheck, ResolvedLogSink, ResolvedMiddleware, ResolvedPluginTest,
    ResolvedRoute, join_path, reserved,
};

/// Each plugin's crate, for finding the plugin a registration belongs to.
pub(super) type ByCrate = HashMap<&'static str, &'static PluginDescriptor>;

/// Refuses two plugins with one name and two plugins in one crate; returns the others sorted
/// by name, and each crate's plugin.
pub(super) fn unique_plugins(
    mut plugins: Vec<&'static PluginDescriptor>,
    errors: &mut Vec<RegistryError>,
) -> (Vec<&'static PluginDescriptor>, ByCrate) {
    // Link order is unspecified, so every listing and check works on sorted input.
    plugins.sort_by_key(|plugin| (plugin.name, plugin.type_name));
    let mut by_crate = ByCrate::new();
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
    (unique, by_crate)
}

/// Refuses a dependency that is not compiled in, and a dependency cycle; returns the plugins
/// in start order (each after its dependencies, ties broken by name so the order is the same
/// on every build), or as given when refused.
pub(super) fn start_order(
    plugins: &[&'static PluginDescriptor],
    errors: &mut Vec<RegistryError>,
) -> Vec<&'static PluginDescriptor> {
    let by_name: BTreeMap<&str, &'static PluginDescriptor> = plugins
        .iter()
        .map(|plugin| (plugin.name, *plugin))
        .collect();
    let mut missing = Vec::new();
    for plugin in plugins {
        for dependency in plugin.dependencies {
            if !by_name.contains_key(dependency) {
                missing.push(RegistryError::MissingDependency {
                    plugin: plugin.name,
                    dependency,
                });
            }
        }
    }
    if !missing.is_empty() {
        errors.append(&mut missing);
        return plugins.to_vec();
    }
    match topological_order(plugins, &by_name) {
        Ok(order) => order,
        Err(leftover) => {
            errors.push(RegistryError::DependencyCycle {
                cycle: find_cycle(&by_name, &leftover),
            });
            plugins.to_vec()
        }
    }
}

/// Kahn's sort of plugins whose dependencies are all present, taking the first name among
/// those ready at each step; on a cycle, the plugins left over with how many dependencies
/// each still waits on.
fn topological_order(
    plugins: &[&'static PluginDescriptor],
    by_name: &BTreeMap<&str, &'static PluginDescriptor>,
) -> Result<Vec<&'static PluginDescriptor>, BTreeMap<&'static str, usize>> {
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
        Ok(order)
    } else {
        Err(remaining)
    }
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

/// Refuses a plugin prefix that falls on or under a path core serves.
pub(super) fn reserved_prefixes(
    plugins: &[&'static PluginDescriptor],
    errors: &mut Vec<RegistryError>,
) {
    for plugin in plugins {
        if let Some(core) = reserved(plugin.prefix) {
            errors.push(RegistryError::ReservedPath {
                plugin: plugin.name,
                what: "prefix".to_string(),
                path: plugin.prefix.to_string(),
                core,
            });
        }
    }
}

/// Refuses a migration that touches an object outside its plugin's table prefix, for every
/// plugin; `plugins` is sorted by name.
pub(super) fn migrations(plugins: &[&'static PluginDescriptor], errors: &mut Vec<RegistryError>) {
    for plugin in plugins {
        check_migrations(plugin, plugins, errors);
    }
}

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
                    longer_plugin_prefix(object, plugin, plugins).map(|other| {
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

/// A plugin with a longer name than `plugin`'s that `object` starts with, up to one of its
/// `_`: a lookup per `_` in the sorted names, not a scan of every plugin per object.
fn longer_plugin_prefix(
    object: &str,
    plugin: &PluginDescriptor,
    plugins: &[&'static PluginDescriptor],
) -> Option<&'static PluginDescriptor> {
    object
        .match_indices('_')
        .map(|(at, _)| &object[..at])
        .filter(|name| name.len() > plugin.name.len())
        .find_map(|name| {
            let at = plugins.binary_search_by(|p| p.name.cmp(name)).ok()?;
            Some(plugins[at])
        })
}

/// Each registration of a kind that belongs to its crate's plugin, resolved by `make`; one
/// in a crate without a plugin is reported as an orphan. `key` gives its crate, name and
/// location.
fn owned<D: 'static, R>(
    items: Vec<&'static D>,
    by_crate: &ByCrate,
    errors: &mut Vec<RegistryError>,
    what: &'static str,
    key: impl Fn(&D) -> (&'static str, &'static str, &'static str),
    make: impl Fn(&'static PluginDescriptor, &'static D) -> R,
) -> Vec<R> {
    let mut resolved = Vec::with_capacity(items.len());
    for item in items {
        let (crate_name, name, location) = key(item);
        match by_crate.get(crate_name) {
            Some(plugin) => resolved.push(make(plugin, item)),
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

/// Refuses a route in a crate without a plugin; returns the others with their full paths,
/// sorted by plugin, path, method and location.
pub(super) fn resolve_routes(
    routes: Vec<&'static RouteDescriptor>,
    by_crate: &ByCrate,
    errors: &mut Vec<RegistryError>,
) -> Vec<ResolvedRoute> {
    let mut resolved = owned(
        routes,
        by_crate,
        errors,
        "route",
        |route| (route.crate_name, route.handler, route.location),
        |plugin, descriptor| ResolvedRoute {
            plugin: plugin.name,
            full_path: join_path(plugin.prefix, descriptor.path),
            descriptor,
        },
    );
    resolved.sort_by(|a, b| {
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
    resolved
}

/// Refuses a route whose full path falls on or under a path core serves, unless its plugin's
/// prefix was already refused for that.
pub(super) fn reserved_routes(
    routes: &[ResolvedRoute],
    by_crate: &ByCrate,
    errors: &mut Vec<RegistryError>,
) {
    for route in routes {
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
}

/// Refuses two routes that answer the same method and path.
pub(super) fn duplicate_routes(routes: &[ResolvedRoute], errors: &mut Vec<RegistryError>) {
    // Paths that differ only in parameter names (`/{id}` and `/{key}`) match the same
    // requests, so they are compared in a normalised form.
    let mut seen: HashMap<(Method, String), &ResolvedRoute> = HashMap::new();
    for route in routes {
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
}

fn describe_route(route: &ResolvedRoute) -> String {
    format!(
        "{}::{} ({})",
        route.plugin, route.descriptor.handler, route.descriptor.location
    )
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

/// Refuses an event handler in a crate without a plugin; returns the others in dispatch
/// order: by event, then descending priority, then plugin, handler and location.
pub(super) fn resolve_handlers(
    handlers: Vec<&'static EventHandlerDescriptor>,
    by_crate: &ByCrate,
    errors: &mut Vec<RegistryError>,
) -> Vec<ResolvedHandler> {
    let mut resolved = owned(
        handlers,
        by_crate,
        errors,
        "event handler",
        |handler| (handler.crate_name, handler.handler, handler.location),
        |plugin, descriptor| ResolvedHandler {
            plugin: plugin.name,
            descriptor,
        },
    );
    resolved.sort_by(|a, b| {
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
    resolved
}

/// Refuses two event types with one name; returns the others sorted by name, each with the
/// plugin of its crate if it has one.
pub(super) fn resolve_events(
    mut events: Vec<&'static EventDescriptor>,
    by_crate: &ByCrate,
    errors: &mut Vec<RegistryError>,
) -> Vec<ResolvedEvent> {
    events.sort_by_key(|event| (event.name, event.type_name));
    let mut resolved: Vec<ResolvedEvent> = Vec::with_capacity(events.len());
    for event in events {
        match resolved.last() {
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
        resolved.push(ResolvedEvent {
            plugin: by_crate.get(event.crate_name).map(|plugin| plugin.name),
            descriptor: event,
        });
    }
    resolved
}

fn describe_event(event: &EventDescriptor) -> String {
    format!("{} ({})", event.type_name, event.location)
}

/// Refuses a command in a crate without a plugin, in a category that is one of core's
/// commands, or with the category and name of another; returns each with its plugin and
/// category, sorted by category, name and location.
pub(super) fn resolve_commands(
    commands: Vec<&'static CommandDescriptor>,
    by_crate: &ByCrate,
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
    duplicate_commands(&resolved, errors);
    resolved
}

/// Refuses two commands with one category and name; `commands` is sorted by both.
fn duplicate_commands(commands: &[ResolvedCommand], errors: &mut Vec<RegistryError>) {
    let describe = |c: &ResolvedCommand| {
        format!(
            "{}::{} ({})",
            c.plugin, c.descriptor.handler, c.descriptor.location
        )
    };
    for pair in commands.windows(2) {
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
}

/// Refuses a middleware in a crate without a plugin; returns the others in chain order,
/// outermost first: by scope (global first), descending priority, plugin, name and location.
pub(super) fn resolve_middleware(
    middleware: Vec<&'static MiddlewareDescriptor>,
    by_crate: &ByCrate,
    errors: &mut Vec<RegistryError>,
) -> Vec<ResolvedMiddleware> {
    let mut resolved = owned(
        middleware,
        by_crate,
        errors,
        "middleware",
        |layer| (layer.crate_name, layer.name, layer.location),
        |plugin, descriptor| ResolvedMiddleware {
            plugin: plugin.name,
            descriptor,
        },
    );
    resolved.sort_by_key(|layer| {
        (
            layer.descriptor.scope,
            std::cmp::Reverse(layer.descriptor.priority),
            layer.plugin,
            layer.descriptor.name,
            layer.descriptor.location,
        )
    });
    resolved
}

/// Refuses a health check in a crate without a plugin; returns the others sorted by plugin,
/// kind, name and location.
pub(super) fn resolve_health_checks(
    health_checks: Vec<&'static HealthCheckDescriptor>,
    by_crate: &ByCrate,
    errors: &mut Vec<RegistryError>,
) -> Vec<ResolvedHealthCheck> {
    let mut resolved = owned(
        health_checks,
        by_crate,
        errors,
        "health check",
        |check| (check.crate_name, check.name, check.location),
        |plugin, descriptor| ResolvedHealthCheck {
            plugin: plugin.name,
            descriptor,
        },
    );
    resolved.sort_by_key(|check| {
        (
            check.plugin,
            check.descriptor.kind,
            check.descriptor.name,
            check.descriptor.location,
        )
    });
    resolved
}

/// Refuses a log sink in a crate without a plugin; returns the others sorted by plugin, name
/// and location. A sink may name plugins this build leaves out (it receives nothing of
/// theirs), so its `plugins` list is not checked against the registry.
pub(super) fn resolve_log_sinks(
    log_sinks: Vec<&'static LogSinkDescriptor>,
    by_crate: &ByCrate,
    errors: &mut Vec<RegistryError>,
) -> Vec<ResolvedLogSink> {
    let mut resolved = owned(
        log_sinks,
        by_crate,
        errors,
        "log sink",
        |sink| (sink.crate_name, sink.name, sink.location),
        |plugin, descriptor| ResolvedLogSink {
            plugin: plugin.name,
            descriptor,
        },
    );
    resolved.sort_by_key(|sink| (sink.plugin, sink.descriptor.name, sink.descriptor.location));
    resolved
}

/// Refuses a plugin test in a crate without a plugin, and two tests of one plugin with one
/// name; returns the others sorted by plugin, name and location.
pub(super) fn resolve_plugin_tests(
    plugin_tests: Vec<&'static PluginTestDescriptor>,
    by_crate: &ByCrate,
    errors: &mut Vec<RegistryError>,
) -> Vec<ResolvedPluginTest> {
    let mut resolved = owned(
        plugin_tests,
        by_crate,
        errors,
        "plugin test",
        |test| (test.crate_name, test.name, test.location),
        |plugin, descriptor| ResolvedPluginTest {
            plugin: plugin.name,
            descriptor,
        },
    );
    resolved.sort_by_key(|test| (test.plugin, test.descriptor.name, test.descriptor.location));
    // inventory may collect one registration twice when a crate is linked twice.
    resolved.dedup_by(|a, b| std::ptr::eq(a.descriptor, b.descriptor));
    for pair in resolved.windows(2) {
        if (pair[0].plugin, pair[0].descriptor.name) == (pair[1].plugin, pair[1].descriptor.name) {
            errors.push(RegistryError::DuplicatePluginTest {
                plugin: pair[1].plugin,
                name: pair[1].descriptor.name,
                first: pair[0].descriptor.location,
                second: pair[1].descriptor.location,
            });
        }
    }
    resolved
}
