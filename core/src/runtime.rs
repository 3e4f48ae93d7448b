//! The running program: one instance of every plugin and the typed event bus that dispatches
//! to their handlers.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use serde::Serialize;

use std::sync::RwLock;

use std::time::Duration;

use crate::config::{Config, ConfigErrors};
use crate::event::{ConfigChanged, ConfigChanging, Event, EventHandlerDescriptor, HandlerFn};
use crate::lifecycle::{HookFuture, PluginContext, TaskStatus, Tasks};
use crate::plugin::PluginDescriptor;
use crate::plugin::{Configurable, Plugin};
use crate::registry::Registry;
use crate::state::{PluginStatus, Slot, States};

/// A handle to the running plugins; cheap to clone, shared by the server and every handler.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    instances: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    /// Handlers per event type, already in dispatch order, so that publishing is one hash
    /// lookup and a walk over a slice.
    handlers: HashMap<TypeId, Box<[Subscriber]>>,
    /// Per-plugin route counters, shared with the panic handler of that plugin's routes.
    routes: HashMap<&'static str, Arc<RouteCounters>>,
    /// The configuration the runtime was started with.
    config: RwLock<Config>,
    /// Which plugins run.
    states: States,
    /// Where a reload reads the configuration from.
    source: Option<ConfigSource>,
    /// One reload at a time, so two reloads cannot interleave their veto and swap.
    reloading: tokio::sync::Mutex<()>,
    /// Supervised background tasks.
    tasks: Tasks,
    /// Set once `start` has run every `init`; `/ready` is 503 before.
    started: std::sync::atomic::AtomicBool,
}

/// A plugin whose `init` failed at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitFailure {
    /// The plugin.
    pub plugin: &'static str,
    /// Its error, panic message, or timeout.
    pub error: String,
}

/// Produces a fresh, validated configuration for a reload (reads the file and environment).
pub type ConfigSource = Arc<dyn Fn(&Registry) -> Result<Config, ConfigErrors> + Send + Sync>;

/// What a successful reload changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Plugins whose section changed.
    pub plugins: Vec<&'static str>,
    /// Plugins whose state changed (the `disabled` list), with their new state.
    pub states: Vec<(&'static str, PluginStatus)>,
    /// Settings that changed but take effect only after a restart.
    pub restart_required: Vec<&'static str>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The server was started without a configuration source.
    #[error("this server was started without a configuration source to reload")]
    NoSource,
    /// The new configuration is invalid.
    #[error("{0}")]
    Invalid(ConfigErrors),
    /// A plugin's `config.changing` handler refused it.
    #[error("a plugin refused the new configuration")]
    Vetoed(Vec<HandlerFailure>),
}

/// Counters of one plugin's routes.
#[derive(Debug, Default)]
pub struct RouteCounters {
    /// Requests whose handler panicked (answered 500).
    pub panics: AtomicU64,
}

/// A snapshot of [`RouteCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RouteStats {
    /// Requests whose handler panicked (answered 500).
    pub panics: u64,
}

struct Subscriber {
    plugin: &'static str,
    /// The plugin's state; a handler of a plugin that is not running is skipped.
    slot: Arc<Slot>,
    descriptor: &'static EventHandlerDescriptor,
    calls: AtomicU64,
    failures: AtomicU64,
}

/// The outcome of one publish.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// Handlers that ran to completion without error.
    pub succeeded: usize,
    /// Handlers that returned an error or panicked; the others still ran.
    pub failures: Vec<HandlerFailure>,
}

/// One handler that failed during a publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerFailure {
    /// The handler's plugin.
    pub plugin: &'static str,
    /// The handler function.
    pub handler: &'static str,
    /// The error it returned, or its panic message.
    pub error: String,
}

/// Call counters of one event handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerStats {
    /// Event name.
    pub event: &'static str,
    /// Handler function.
    pub handler: &'static str,
    /// Times it was called.
    pub calls: u64,
    /// Times it failed.
    pub failures: u64,
}

impl Runtime {
    /// Creates every plugin's state with the default configuration.
    pub fn new(registry: Registry) -> Runtime {
        let config = Config::defaults(&registry);
        Runtime::with_config(registry, config)
    }

    /// Creates every plugin's state, in start order, with a validated configuration.
    pub fn with_config(registry: Registry, config: Config) -> Runtime {
        Runtime::with_config_source(registry, config, None)
    }

