//! The running program: one instance of every plugin with its state and configuration, the
//! typed event bus, and the one place where plugin states change.
//!
//! - `bus`: publishing events to handlers, in priority order, with failures contained and,
//!   for lifecycle events, a deadline.
//! - `transitions`: start, shutdown, enable, disable and reload make the running plugins
//!   match the operator's wishes; all of them go through one serialised `converge`.
//! - `tasks`: supervised background tasks, one cancellation group per plugin.
//! - `readiness`: `/ready` and per-plugin health, checked concurrently and cached.
//! - `liveness`: plugins' liveness checks run periodically; restarts and giving up.
//! - `reload`: a new configuration, offered to plugins, then swapped in.
//! - `state`: the operator's wishes resolved into one state per plugin.
//! - `context`: what hooks and background tasks receive.
//! - `plugins`: the read-only view of every plugin that `plugins:read` grants.
//! - `info`: the one description of a plugin that the API and the CLI share.
//! - `backups`: calling plugins' backup handlers.
//! - `command`: what a plugin's CLI command receives.

pub mod ai;
pub mod analytics;
mod backups;
pub mod behind;
mod bus;
mod command;
mod context;
pub mod http_client;
pub mod info;
pub mod limit;
mod liveness;
pub mod log_sinks;
pub mod outbox;
mod plugins;
mod readiness;
mod reload;
pub mod state;
mod tasks;
mod transitions;
mod type_map;
pub mod vouch;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::abi::plugin::{Configurable, Plugin, PluginDescriptor};
use crate::config::Config;
use crate::registry::Registry;
use crate::runtime::state::{PluginStatus, Slot};
use crate::storage::Storage;
use crate::storage::migrate::{self, MigrateError, MigrateReport};

pub use backups::HandlerError;
pub use bus::Delivery;
pub use bus::{DispatchReport, HandlerFailure, HandlerStats, Rejection, RejectionCause};
pub use command::{CommandContext, Invocation, ServerClient};
pub use context::{Db, PluginContext, TaskContext, WriteTransaction};
pub use liveness::LivenessStatus;
pub use plugins::Plugins;
pub use readiness::{NotReady, Readiness};
pub use reload::{ConfigChanged, ConfigChanging, ConfigSource, ReloadError, ReloadReport};
pub use tasks::TaskStatus;
pub(crate) use tasks::Tasks;
pub use transitions::{Changes, InitFailure, ShutdownReport, TransitionError};

/// A handle to the running plugins; cheap to clone, shared by the server and every handler.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    /// Each plugin by type (the extractors' one lookup) and by name.
    by_type: type_map::TypeMap<Arc<Entry>>,
    by_name: HashMap<&'static str, Arc<Entry>>,
    /// Handlers per event type, already in dispatch order, so that publishing is one hash
    /// lookup and a walk over a slice.
    handlers: type_map::TypeMap<bus::Handlers>,
    /// The whole current configuration; each plugin's own section is also in its entry.
    config: RwLock<Arc<Config>>,
    /// Where a reload reads the configuration from.
    source: Option<ConfigSource>,
    /// The transition state; holding it is what serialises transitions.
    control: tokio::sync::Mutex<transitions::Control>,
    tasks: Tasks,
    readiness: readiness::Cache,
    /// Liveness checks' failures and restarts per plugin.
    liveness: liveness::Book,
    /// The database and data folder every plugin's services reach.
    storage: Storage,
    /// Plugins (and core, as `plexichat`) whose migrations are known to be applied.
    migrated: std::sync::Mutex<std::collections::HashSet<&'static str>>,
    /// One value per type that layers above this one keep with the runtime (the plugin test
    /// runner), so that whoever holds the runtime reaches the same one.
    extensions: std::sync::Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    /// Whether plugins should run their scheduled jobs here; see
    /// [`Runtime::runs_scheduled_jobs`].
    scheduled_jobs: std::sync::atomic::AtomicBool,
}

