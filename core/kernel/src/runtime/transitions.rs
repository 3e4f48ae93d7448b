//! The one place where plugin states change. Start, shutdown, the admin API's enable and
//! disable, and reloads all take the runtime's control lock (so they are serialised) and
//! call `converge`, which makes the running plugins match the resolved wishes:
//!
//! 1. every running plugin that should not run is stopped, dependents first: its routes
//!    answer 503 at once (`stopping`), its `stop` hook runs, its tasks are cancelled and
//!    awaited, each bounded by the phase timeout;
//! 2. every plugin that should run but does not is started, dependencies first: `starting`
//!    (routes still 503), then `init`; only when `init` succeeded does it serve. A failure
//!    marks it `failed`, cancels any task its `init` spawned, and its dependents resolve to
//!    `disabled_because_dependency` before their turn comes.
//!
//! Before `start` and after `shutdown`, nothing runs: wishes are still recorded and states
//! show where each plugin would be, but no hook is called.
//!
//! Hooks and handlers run while the control lock is held; a hook that tries to enable or
//! disable a plugin itself would wait for itself, so they must not.

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;

use super::{Runtime, TaskStatus, panic_message};
use crate::abi::hooks::HookFuture;
use crate::abi::plugin::PluginDescriptor;
use crate::config::Config;
use crate::registry::Registry;
use crate::runtime::Host;
use crate::runtime::state::{PluginStatus, Target, Wishes, resolve};

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Constructed; `start` has not run.
    Idle,
    /// `start` ran; plugins run according to the wishes.
    Started,
    /// `shutdown` ran; nothing runs again.
    ShutDown,
}

/// What the control lock guards.
#[derive(Debug)]
pub(super) struct Control {
    phase: Phase,
    pub(super) wishes: Wishes,
    /// Plugins whose `init` succeeded and whose `stop` has not run.
    live: BTreeSet<&'static str>,
}

impl Control {
    pub(super) fn new(registry: &Registry, config: &Config) -> Control {
        Control {
            phase: Phase::Idle,
            wishes: Wishes::from_config(registry, config),
            live: BTreeSet::new(),
        }
    }
}

/// A plugin whose `init` failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitFailure {
    /// The plugin.
    pub plugin: &'static str,
    /// Its error, panic message, or timeout.
    pub error: String,
}

/// What shutdown did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ShutdownReport {
    /// The plugins that were running and got their `stop`, in the order they stopped.
    pub stopped: Vec<&'static str>,
    /// Background tasks that did not end within the phase timeout.
    pub stuck_tasks: Vec<TaskStatus>,
}

/// Why a state change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// No such plugin is compiled in.
    #[error("unknown plugin `{0}`")]
    UnknownPlugin(String),
    /// The server has shut down; nothing starts again.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// The plugins whose state a transition changed, with their new state, in start order.
