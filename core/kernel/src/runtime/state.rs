//! Which plugins should run and which do: the operator's wishes (the configuration's
//! `disabled` and `enabled` lists, `auto_start`, the admin API) resolved against dependencies
//! and init failures into one target per plugin, and the per-plugin slot that the request and
//! publish paths read.
//!
//! Resolution is pure ([`resolve`]); making the running program match it (running `init`
//! and `stop`, starting and cancelling tasks) is `runtime::transitions`, the one place that
//! changes a slot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::registry::Registry;

/// A plugin's state, as `GET /api/v1/plugins` and `plexichat plugins list` show it.
///
/// Serialised as `{"state": "<name>"}`, plus `dependency` for
/// `disabled_because_dependency`. Why a plugin failed is not part of it: error texts are for
/// the log and the admin view only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PluginStatus {
    /// Serving routes and receiving events.
    Running,
    /// Its `init` hook is running; routes answer 503 until it succeeds.
    Starting,
    /// Its `stop` hook is running and its tasks are being cancelled.
    Stopping,
    /// Wanted, but not started: the server has not started yet, or has shut down.
    Stopped,
    /// Kept from running by the operator (configuration, `auto_start = false`, admin API).
    Disabled,
    /// Kept from running because a plugin it depends on is not running.
    DisabledBecauseDependency {
        /// The first dependency (in start order) that is not running.
        dependency: &'static str,
    },
    /// Its `init` hook failed, panicked or timed out; it stays down until the operator
    /// enables it again (which retries `init`) or the server restarts.
    Failed,
}

impl PluginStatus {
    /// Every state's name, as [`PluginStatus::name`] gives them.
    pub const NAMES: [&'static str; 7] = [
        "running",
        "starting",
        "stopping",
        "stopped",
        "disabled",
        "disabled_because_dependency",
        "failed",
    ];

    /// The state's name, e.g. `disabled_because_dependency`.
    pub fn name(&self) -> &'static str {
        match self {
            PluginStatus::Running => "running",
            PluginStatus::Starting => "starting",
            PluginStatus::Stopping => "stopping",
            PluginStatus::Stopped => "stopped",
            PluginStatus::Disabled => "disabled",
            PluginStatus::DisabledBecauseDependency { .. } => "disabled_because_dependency",
            PluginStatus::Failed => "failed",
        }
    }

    /// Why the plugin does not serve, for public error bodies; `None` when it runs. Names
    /// plugins and states only: the error of a failed plugin is in the log and the admin view.
    pub fn reason(&self, plugin: &str) -> Option<String> {
        Some(match self {
            PluginStatus::Running => return None,
            PluginStatus::Starting => format!("plugin `{plugin}` is starting"),
            PluginStatus::Stopping => format!("plugin `{plugin}` is stopping"),
            PluginStatus::Stopped => format!("plugin `{plugin}` is not running"),
            PluginStatus::Disabled => format!("plugin `{plugin}` is disabled"),
            PluginStatus::DisabledBecauseDependency { dependency } => format!(
                "plugin `{plugin}` is disabled because its dependency `{dependency}` is not running"
            ),
            PluginStatus::Failed => format!("plugin `{plugin}` failed to start"),
        })
    }
}

/// What the operator asked for, before dependencies and failures are taken into account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wishes {
    /// Off according to the configuration file: its `disabled` list, plus plugins declared
    /// with `auto_start = false` that its `enabled` list does not name.
    pub file_off: BTreeSet<String>,
    /// Admin API decisions (`true` = enabled), which outlive reloads; see
    /// [`Wishes::apply_file`] for the rule.
    pub overrides: BTreeMap<String, bool>,
    /// Plugins whose `init` failed, with the error (for the log and the admin view).
    pub failed: BTreeMap<String, String>,
}

impl Wishes {
    /// The wishes a configuration starts with.
    pub fn from_config(registry: &Registry, config: &crate::config::Config) -> Wishes {
        Wishes {
            file_off: file_off(registry, config),
            ..Wishes::default()
        }
    }

    /// Whether the operator wants `plugin` off.
    pub fn is_off(&self, plugin: &str) -> bool {
        self.overrides
            .get(plugin)
            .map_or_else(|| self.file_off.contains(plugin), |on| !on)
    }

    /// Takes a reloaded configuration's wishes.
    ///
    /// The rule: a plugin that the admin API disabled or enabled keeps that decision across
    /// reloads, unless the new file changes what it says about that plugin (it enters or
    /// leaves the effective `disabled` set); then the file wins and the admin decision is
    /// forgotten. Failures are kept: a reload does not retry a failed `init`.
    pub fn apply_file(&mut self, new_file_off: BTreeSet<String>) {
        let changed: BTreeSet<String> = self
            .file_off
            .symmetric_difference(&new_file_off)
            .cloned()
            .collect();
        self.overrides.retain(|plugin, _| !changed.contains(plugin));
        self.file_off = new_file_off;
    }

    /// An admin decision: records it and forgets a failure, so enabling a failed plugin
    /// retries its `init`.
    pub fn set(&mut self, plugin: &str, on: bool) {
        self.overrides.insert(plugin.to_string(), on);
        self.failed.remove(plugin);
    }
}

/// The plugins a configuration keeps off: its `disabled` list, plus `auto_start = false`
/// plugins that its `enabled` list does not name.
pub fn file_off(registry: &Registry, config: &crate::config::Config) -> BTreeSet<String> {
    let mut off = config.disabled.clone();
    for plugin in registry.plugins() {
        if !plugin.auto_start && !config.enabled.contains(plugin.name) {
            off.insert(plugin.name.to_string());
        }
    }
    off
}