/// The server as axum's router state and generated code's shims hold it: the [`Runtime`],
/// closed.
///
/// Every route, middleware and extractor is built on this state, and every function pointer
/// of a descriptor receives it (a hook, an event handler, a command, a middleware, a health
/// check). It has no public methods and no way back to the runtime, so neither a handler
/// that asks for `State<Host>` nor a descriptor written by hand can start, stop or
/// reconfigure another plugin, read the admin token, or publish without `events:publish`:
/// what a plugin can do is what its [`PluginContext`]'s permissions grant.
#[derive(Clone, ref_cast::RefCastCustom)]
#[repr(transparent)]
pub struct Host(Runtime);

impl Host {
    /// The runtime as the handle a shim receives, borrowed: no clone on the hot path of an
    /// event dispatch.
    #[ref_cast::ref_cast_custom]
    pub(crate) fn of(runtime: &Runtime) -> &Host;

    /// The runtime it closes.
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.0
    }

    /// The runtime it closes, owned.
    pub(crate) fn into_runtime(self) -> Runtime {
        self.0
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

/// Everything the runtime keeps about one plugin.
pub struct Entry {
    /// The plugin's value, as its `PluginDescriptor::new` made it.
    pub instance: Arc<dyn Any + Send + Sync>,
    /// Its state, and the count of requests and hooks inside it.
    pub slot: Arc<Slot>,
    /// The plugin's typed section, swapped on reload; read per request by `PluginConfig`.
    config: RwLock<Option<Arc<dyn Any + Send + Sync>>>,
    /// Why its last `init` failed: for the log and the admin view, never public answers.
    failure: RwLock<Option<String>>,
    /// Its routes' panic and time-out counters.
    pub route_counters: Arc<RouteCounters>,
}

/// Counters of one plugin's routes.
#[derive(Debug, Default)]
pub struct RouteCounters {
    /// Requests whose handler panicked (answered 500).
    pub panics: AtomicU64,
    /// Requests on which one of the plugin's middleware panicked (answered 500).
    pub middleware_panics: AtomicU64,
}

/// A snapshot of [`RouteCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RouteStats {
    /// Requests whose handler panicked (answered 500).
    pub panics: u64,
    /// Requests on which one of the plugin's middleware panicked (answered 500).
    pub middleware_panics: u64,
}

impl Runtime {
    /// Every plugin's state with the default configuration; nothing runs until
    /// [`Runtime::start`].
    pub fn new(registry: Registry) -> Runtime {
        let config = Config::defaults(&registry);
        Runtime::with_config(registry, config)
    }

    /// Every plugin's state with a validated configuration, on a private in-memory
    /// database (see [`Runtime::with_storage`] for a real one).
    pub fn with_config(registry: Registry, config: Config) -> Runtime {
        Runtime::with_config_source(registry, config, None)
    }

    /// Like [`Runtime::with_config`], with `source` for [`Runtime::reload`].
    pub fn with_config_source(
        registry: Registry,
        config: Config,
        source: Option<ConfigSource>,
    ) -> Runtime {
        let storage = Storage::memory(&config.data.dir);
        Runtime::with_storage(registry, config, source, storage)
    }

    /// A runtime serving from `storage` (see [`Storage::open`]); what `plexichat serve`
    /// builds.
    pub fn with_storage(
        registry: Registry,
        config: Config,
        source: Option<ConfigSource>,
        storage: Storage,
    ) -> Runtime {
        let control = transitions::Control::new(&registry, &config);
        let resolved = crate::runtime::state::resolve(&registry, &control.wishes);
        let mut by_type = type_map::TypeMap::default();
        let mut by_name = HashMap::new();
        for plugin in registry.plugins() {
            let resolved = resolved[plugin.name];
            // Nothing runs before `start`; a plugin that will run shows as stopped.
            let status = match resolved.target {
                crate::runtime::state::Target::Run => PluginStatus::Stopped,
                crate::runtime::state::Target::Down(status) => status,
            };
            let entry = Arc::new(Entry {
                instance: (plugin.construct)(),
                slot: Slot::new(status, resolved.wanted),
                config: RwLock::new(config.plugin_config(plugin.name)),
                failure: RwLock::new(None),
                route_counters: Arc::default(),
            });
            by_type.insert((plugin.type_id)(), Arc::clone(&entry));
            by_name.insert(plugin.name, entry);
        }
        let handlers = bus::subscribers(&registry, &by_name);
        let readiness = readiness::Cache::new(config.server.ready_cache);
        Runtime {
            inner: Arc::new(Inner {
                registry,
                by_type,
                by_name,
                handlers,
                config: RwLock::new(Arc::new(config)),
                source,
                control: tokio::sync::Mutex::new(control),
                tasks: Tasks::default(),
                readiness,
                liveness: liveness::Book::default(),
                storage,
                migrated: std::sync::Mutex::default(),
                extensions: std::sync::Mutex::default(),
                scheduled_jobs: std::sync::atomic::AtomicBool::new(true),
            }),
        }
    }