    /// Like [`Runtime::with_config`], with `source` for [`Runtime::reload`].
    pub fn with_config_source(
        registry: Registry,
        config: Config,
        source: Option<ConfigSource>,
    ) -> Runtime {
        let states = States::new(&registry, &config.disabled);
        let instances = registry
            .plugins()
            .iter()
            .map(|plugin| ((plugin.type_id)(), (plugin.construct)()))
            .collect();
        let mut handlers: HashMap<TypeId, Vec<Subscriber>> = HashMap::new();
        // The registry already sorted handlers into dispatch order; grouping keeps it.
        for handler in registry.handlers() {
            handlers
                .entry((handler.descriptor.event_type)())
                .or_default()
                .push(Subscriber {
                    plugin: handler.plugin,
                    slot: states
                        .slot(handler.plugin)
                        .expect("every plugin has a state"),
                    descriptor: handler.descriptor,
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                });
        }
        let handlers = handlers
            .into_iter()
            .map(|(event, subscribers)| (event, subscribers.into_boxed_slice()))
            .collect();
        let routes = registry
            .plugins()
            .iter()
            .map(|plugin| (plugin.name, Arc::default()))
            .collect();
        Runtime {
            inner: Arc::new(Inner {
                registry,
                instances,
                handlers,
                routes,
                config: RwLock::new(config),
                states,
                source,
                reloading: tokio::sync::Mutex::new(()),
                tasks: Tasks::default(),
                started: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The checked registry this runtime was built from.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The running instance of plugin `P`, if it is compiled in.
    pub fn plugin<P: Plugin>(&self) -> Option<Arc<P>> {
        self.inner
            .instances
            .get(&TypeId::of::<P>())
            .cloned()
            .and_then(|instance| instance.downcast::<P>().ok())
    }

    /// Borrows the running instance of plugin `P`; used by event handler shims.
    pub fn plugin_ref<P: Plugin>(&self) -> Option<&P> {
        self.inner
            .instances
            .get(&TypeId::of::<P>())
            .and_then(|instance| instance.downcast_ref::<P>())
    }

    /// Delivers `event` to every handler of its type, highest priority first.
    ///
    /// A handler that returns an error or panics is logged with its plugin's name, counted,
    /// and reported; the handlers after it still run. Sync handlers run inline; async
    /// handlers are awaited one after another, so priority order is also completion order.
    pub async fn publish<E: Event>(&self, event: &E) -> DispatchReport {
        let mut report = DispatchReport::default();
        let Some(subscribers) = self.inner.handlers.get(&TypeId::of::<E>()) else {
            return report;
        };
        let erased: &(dyn Any + Send + Sync) = event;
        for subscriber in subscribers.iter() {
            if !subscriber.slot.is_running() {
                continue;
            }
            subscriber.calls.fetch_add(1, Ordering::Relaxed);
            let outcome = match subscriber.descriptor.call {
                HandlerFn::Sync(call) => {
                    std::panic::catch_unwind(AssertUnwindSafe(|| call(self, erased)))
                        .unwrap_or_else(|panic| Err(panic_message(panic.as_ref())))
                }
                HandlerFn::Async(call) => AssertUnwindSafe(call(self, erased))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(panic_message(panic.as_ref()))),
            };
            match outcome {
                Ok(()) => report.succeeded += 1,
                Err(error) => {
                    subscriber.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        plugin = subscriber.plugin,
                        handler = subscriber.descriptor.handler,
                        event = E::NAME,
                        %error,
                        "event handler failed"
                    );
                    report.failures.push(HandlerFailure {
                        plugin: subscriber.plugin,
                        handler: subscriber.descriptor.handler,
                        error,
                    });
                }
            }
        }
        report
    }

    /// The current typed configuration of plugin `P`.
    pub fn config<P: Configurable>(&self) -> Option<Arc<P::Config>> {
        self.inner
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .plugin_config(P::NAME)
            .and_then(|config| config.downcast::<P::Config>().ok())
    }

    /// A copy of the whole current configuration.
    pub fn current_config(&self) -> Config {
        self.inner
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Runs every running plugin's `init` in start order, each within `timeout`. A failure
    /// (error, panic or timeout) marks that plugin failed and disables its dependents, whose
    /// `init` then does not run; every other plugin still starts.
    pub async fn start(&self, timeout: Duration) -> Vec<InitFailure> {
        let mut failures = Vec::new();
        for plugin in self.registry().plugins() {
            let Some(hooks) = plugin.lifecycle else {
                continue;
            };
            if !self.slot(plugin.name).is_some_and(|slot| slot.is_running()) {
                continue;
            }
            let Err(error) = self
                .run_hook(plugin, "init", timeout, hooks.init)
                .await
                .and_then(|r| r)
            else {
                continue;
            };
            tracing::error!(plugin = plugin.name, %error, "plugin failed to start");
            for (name, status) in
                self.inner
                    .states
                    .fail(self.registry(), plugin.name, error.clone())
            {
                if name != plugin.name {
                    tracing::warn!(plugin = name, state = status.name(), "plugin not started");
                }
            }
            failures.push(InitFailure {
                plugin: plugin.name,
                error,
            });
        }
        self.inner.started.store(true, Ordering::Release);
        failures
    }

    /// Runs `stop` of every running plugin in reverse start order (dependents first), each
    /// within `timeout`, then cancels background tasks and waits for them up to `timeout`.
    /// Returns the tasks that did not stop in time.
    pub async fn stop(&self, timeout: Duration) -> Vec<TaskStatus> {
        for plugin in self.registry().plugins().iter().rev() {
            let Some(hooks) = plugin.lifecycle else {
                continue;
            };
            if !self.slot(plugin.name).is_some_and(|slot| slot.is_running()) {
                continue;
            }
            match self.run_hook(plugin, "stop", timeout, hooks.stop).await {
                Ok(()) => tracing::debug!(plugin = plugin.name, "stopped"),
                Err(error) => tracing::error!(plugin = plugin.name, %error, "stop failed"),
            }
        }
        let stuck = self.inner.tasks.shut_down(timeout).await;
        for task in &stuck {
            tracing::error!(
                plugin = task.plugin,
                task = task.name,
                "background task did not stop in time"
            );
        }
        stuck
    }

    /// Why the server is not ready, per plugin; empty when it is. A plugin counts when the
    /// operator wants it running (neither it nor a dependency is disabled): it must be
    /// running and its `ready` hook must pass.
    pub async fn readiness(&self) -> Vec<(&'static str, String)> {
        if !self.inner.started.load(Ordering::Acquire) {
            return vec![("*", "starting: plugins are still initialising".to_string())];
        }
        let mut reasons = Vec::new();
        for plugin in self.registry().plugins() {
            let Some(slot) = self.slot(plugin.name) else {
                continue;
            };
            if !slot.is_wanted() {
                continue;
            }
            if !slot.is_running() {
                let reason = slot.status().reason(plugin.name).unwrap_or_default();
                reasons.push((plugin.name, reason));
                continue;
            }
            if let Some(hooks) = plugin.lifecycle
                && let Err(problem) = self
                    .run_hook(plugin, "readiness check", READY_TIMEOUT, hooks.ready)
                    .await
                    .and_then(|r| r)
            {
                reasons.push((
                    plugin.name,
                    format!("plugin `{}` is not ready: {problem}", plugin.name),
                ));
            }
        }
        reasons
    }

    /// Runs one of `plugin`'s hooks within `timeout`; a panic or a timeout becomes an error
    /// naming the hook, so callers treat every way a hook can go wrong the same.
    async fn run_hook<T>(
        &self,
        plugin: &PluginDescriptor,
        what: &str,
        timeout: Duration,
        hook: for<'a> fn(&'a (dyn Any + Send + Sync), &'a PluginContext) -> HookFuture<'a, T>,
    ) -> Result<T, String> {
        let instance = &self.inner.instances[&(plugin.type_id)()];
        let context = PluginContext::new(plugin.name, self.clone());
        let call = AssertUnwindSafe(hook(instance.as_ref(), &context)).catch_unwind();
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(panic_message(panic.as_ref())),
            Err(_) => Err(format!(
                "{what} did not finish within {}",
                humantime::format_duration(timeout)
            )),
        }
    }

    /// The background tasks of `plugin`.
    pub fn task_status(&self, plugin: &str) -> Vec<TaskStatus> {
        self.inner.tasks.of(plugin)
    }

    pub(crate) fn tasks(&self) -> &Tasks {
        &self.inner.tasks
    }

    /// Reads the configuration again from the source and applies it; see
    /// [`Runtime::apply_config`].
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let source = self.inner.source.clone().ok_or(ReloadError::NoSource)?;
        let config = source(self.registry()).map_err(ReloadError::Invalid)?;
        self.apply_config(config).await
    }

    /// Makes a validated configuration current, or changes nothing.
    ///
    /// Plugins first see it in `config.changing`; if any handler fails, the previous
    /// configuration stays in effect everywhere. Otherwise the configuration is swapped in
    /// one step, the `disabled` list is applied, and `config.changed` is published.
    pub async fn apply_config(&self, config: Config) -> Result<ReloadReport, ReloadError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let changing = ConfigChanging {
            config: Arc::new(config),
        };
        let report = self.publish(&changing).await;
        if !report.failures.is_empty() {
            return Err(ReloadError::Vetoed(report.failures));
        }
        let config = Arc::unwrap_or_clone(changing.config);
        let (plugins, restart_required) = {
            let mut current = self
                .inner
                .config
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let plugins: Vec<&'static str> = self
                .registry()
                .plugins()
                .iter()
                .map(|plugin| plugin.name)
                .filter(|name| current.plugin_values.get(name) != config.plugin_values.get(name))
                .collect();
            let restart_required = current.restart_required(&config);
            *current = config;
            (plugins, restart_required)
        };
        let disabled = self.current_config().disabled;
        let states = self.inner.states.replace(self.registry(), &disabled);
        tracing::info!(?plugins, ?restart_required, "configuration reloaded");
        self.publish(&ConfigChanged {
            plugins: plugins.clone(),
        })
        .await;
        Ok(ReloadReport {
            plugins,
            states,
            restart_required,
        })
    }

