//! The one serialisable description of a compiled-in plugin, shared by `GET /api/v1/plugins`,
//! the admin view and `plexichat plugins list --json`, so that they cannot disagree.
//!
//! Public answers carry names, states and counters only; error texts (a failed `init`, a
//! task's last error) appear only in [`Audience::Admin`] descriptions.

use serde::Serialize;

use crate::abi::plugin::PluginDescriptor;
use crate::abi::route::Method;
use crate::registry::Registry;
use crate::runtime::state::PluginStatus;
use crate::runtime::{HandlerStats, RouteStats, Runtime};

/// Who a description is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Anyone: names, states and counters.
    Public,
    /// An authenticated operator: also error texts.
    Admin,
}

/// A plugin's manifest, state and registrations, and for a running server its counters.
#[derive(Debug, Serialize)]
pub struct PluginInfo {
    /// The manifest fields, flattened into this object.
    #[serde(flatten)]
    pub manifest: &'static PluginDescriptor,
    /// Its state (`{"state": "running"}`, flattened); for a listing made without a server,
    /// the state the configuration starts it in.
    #[serde(flatten)]
    pub status: PluginStatus,
    /// Routes with full paths.
    pub routes: Vec<RouteInfo>,
    /// Event types it declares with `#[event]`, by name: what other plugins can subscribe to.
    pub events: Vec<EventInfo>,
    /// Event handlers in dispatch order.
    pub event_handlers: Vec<HandlerInfo>,
    /// Each declared permission with what it grants.
    pub grants: Vec<GrantInfo>,
    /// The tables its migrations create (all named `<name>_…`).
    pub tables: Vec<String>,
    /// Its CLI commands, by category and name.
    pub commands: Vec<CommandInfo>,
    /// Its HTTP middleware, in chain order.
    pub middleware: Vec<MiddlewareInfo>,
    /// Its named health checks, liveness first.
    pub health_checks: Vec<HealthCheckInfo>,
    /// Its log sinks, by name.
    pub log_sinks: Vec<LogSinkInfo>,
    /// Its `#[plugin_test]`s, by name: what `plugins self-test` and the test manager run.
    pub tests: Vec<PluginTestInfo>,
    /// Its UI pages with the URL each is served at.
    pub pages: Vec<PageInfo>,
    /// The files of its docs folder, embedded at compile time (the `docs` plugin shows them).
    pub doc_files: Vec<&'static str>,
    /// Counters and tasks of a running server.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub live: Option<Live>,
}

/// One route of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteInfo {
    /// HTTP method.
    pub method: Method,
    /// Full path, prefix included.
    pub path: String,
    /// Handler function name.
    pub handler: &'static str,
}

/// One event type a plugin declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventInfo {
    /// Its stable name, e.g. `awesome.action.completed`.
    pub name: &'static str,
    /// The Rust type a handler takes to subscribe, e.g. `my_awesome_plugin::ActionCompleted`.
    pub rust_type: &'static str,
    /// Declared `vetoable`: proposed first, and pre-handlers may modify or reject it.
    pub vetoable: bool,
}

/// One declared permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantInfo {
    /// The permission, e.g. `plugin:write`.
    pub permission: &'static str,
    /// What it lets the plugin do.
    pub grants: &'static str,
}

/// One event handler of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerInfo {
    /// Event name.
    pub event: &'static str,
    /// The event's Rust type, when it is registered (every `#[event]` type and core event is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<&'static str>,
    /// Handler function name.
    pub handler: &'static str,
    /// Dispatch priority; higher runs first.
    pub priority: i32,
    /// A pre-handler: runs when the event is proposed, and may modify or reject it.
    pub pre: bool,
}

/// One UI page of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageInfo {
    /// Its name, one URL segment.
    pub name: &'static str,
    /// Its title.
    pub title: &'static str,
    /// Where it is served: `/plugins/<plugin>/<page>/`.
    pub url: String,
}

/// One `#[health_check]` of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheckInfo {
    /// The function's name.
    pub name: &'static str,
    /// `liveness` or `readiness`.
    pub kind: crate::abi::health::HealthKind,
}