    /// Whether this process should run plugins' scheduled jobs (the test manager's
    /// schedules): true for a server, false for a one-shot process that starts the plugins
    /// only to run something and stop (`plexichat tests run`, `plugins self-test`), whose
    /// jobs are the server's to run.
    pub fn runs_scheduled_jobs(&self) -> bool {
        self.inner.scheduled_jobs.load(Ordering::SeqCst)
    }

    /// Marks this runtime as a one-shot process: plugins started after this run no scheduled
    /// jobs (see [`Runtime::runs_scheduled_jobs`]) and no background tasks (their
    /// `context.spawn` records the task as `not_started`).
    pub fn without_scheduled_jobs(&self) {
        self.inner.scheduled_jobs.store(false, Ordering::SeqCst);
    }

    /// This runtime's one value of type `T`, created by `init` on first use.
    pub fn extension<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut extensions = self
            .inner
            .extensions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let value = extensions
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(init()));
        Arc::clone(value)
            .downcast::<T>()
            .expect("extensions are keyed by their type")
    }

    /// The checked registry this runtime was built from.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The instance of plugin `P`, whatever its state, if it is compiled in.
    pub fn plugin<P: Plugin>(&self) -> Option<Arc<P>> {
        self.inner
            .by_type
            .get(&TypeId::of::<P>())
            .and_then(|entry| Arc::clone(&entry.instance).downcast::<P>().ok())
    }

    /// Borrows the instance of plugin `P`; used by event handler shims.
    pub fn plugin_ref<P: Plugin>(&self) -> Option<&P> {
        self.inner
            .by_type
            .get(&TypeId::of::<P>())
            .and_then(|entry| entry.instance.downcast_ref::<P>())
    }

    /// The instance of plugin `P` if it is running; otherwise its state (`Stopped` when it
    /// is not compiled in).
    pub fn running_plugin<P: Plugin>(&self) -> Result<Arc<P>, PluginStatus> {
        let entry = self
            .inner
            .by_type
            .get(&TypeId::of::<P>())
            .ok_or(PluginStatus::Stopped)?;
        if !entry.slot.is_running() {
            return Err(entry.slot.status());
        }
        Arc::clone(&entry.instance)
            .downcast::<P>()
            .map_err(|_| PluginStatus::Stopped)
    }

    /// The current typed configuration of plugin `P`.
    pub fn config<P: Configurable>(&self) -> Option<Arc<P::Config>> {
        let entry = self.inner.by_type.get(&TypeId::of::<P>())?;
        let config = entry
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()?;
        config.downcast::<P::Config>().ok()
    }

    /// The whole current configuration.
    pub fn current_config(&self) -> Arc<Config> {
        Arc::clone(
            &self
                .inner
                .config
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Longest a plugin's `init` or `stop`, a lifecycle event's handlers, or a plugin's
    /// tasks may take to finish (`[server] phase_timeout`).
    pub fn phase_timeout(&self) -> Duration {
        self.current_config().server.phase_timeout
    }

    /// The state of `plugin`, or `None` if no such plugin is compiled in.
    pub fn status(&self, plugin: &str) -> Option<PluginStatus> {
        self.inner
            .by_name
            .get(plugin)
            .map(|entry| entry.slot.status())
    }

    /// Why `plugin`'s last `init` failed, if it did; for the log and the admin view only.
    pub fn failure(&self, plugin: &str) -> Option<String> {
        self.inner.by_name.get(plugin).and_then(|entry| {
            entry
                .failure
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
        })
    }

    /// Names of the running plugins, in start order.
    pub fn running(&self) -> Vec<&'static str> {
        self.registry()
            .plugins()
            .iter()
            .map(|plugin| plugin.name)
            .filter(|name| self.inner.by_name[name].slot.is_running())
            .collect()
    }

    /// The background tasks of `plugin`.
    pub fn task_status(&self, plugin: &str) -> Vec<TaskStatus> {
        self.inner.tasks.of(plugin)
    }

    /// A snapshot of `plugin`'s route counters (zero for an unknown plugin).
    pub fn route_stats(&self, plugin: &str) -> RouteStats {
        let counters = self
            .inner
            .by_name
            .get(plugin)
            .map(|entry| &entry.route_counters);
        let load = |counter: fn(&RouteCounters) -> &AtomicU64| {
            counters.map_or(0, |counters| counter(counters).load(Ordering::Relaxed))
        };
        RouteStats {
            panics: load(|counters| &counters.panics),
            middleware_panics: load(|counters| &counters.middleware_panics),
        }
    }

    /// The running entry of `plugin`, if it is compiled in.
    pub fn entry(&self, plugin: &str) -> Option<&Arc<Entry>> {
        self.inner.by_name.get(plugin)
    }

    pub(crate) fn tasks(&self) -> &Tasks {
        &self.inner.tasks
    }

    /// The database and data folder; plugins reach them only through their context.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The engine serving the database.
    pub fn engine(&self) -> crate::config::database::Engine {
        self.inner.storage.database().engine()
    }

    /// Applies core's migrations and those of every plugin the configuration starts, in
    /// start order; see [`crate::storage::migrate`]. `plexichat serve` calls it before
    /// [`Runtime::start`] and stops on an error; `start` calls it itself if nobody did.
    pub async fn migrate(&self) -> Result<MigrateReport, MigrateError> {
        let plugins = self.to_run(&self.lock_control().await.wishes);
        self.migrate_plugins(&plugins).await
    }

    /// Where every migration of core and of each plugin the configuration starts stands;
    /// changes nothing (see [`crate::storage::migrate::status`]).
    pub async fn migration_status(
        &self,
    ) -> Result<Vec<crate::storage::migrate::PluginMigrations>, MigrateError> {
        let plugins = self.to_run(&self.lock_control().await.wishes);
        migrate::status(self.inner.storage.database(), &plugins).await
    }

    /// The plugins that `wishes` start, in start order.
    pub(crate) fn to_run(
        &self,
        wishes: &crate::runtime::state::Wishes,
    ) -> Vec<&'static PluginDescriptor> {
        let resolved = crate::runtime::state::resolve(self.registry(), wishes);
        self.registry()
            .plugins()
            .iter()
            .filter(|plugin| {
                matches!(
                    resolved[plugin.name].target,
                    crate::runtime::state::Target::Run
                )
            })
            .copied()
            .collect()
    }

    pub(crate) async fn migrate_plugins(
        &self,
        plugins: &[&'static PluginDescriptor],
    ) -> Result<MigrateReport, MigrateError> {
        let report = migrate::migrate(self.inner.storage.database(), plugins).await?;
        let mut migrated = self.migrated_set();
        migrated.insert(migrate::CORE);
        migrated.extend(plugins.iter().map(|plugin| plugin.name));
        Ok(report)
    }

    /// Whether core's migrations ran in this runtime.
    pub(crate) fn core_migrated(&self) -> bool {
        self.migrated_set().contains(migrate::CORE)
    }

    /// Applies `plugin`'s migrations (and core's) unless they are known to be applied: what a
    /// plugin enabled at run time needs before its `init`.
    pub(crate) async fn migrate_plugin(
        &self,
        plugin: &'static PluginDescriptor,
    ) -> Result<(), MigrateError> {
        if self.migrated_set().contains(plugin.name) {
            return Ok(());
        }
        self.migrate_plugins(&[plugin]).await.map(drop)
    }

    fn migrated_set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<&'static str>> {
        self.inner
            .migrated
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("plugins", &self.inner.registry.plugins().len())
            .finish_non_exhaustive()
    }
}

/// Turns a panic payload into text; panics carry a `&str` or a `String` unless someone
/// panicked with another type on purpose.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        format!("panicked: {message}")
    } else if let Some(message) = payload.downcast_ref::<String>() {
        format!("panicked: {message}")
    } else {
        "panicked with a non-string payload".to_string()
    }
}