    /// The state of `plugin`, or `None` if no such plugin is compiled in.
    pub fn status(&self, plugin: &str) -> Option<PluginStatus> {
        self.inner.states.slot(plugin).map(|slot| slot.status())
    }

    /// Names of the running plugins, in start order.
    pub fn running(&self) -> Vec<&'static str> {
        self.registry()
            .plugins()
            .iter()
            .map(|plugin| plugin.name)
            .filter(|name| self.slot(name).is_some_and(|slot| slot.is_running()))
            .collect()
    }

    /// Turns `plugin` on or off at run time; its dependents follow. Returns every plugin whose
    /// state changed, or `None` if no such plugin is compiled in.
    pub fn set_enabled(
        &self,
        plugin: &str,
        enabled: bool,
    ) -> Option<Vec<(&'static str, PluginStatus)>> {
        self.registry().plugin(plugin)?;
        let changed = self.inner.states.set(self.registry(), plugin, enabled);
        for (name, status) in &changed {
            tracing::info!(plugin = name, state = status.name(), "plugin state changed");
        }
        Some(changed)
    }

    pub(crate) fn slot(&self, plugin: &str) -> Option<Arc<Slot>> {
        self.inner.states.slot(plugin)
    }

    /// The route counters of `plugin`, for the server to update.
    pub(crate) fn route_counters(&self, plugin: &str) -> Option<Arc<RouteCounters>> {
        self.inner.routes.get(plugin).cloned()
    }

    /// A snapshot of `plugin`'s route counters (zero for an unknown plugin).
    pub fn route_stats(&self, plugin: &str) -> RouteStats {
        RouteStats {
            panics: self
                .inner
                .routes
                .get(plugin)
                .map_or(0, |counters| counters.panics.load(Ordering::Relaxed)),
        }
    }

    /// Counters of every handler of `plugin`.
    pub fn handler_stats(&self, plugin: &str) -> Vec<HandlerStats> {
        let mut stats: Vec<HandlerStats> = self
            .inner
            .handlers
            .values()
            .flat_map(|subscribers| subscribers.iter())
            .filter(|subscriber| subscriber.plugin == plugin)
            .map(|subscriber| HandlerStats {
                event: subscriber.descriptor.event,
                handler: subscriber.descriptor.handler,
                calls: subscriber.calls.load(Ordering::Relaxed),
                failures: subscriber.failures.load(Ordering::Relaxed),
            })
            .collect();
        stats.sort_by_key(|stat| (stat.event, stat.handler));
        stats
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("plugins", &self.inner.registry.plugins().len())
            .finish_non_exhaustive()
    }
}

/// How long one plugin's readiness check may take before it counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Turns a panic payload into text; panics carry a `&str` or a `String` unless someone
/// panicked with another type on purpose.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        format!("panicked: {message}")
    } else if let Some(message) = payload.downcast_ref::<String>() {
        format!("panicked: {message}")
    } else {
        "panicked with a non-string payload".to_string()
    }
}