/// One `#[log_sink]` of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSinkInfo {
    /// The function's name.
    pub name: &'static str,
    /// The plugins whose records it receives (`plexichat`: core's); empty: everyone's.
    pub plugins: &'static [&'static str],
    /// The least severe level it receives.
    pub level: crate::abi::log_sink::LogLevel,
    /// Records it may fall behind by before they are dropped.
    pub capacity: usize,
}

/// One `#[plugin_test]` of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PluginTestInfo {
    /// The function's name.
    pub name: &'static str,
    /// What it is about.
    pub category: crate::abi::plugin_test::TestCategory,
    /// What it checks: its doc comment.
    pub description: &'static str,
    /// Its own time limit in milliseconds, if it declares one.
    pub timeout_ms: Option<u64>,
    /// Its own retry count, if it declares one.
    pub retries: Option<u32>,
    /// Its labels.
    pub tags: &'static [&'static str],
    /// Whether it is an `async fn` (a synchronous test runs on a thread of its own).
    #[serde(rename = "async")]
    pub is_async: bool,
}

impl PluginTestInfo {
    /// Describes a registered test.
    pub fn new(test: &crate::abi::plugin_test::PluginTestDescriptor) -> PluginTestInfo {
        PluginTestInfo {
            name: test.name,
            category: test.category,
            description: test.doc,
            timeout_ms: test.timeout_ms,
            retries: test.retries,
            tags: test.tags,
            is_async: test.is_async(),
        }
    }
}

/// One `#[middleware]` of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MiddlewareInfo {
    /// The function's name.
    pub name: &'static str,
    /// `global` (every request) or `plugin` (this plugin's routes).
    pub scope: crate::abi::middleware::MiddlewareScope,
    /// Higher is further out.
    pub priority: i32,
    /// `function` (an `async fn` of request and next) or `layer` (a tower layer).
    pub form: crate::abi::middleware::MiddlewareForm,
}

impl MiddlewareInfo {
    /// Describes a resolved middleware.
    pub fn new(middleware: &crate::registry::ResolvedMiddleware) -> MiddlewareInfo {
        MiddlewareInfo {
            name: middleware.descriptor.name,
            scope: middleware.descriptor.scope,
            priority: middleware.descriptor.priority,
            form: middleware.descriptor.call.form(),
        }
    }
}

/// A plugin's CLI command, as listings show it.
#[derive(Debug, Clone, Serialize)]
pub struct CommandInfo {
    /// The first word after `plexichat`.
    pub category: &'static str,
    /// The second word.
    pub name: &'static str,
    /// The one-line help.
    pub about: &'static str,
    /// The plugin version that added it.
    pub since: &'static str,
    /// `admin_only`, `dangerous`, `requires_auth`.
    pub flags: crate::abi::command::CommandFlags,
}

impl CommandInfo {
    /// Describes a resolved command of a plugin at `version`.
    pub fn new(command: &crate::registry::ResolvedCommand, version: &'static str) -> CommandInfo {
        CommandInfo {
            category: command.category,
            name: command.descriptor.name,
            about: command.descriptor.about,
            since: command.descriptor.since.unwrap_or(version),
            flags: command.descriptor.flags,
        }
    }
}

/// What a running server knows about a plugin beyond its registrations.
#[derive(Debug, Serialize)]
pub struct Live {
    /// Calls and failures per handler.
    pub handler_stats: Vec<HandlerStats>,
    /// Route counters.
    pub route_stats: RouteStats,
    /// Background tasks.
    pub tasks: Vec<TaskInfo>,
    /// Why its last `init` failed, or why liveness supervision gave up on it (admin only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its liveness checks' record, if it has any; the last failure's text is admin only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<super::LivenessStatus>,
}