/// Where a plugin should be, given the wishes; what [`resolve`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// It should run.
    Run,
    /// It should not, and this is the state to show.
    Down(PluginStatus),
}

/// One plugin's target and whether the operator wants it (it and its dependencies are not
/// turned off); a wanted plugin that does not run makes the server not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// Where it should be.
    pub target: Target,
    /// The operator wants it running.
    pub wanted: bool,
}

/// Resolves every plugin, in start order, so a dependency is decided before its dependents.
pub fn resolve(registry: &Registry, wishes: &Wishes) -> BTreeMap<&'static str, Resolved> {
    let mut resolved: BTreeMap<&'static str, Resolved> = BTreeMap::new();
    for plugin in registry.plugins() {
        let wanted = !wishes.is_off(plugin.name)
            && plugin
                .dependencies
                .iter()
                .all(|dependency| resolved.get(dependency).is_some_and(|r| r.wanted));
        let target = if wishes.is_off(plugin.name) {
            Target::Down(PluginStatus::Disabled)
        } else if wishes.failed.contains_key(plugin.name) {
            Target::Down(PluginStatus::Failed)
        } else if let Some(dependency) = plugin
            .dependencies
            .iter()
            .find(|dependency| resolved.get(*dependency).map(|r| r.target) != Some(Target::Run))
        {
            Target::Down(PluginStatus::DisabledBecauseDependency { dependency })
        } else {
            Target::Run
        };
        resolved.insert(plugin.name, Resolved { target, wanted });
    }
    resolved
}

/// The state each plugin starts in under `config` (before any `init` runs), for listings
/// made without starting a server: `running` means "will be started".
pub fn configured(
    registry: &Registry,
    config: &crate::config::Config,
) -> BTreeMap<&'static str, PluginStatus> {
    resolve(registry, &Wishes::from_config(registry, config))
        .into_iter()
        .map(|(name, resolved)| {
            let status = match resolved.target {
                Target::Run => PluginStatus::Running,
                Target::Down(status) => status,
            };
            (name, status)
        })
        .collect()
}

/// One plugin's live state. Only `runtime::transitions` writes it; the request path reads
/// one atomic and counts itself in flight.
#[derive(Debug)]
pub struct Slot {
    running: AtomicBool,
    wanted: AtomicBool,
    status: Mutex<PluginStatus>,
    /// Requests and event handlers of this plugin under way; `stop` waits for them.
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// A request or handler of a plugin under way; dropping it ends it.
#[derive(Debug)]
pub struct Busy(Arc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// [`Busy`] for code that holds its slot by reference for as long (an event dispatch): no
/// reference count to take and give back.
#[derive(Debug)]
pub(crate) struct BusyHere<'a>(&'a Slot);

impl Drop for BusyHere<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl Slot {
    pub(crate) fn new(status: PluginStatus, wanted: bool) -> Arc<Slot> {
        Arc::new(Slot {
            running: AtomicBool::new(status == PluginStatus::Running),
            wanted: AtomicBool::new(wanted),
            status: Mutex::new(status),
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        })
    }

    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Counts a request or handler in, if the plugin is running. The count goes up before
    /// the state is read, and a stop clears the state before it reads the count, so either
    /// the stop waits for this one or this one sees the stop.
    pub fn enter(self: &Arc<Self>) -> Option<Busy> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let busy = Busy(Arc::clone(self));
        self.running.load(Ordering::SeqCst).then_some(busy)
    }

    /// [`Slot::enter`], for as long as the slot is borrowed.
    pub(crate) fn enter_here(&self) -> Option<BusyHere<'_>> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let busy = BusyHere(self);
        self.running.load(Ordering::SeqCst).then_some(busy)
    }

    /// Ends what [`Slot::enter`] counted in.
    fn leave(&self) {
        // Only a stop waits, and it clears `running` before it reads the count: if this load
        // still sees `running`, the stop's read comes after this decrement and sees it, so
        // the (locking) notification is needed only for a plugin that is stopping.
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
            && !self.running.load(Ordering::SeqCst)
        {
            self.idle.notify_waiters();
        }
    }

    /// Waits until nothing of this plugin is under way, up to `timeout`; whether it is idle.
    pub(crate) async fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let idle = async {
            loop {
                let notified = self.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, idle).await.is_ok()
    }

    pub(crate) fn is_wanted(&self) -> bool {
        self.wanted.load(Ordering::Acquire)
    }

    /// The state it is in.
    pub fn status(&self) -> PluginStatus {
        *self
            .status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the state; returns whether it changed.
    pub(crate) fn set(&self, status: PluginStatus, wanted: bool) -> bool {
        let mut current = self
            .status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.wanted.store(wanted, Ordering::Release);
        // Routes stop serving before anything else happens to a stopping plugin, and start
        // serving only once its state says running.
        self.running
            .store(status == PluginStatus::Running, Ordering::SeqCst);
        let changed = *current != status;
        *current = status;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::PluginStatus;

    #[test]
    fn the_list_of_names_is_every_states_name() {
        let every = [
            PluginStatus::Running,
            PluginStatus::Starting,
            PluginStatus::Stopping,
            PluginStatus::Stopped,
            PluginStatus::Disabled,
            PluginStatus::DisabledBecauseDependency { dependency: "x" },
            PluginStatus::Failed,
        ];
        assert_eq!(every.map(|status| status.name()), PluginStatus::NAMES);
    }
}
