//! Which plugins are running: the operator's wishes (`disabled` in the configuration, the
//! admin disable/enable endpoints) resolved against dependencies into one visible state each.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::registry::Registry;

/// A plugin's state, as `GET /api/v1/plugins` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PluginStatus {
    /// Serving routes and receiving events.
    Running,
    /// Kept from running by the operator (configuration or admin API).
    Disabled,
    /// Kept from running because a plugin it depends on is not running.
    DisabledBecauseDependency {
        /// The first dependency (in start order) that is not running.
        dependency: &'static str,
    },
    /// Its `init` hook failed, panicked or timed out; it stays down until restart.
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl PluginStatus {
    /// The state's name, e.g. `disabled_because_dependency`.
    pub fn name(&self) -> &'static str {
        match self {
            PluginStatus::Running => "running",
            PluginStatus::Disabled => "disabled",
            PluginStatus::DisabledBecauseDependency { .. } => "disabled_because_dependency",
            PluginStatus::Failed { .. } => "failed",
        }
    }

    /// Why the plugin does not run, for error bodies; `None` when it runs.
    pub fn reason(&self, plugin: &str) -> Option<String> {
        match self {
            PluginStatus::Running => None,
            PluginStatus::Disabled => Some(format!("plugin `{plugin}` is disabled")),
            PluginStatus::DisabledBecauseDependency { dependency } => Some(format!(
                "plugin `{plugin}` is disabled because its dependency `{dependency}` is not running"
            )),
            PluginStatus::Failed { error } => Some(format!("plugin `{plugin}` failed: {error}")),
        }
    }
}

/// The state each plugin starts in under a configuration's `disabled` list (before any
/// `init` runs), for listings made without starting a server.
pub fn configured(
    registry: &Registry,
    disabled: &BTreeSet<String>,
) -> std::collections::BTreeMap<&'static str, PluginStatus> {
    let states = States::new(registry, disabled);
    registry
        .plugins()
        .iter()
        .map(|plugin| (plugin.name, states.slots[plugin.name].status()))
        .collect()
}

/// One plugin's state; the flag is what the request and publish paths read.
#[derive(Debug)]
pub(crate) struct Slot {
    running: AtomicBool,
    /// The operator wants it to run: neither it nor a dependency was turned off. A wanted
    /// plugin that does not run makes the server not ready.
    wanted: AtomicBool,
    status: Mutex<PluginStatus>,
}

impl Slot {
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    pub(crate) fn is_wanted(&self) -> bool {
        self.wanted.load(Ordering::Acquire)
    }

    pub(crate) fn status(&self) -> PluginStatus {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Every plugin's state and the operator's current wishes.
#[derive(Debug)]
pub(crate) struct States {
    slots: HashMap<&'static str, Arc<Slot>>,
    /// Plugins the operator turned off, and plugins whose `init` failed (with the error);
    /// one lock so concurrent admin calls and start-up see each other.
    wishes: Mutex<Wishes>,
}

#[derive(Debug, Default)]
struct Wishes {
    turned_off: BTreeSet<String>,
    failed: std::collections::BTreeMap<String, String>,
}

impl States {
    pub(crate) fn new(registry: &Registry, turned_off: &BTreeSet<String>) -> States {
        let slots = registry
            .plugins()
            .iter()
            .map(|plugin| {
                let slot = Slot {
                    running: AtomicBool::new(false),
                    wanted: AtomicBool::new(false),
                    status: Mutex::new(PluginStatus::Disabled),
                };
                (plugin.name, Arc::new(slot))
            })
            .collect();
        let wishes = Wishes {
            turned_off: turned_off.clone(),
            failed: Default::default(),
        };
        let states = States {
            slots,
            wishes: Mutex::new(Wishes::default()),
        };
        states.resolve(registry, &wishes);
        *states.lock() = wishes;
        states
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Wishes> {
        self.wishes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that `plugin`'s `init` failed; it and its dependents stop running.
    pub(crate) fn fail(
        &self,
        registry: &Registry,
        plugin: &str,
        error: String,
    ) -> Vec<(&'static str, PluginStatus)> {
        let mut wishes = self.lock();
        wishes.failed.insert(plugin.to_string(), error);
        self.resolve(registry, &wishes)
    }

    pub(crate) fn slot(&self, plugin: &str) -> Option<Arc<Slot>> {
        self.slots.get(plugin).cloned()
    }

    /// Turns `plugin` off or back on, resolves dependents, and returns every plugin whose
    /// state changed with its new state.
    pub(crate) fn set(
        &self,
        registry: &Registry,
        plugin: &str,
        on: bool,
    ) -> Vec<(&'static str, PluginStatus)> {
        let mut wishes = self.lock();
        if on {
            wishes.turned_off.remove(plugin);
        } else {
            wishes.turned_off.insert(plugin.to_string());
        }
        self.resolve(registry, &wishes)
    }

    /// Replaces the operator's wishes wholesale (a configuration reload).
    pub(crate) fn replace(
        &self,
        registry: &Registry,
        wanted_off: &BTreeSet<String>,
    ) -> Vec<(&'static str, PluginStatus)> {
        let mut wishes = self.lock();
        wishes.turned_off = wanted_off.clone();
        self.resolve(registry, &wishes)
    }

    /// Computes every state in start order, so a dependency is decided before its dependents.
    fn resolve(&self, registry: &Registry, wishes: &Wishes) -> Vec<(&'static str, PluginStatus)> {
        let mut decided: HashMap<&str, bool> = HashMap::new();
        let mut wanted: HashMap<&str, bool> = HashMap::new();
        let mut changed = Vec::new();
        for plugin in registry.plugins() {
            let is_wanted = !wishes.turned_off.contains(plugin.name)
                && plugin
                    .dependencies
                    .iter()
                    .all(|dependency| wanted.get(dependency).copied().unwrap_or(false));
            wanted.insert(plugin.name, is_wanted);
            let status = if wishes.turned_off.contains(plugin.name) {
                PluginStatus::Disabled
            } else if let Some(error) = wishes.failed.get(plugin.name) {
                PluginStatus::Failed {
                    error: error.clone(),
                }
            } else if let Some(dependency) = plugin
                .dependencies
                .iter()
                .find(|dependency| !decided.get(*dependency).copied().unwrap_or(false))
            {
                PluginStatus::DisabledBecauseDependency { dependency }
            } else {
                PluginStatus::Running
            };
            let running = status == PluginStatus::Running;
            decided.insert(plugin.name, running);
            let slot = &self.slots[plugin.name];
            let mut current = slot
                .status
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if *current != status {
                *current = status.clone();
                changed.push((plugin.name, status));
            }
            slot.wanted.store(is_wanted, Ordering::Release);
            slot.running.store(running, Ordering::Release);
        }
        changed
    }
}