/// A background task as the API shows it.
#[derive(Debug, Serialize)]
pub struct TaskInfo {
    /// Task name.
    pub name: &'static str,
    /// `running`, `restarting`, `finished` or `stopped`.
    pub state: &'static str,
    /// Times the supervisor restarted it.
    pub restarts: u64,
    /// Its last error (admin only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl PluginInfo {
    /// Describes `plugin` in `status` from what `registry` collected, without live data.
    pub fn new(
        registry: &Registry,
        plugin: &'static PluginDescriptor,
        status: PluginStatus,
    ) -> PluginInfo {
        PluginInfo {
            manifest: plugin,
            status,
            routes: registry
                .routes_of(plugin.name)
                .map(|route| RouteInfo {
                    method: route.descriptor.method,
                    path: route.full_path.clone(),
                    handler: route.descriptor.handler,
                })
                .collect(),
            events: registry
                .events_of(plugin.name)
                .map(|event| EventInfo {
                    name: event.descriptor.name,
                    rust_type: event.descriptor.type_name,
                    vetoable: event.descriptor.vetoable,
                })
                .collect(),
            event_handlers: registry
                .handlers_of(plugin.name)
                .map(|handler| HandlerInfo {
                    event: handler.descriptor.event,
                    event_type: registry
                        .event(handler.descriptor.event)
                        .map(|event| event.descriptor.type_name),
                    handler: handler.descriptor.handler,
                    priority: handler.descriptor.priority,
                    pre: handler.descriptor.call.is_pre(),
                })
                .collect(),
            grants: plugin
                .permissions
                .iter()
                .map(|permission| GrantInfo {
                    permission,
                    grants: plexichat_rules::permission(permission)
                        .map_or("", |known| known.grants),
                })
                .collect(),
            tables: crate::abi::migration::tables(plugin.migrations),
            commands: registry
                .commands_of(plugin.name)
                .map(|command| CommandInfo::new(command, plugin.version))
                .collect(),
            middleware: registry
                .middleware_of(plugin.name)
                .map(MiddlewareInfo::new)
                .collect(),
            health_checks: registry
                .health_checks_of(plugin.name)
                .map(|check| HealthCheckInfo {
                    name: check.descriptor.name,
                    kind: check.descriptor.kind,
                })
                .collect(),
            log_sinks: registry
                .log_sinks_of(plugin.name)
                .map(|sink| LogSinkInfo {
                    name: sink.descriptor.name,
                    plugins: sink.descriptor.plugins,
                    level: sink.descriptor.level,
                    capacity: sink.descriptor.capacity,
                })
                .collect(),
            tests: registry
                .plugin_tests_of(plugin.name)
                .map(|test| PluginTestInfo::new(test.descriptor))
                .collect(),
            pages: plugin
                .ui_pages
                .iter()
                .map(|page| PageInfo {
                    name: page.name,
                    title: page.title,
                    url: format!("/plugins/{}/{}/", plugin.name, page.name),
                })
                .collect(),
            doc_files: plugin.docs.iter().map(|file| file.path).collect(),
            live: None,
        }
    }

    /// Describes `plugin` as `runtime` runs it, for `audience`.
    pub fn of_running(
        runtime: &Runtime,
        plugin: &'static PluginDescriptor,
        audience: Audience,
    ) -> PluginInfo {
        let admin = audience == Audience::Admin;
        let status = runtime.status(plugin.name).unwrap_or(PluginStatus::Stopped);
        let mut info = PluginInfo::new(runtime.registry(), plugin, status);
        info.live = Some(Live {
            handler_stats: runtime.handler_stats(plugin.name),
            route_stats: runtime.route_stats(plugin.name),
            tasks: runtime
                .task_status(plugin.name)
                .into_iter()
                .map(|task| TaskInfo {
                    name: task.name,
                    state: task.state,
                    restarts: task.restarts,
                    last_error: task.last_error.filter(|_| admin),
                })
                .collect(),
            error: runtime.failure(plugin.name).filter(|_| admin),
            liveness: runtime.liveness(plugin.name).map(|mut liveness| {
                liveness.last_failure = liveness.last_failure.filter(|_| admin);
                liveness
            }),
        });
        info
    }

    /// Every plugin as `runtime` runs it, in start order.
    pub fn all_running(runtime: &Runtime, audience: Audience) -> Vec<PluginInfo> {
        runtime
            .registry()
            .plugins()
            .iter()
            .map(|plugin| PluginInfo::of_running(runtime, plugin, audience))
            .collect()
    }
}