pub type Changes = Vec<(&'static str, PluginStatus)>;

impl Runtime {
    /// Starts every plugin the configuration wants running, in start order, each `init`
    /// within the phase timeout. A failure (error, panic or timeout) marks that plugin
    /// failed and disables its dependents, whose `init` then does not run; every other
    /// plugin still starts. Calling it again does nothing.
    pub async fn start(&self) -> Vec<InitFailure> {
        let mut control = self.inner.control.lock().await;
        if control.phase != Phase::Idle {
            return Vec::new();
        }
        // Core's tables and every starting plugin's before any `init`; `serve` did it already
        // and stopped on an error. Here an error fails every plugin that would have started.
        let mut failures = Vec::new();
        if !self.core_migrated() {
            let plugins = self.to_run(&control.wishes);
            if let Err(error) = self.migrate_plugins(&plugins).await {
                let error = format!("the database could not be migrated: {error}");
                tracing::error!(%error, "not starting any plugin");
                for plugin in plugins {
                    self.record_failure(&mut control, plugin.name, &error);
                    failures.push(InitFailure {
                        plugin: plugin.name,
                        error: error.clone(),
                    });
                }
            }
        }
        if self.core_migrated() {
            self.sweep_expired_keys();
        }
        self.supervise_liveness();
        control.phase = Phase::Started;
        let (_, mut more) = self.converge(&mut control).await;
        failures.append(&mut more);
        self.inner.readiness.mark_started();
        failures
    }

    /// Stops every running plugin in reverse start order (dependents first): its `stop`
    /// hook, then its tasks, each within the phase timeout; then cancels anything left.
    /// Nothing starts afterwards.
    pub async fn shutdown(&self) -> ShutdownReport {
        let mut control = self.inner.control.lock().await;
        let timeout = self.phase_timeout();
        let mut report = ShutdownReport::default();
        if control.phase == Phase::Started {
            for plugin in self.registry().plugins().iter().rev() {
                if control.live.contains(plugin.name) {
                    let stuck = self
                        .stop_plugin(plugin, PluginStatus::Stopped, timeout)
                        .await;
                    control.live.remove(plugin.name);
                    report.stopped.push(plugin.name);
                    report.stuck_tasks.extend(stuck);
                }
            }
        }
        control.phase = Phase::ShutDown;
        report
            .stuck_tasks
            .extend(self.tasks().shut_down(timeout).await);
        // A stuck task may hold a connection for ever, so the wait is bounded like every
        // other phase.
        let _ = tokio::time::timeout(timeout, self.storage().database().shut_down()).await;
        report
    }

    /// Turns `plugin` on or off at run time: an admin decision that outlives reloads (see
    /// [`Wishes::apply_file`]). Its dependents follow; a plugin that starts runs its `init`
    /// first, one that stops gets its `stop`. Enabling a failed plugin retries its `init`.
    /// Returns every plugin whose state changed.
    ///
    /// The change runs on a task of its own: if the caller goes away (a request that times
    /// out, a client that disconnects), the change still runs to the end, so no plugin is
    /// left half-stopped with its tasks running.
    pub async fn set_enabled(&self, plugin: &str, on: bool) -> Result<Changes, TransitionError> {
        let Some(descriptor) = self.registry().plugin(plugin) else {
            return Err(TransitionError::UnknownPlugin(plugin.to_string()));
        };
        let runtime = self.clone();
        to_the_end(async move { runtime.switch(descriptor.name, on).await }).await
    }

    async fn switch(&self, plugin: &'static str, on: bool) -> Result<Changes, TransitionError> {
        let mut control = self.inner.control.lock().await;
        if control.phase == Phase::ShutDown {
            return Err(TransitionError::ShuttingDown);
        }
        control.wishes.set(plugin, on);
        if let Some(entry) = self.entry(plugin) {
            *entry
                .failure
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        }
        let (changes, _) = self.converge(&mut control).await;
        for (name, status) in &changes {
            tracing::info!(plugin = name, state = status.name(), "plugin state changed");
        }
        Ok(changes)
    }

    /// Stops `plugin` and its running dependents (dependents first), then starts them again
    /// (`init`, tasks), as repeated liveness failures ask. The wishes do not change; a
    /// failing `init` marks the plugin failed like at start.
    pub(super) async fn restart_plugin(&self, plugin: &'static str) {
        let runtime = self.clone();
        to_the_end(async move {
            let mut control = runtime.inner.control.lock().await;
            if control.phase != Phase::Started {
                return;
            }
            let affected = runtime.with_dependents(plugin);
            let timeout = runtime.phase_timeout();
            for descriptor in runtime.registry().plugins().iter().rev() {
                if affected.contains(descriptor.name) && control.live.contains(descriptor.name) {
                    runtime
                        .stop_plugin(descriptor, PluginStatus::Stopped, timeout)
                        .await;
                    control.live.remove(descriptor.name);
                }
            }
            let (changes, _) = runtime.converge(&mut control).await;
            for (name, status) in &changes {
                tracing::info!(plugin = name, state = status.name(), "plugin state changed");
            }
            tracing::info!(plugin, restarted = ?affected, "plugin restarted");
        })
        .await;
    }

    /// Marks `plugin` failed for `reason` and stops it, its dependents following, as when
    /// its `init` fails; enabling it again (the admin API) retries.
    pub(super) async fn fail_plugin(&self, plugin: &'static str, reason: String) {
        let runtime = self.clone();
        to_the_end(async move {
            let mut control = runtime.inner.control.lock().await;
            if control.phase != Phase::Started {
                return;
            }
            runtime.record_failure(&mut control, plugin, &reason);
            let (changes, _) = runtime.converge(&mut control).await;
            for (name, status) in &changes {
                tracing::info!(plugin = name, state = status.name(), "plugin state changed");
            }
        })
        .await;
    }

    /// `plugin` and every plugin that depends on it, directly or not.
    fn with_dependents(&self, plugin: &'static str) -> BTreeSet<&'static str> {
        let mut affected = BTreeSet::from([plugin]);
        // Start order puts dependencies first, so one pass sees every chain.
        for descriptor in self.registry().plugins() {
            if descriptor
                .dependencies
                .iter()
                .any(|dependency| affected.contains(dependency))
            {
                affected.insert(descriptor.name);
            }
        }
        affected
    }

    /// Takes a reloaded configuration's `disabled`/`enabled` wishes and converges; the
    /// caller holds the control lock.
    pub(super) async fn apply_file_wishes(
        &self,
        control: &mut Control,
        file_off: BTreeSet<String>,
    ) -> Changes {
        control.wishes.apply_file(file_off);
        self.converge(control).await.0
    }

    pub(super) async fn lock_control(&self) -> tokio::sync::MutexGuard<'_, Control> {
        self.inner.control.lock().await
    }

    /// Makes the running plugins match the wishes; see the module documentation. Callers run
    /// it through [`to_the_end`], so that it is never dropped halfway.
    async fn converge(&self, control: &mut Control) -> (Changes, Vec<InitFailure>) {
        let timeout = self.phase_timeout();
        let before: Vec<PluginStatus> = self.statuses();
        let mut failures = Vec::new();
        let mut resolved = resolve(self.registry(), &control.wishes);
        if control.phase == Phase::Started {
            for plugin in self.registry().plugins().iter().rev() {
                let target = resolved[plugin.name].target;
                if let Target::Down(status) = target
                    && control.live.contains(plugin.name)
                {
                    self.stop_plugin(plugin, status, timeout).await;
                    control.live.remove(plugin.name);
                }
            }
        }
        for plugin in self.registry().plugins() {
            let slot = &self.inner.by_name[plugin.name].slot;
            let wanted = resolved[plugin.name].wanted;
            match resolved[plugin.name].target {
                Target::Down(status) => {
                    slot.set(status, wanted);
                }
                Target::Run if control.phase != Phase::Started => {
                    slot.set(PluginStatus::Stopped, wanted);
                }
                Target::Run if control.live.contains(plugin.name) => {
                    slot.set(PluginStatus::Running, wanted);
                }
                Target::Run => match self.start_plugin(plugin, timeout).await {
                    Ok(()) => {
                        control.live.insert(plugin.name);
                        slot.set(PluginStatus::Running, wanted);
                    }
                    Err(error) => {
                        tracing::error!(plugin = plugin.name, %error, "plugin failed to start");
                        self.record_failure(control, plugin.name, &error);
                        slot.set(PluginStatus::Failed, wanted);
                        failures.push(InitFailure {
                            plugin: plugin.name,
                            error,
                        });
                        // Its dependents come later in start order and now resolve to down.
                        resolved = resolve(self.registry(), &control.wishes);
                    }
                },
            }
        }
        let changes = self
            .registry()
            .plugins()
            .iter()
            .zip(before)
            .filter_map(|(plugin, before)| {
                let now = self.inner.by_name[plugin.name].slot.status();
                (now != before).then_some((plugin.name, now))
            })
            .collect();
        (changes, failures)
    }

    /// Removes expired key-value entries every minute (they are invisible from the moment
    /// they expire; this reclaims the space), as a core task stopped at shutdown.
    fn sweep_expired_keys(&self) {
        self.tasks().spawn(
            crate::storage::migrate::CORE,
            "kv_expiry",
            self.clone(),
            |token, runtime| async move {
                // The first round waits too: a write transaction while plugins start would
                // compete with their `init` for the database and delay readiness.
                let mut wait = KV_FIRST_SWEEP;
                loop {
                    tokio::select! {
                        () = token.cancelled() => return Ok(()),
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = KV_SWEEP_INTERVAL;
                    let removed =
                        crate::storage::kv::remove_expired(runtime.storage().database()).await?;
                    if removed > 0 {
                        tracing::debug!(removed, "removed expired key-value entries");
                    }
                }
            },
        );
    }

    /// Remembers why `plugin` failed, for the admin view and so that it resolves to failed.
    fn record_failure(&self, control: &mut Control, plugin: &'static str, error: &str) {
        *self.inner.by_name[plugin]
            .failure
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error.to_string());
        control
            .wishes
            .failed
            .insert(plugin.to_string(), error.to_string());
    }

    fn statuses(&self) -> Vec<PluginStatus> {
        self.registry()
            .plugins()
            .iter()
            .map(|plugin| self.inner.by_name[plugin.name].slot.status())
            .collect()
    }

    /// `starting` → `init`; on failure, cancels whatever the failed `init` spawned.
    async fn start_plugin(
        &self,
        plugin: &'static PluginDescriptor,
        timeout: Duration,
    ) -> Result<(), String> {
        let slot = &self.inner.by_name[plugin.name].slot;
        slot.set(PluginStatus::Starting, slot.is_wanted());
        self.tasks().open(plugin.name);
        // A plugin enabled at run time may have migrations the start did not apply.
        self.migrate_plugin(plugin)
            .await
            .map_err(|error| format!("its migrations could not be applied: {error}"))?;
        let Some(hooks) = plugin.lifecycle else {
            return Ok(());
        };
        let outcome = self
            .run_hook(plugin, "init", timeout, hooks.init)
            .await
            .and_then(|result| result);
        if outcome.is_err() {
            self.tasks().stop(plugin.name, timeout).await;
        }
        outcome
    }

    /// `stopping` → `stop` → tasks cancelled and awaited → `status`. Returns the tasks that
    /// did not end in time.
    async fn stop_plugin(
        &self,
        plugin: &'static PluginDescriptor,
        status: PluginStatus,
        timeout: Duration,
    ) -> Vec<TaskStatus> {
        let slot = &self.inner.by_name[plugin.name].slot;
        slot.set(PluginStatus::Stopping, slot.is_wanted());
        // Nothing new gets in now; what is under way finishes before `stop` runs.
        if !slot.wait_idle(timeout).await {
            tracing::warn!(
                plugin = plugin.name,
                "requests or event handlers still running after the phase timeout; stopping anyway"
            );
        }
        if let Some(hooks) = plugin.lifecycle {
            match self.run_hook(plugin, "stop", timeout, hooks.stop).await {
                Ok(()) => tracing::debug!(plugin = plugin.name, "stopped"),
                Err(error) => tracing::error!(plugin = plugin.name, %error, "stop failed"),
            }
        }
        let stuck = self.tasks().stop(plugin.name, timeout).await;
        for task in &stuck {
            tracing::error!(
                plugin = task.plugin,
                task = task.name,
                "background task did not stop in time"
            );
        }
        slot.set(status, slot.is_wanted());
        stuck
    }

    /// Runs one of `plugin`'s hooks within `timeout`; a panic or a timeout becomes an error
    /// naming the hook, so callers treat every way a hook can go wrong the same.
    pub(super) async fn run_hook<T>(
        &self,
        plugin: &'static PluginDescriptor,
        what: &str,
        timeout: Duration,
        hook: for<'a> fn(&'a (dyn Any + Send + Sync), &'a Host) -> HookFuture<'a, T>,
    ) -> Result<T, String> {
        let entry = &self.inner.by_name[plugin.name];
        let call = AssertUnwindSafe(hook(entry.instance.as_ref(), Host::of(self))).catch_unwind();
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(panic_message(panic.as_ref())),
            Err(_) => Err(format!(
                "{what} did not finish within {}",
                humantime::format_duration(timeout)
            )),
        }
    }
}

/// How often expired key-value entries are removed.
const KV_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// When the first removal runs after start.
const KV_FIRST_SWEEP: Duration = Duration::from_secs(5);

/// Runs `work` on a task of its own and waits for it: dropping the returned future (a
/// request timeout) does not stop `work` halfway through a transition.
pub(super) async fn to_the_end<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    match tokio::spawn(work).await {
        Ok(value) => value,
        Err(error) => match error.try_into_panic() {
            // Transitions contain every hook's panic; one of their own is a bug to surface.
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled only when the async runtime itself goes away, and with it the caller.
            Err(_) => std::future::pending().await,
        },
    }
}
