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
}

impl PluginStatus {
    /// The state's name, e.g. `disabled_because_dependency`.
    pub fn name(&self) -> &'static str {
        match self {
            PluginStatus::Running => "running",
            PluginStatus::Disabled => "disabled",
            PluginStatus::DisabledBecauseDependency { .. } => "disabled_because_dependency",
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
        }
    }
}

/// One plugin's state; the flag is what the request and publish paths read.
#[derive(Debug)]
pub(crate) struct Slot {
    running: AtomicBool,
    status: Mutex<PluginStatus>,
}

impl Slot {
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
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
    /// Plugins the operator turned off; serialised so concurrent admin calls see each other.
    turned_off: Mutex<BTreeSet<String>>,
}

impl States {
    pub(crate) fn new(registry: &Registry, turned_off: &BTreeSet<String>) -> States {
        let slots = registry
            .plugins()
            .iter()
            .map(|plugin| {
                let slot = Slot {
                    running: AtomicBool::new(false),
                    status: Mutex::new(PluginStatus::Disabled),
                };
                (plugin.name, Arc::new(slot))
            })
            .collect();
        let states = States {
            slots,
            turned_off: Mutex::new(turned_off.clone()),
        };
        states.resolve(registry, turned_off);
        states
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
        let mut turned_off = self
            .turned_off
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if on {
            turned_off.remove(plugin);
        } else {
            turned_off.insert(plugin.to_string());
        }
        self.resolve(registry, &turned_off)
    }

    /// Replaces the operator's wishes wholesale (a configuration reload).
    pub(crate) fn replace(
        &self,
        registry: &Registry,
        wanted_off: &BTreeSet<String>,
    ) -> Vec<(&'static str, PluginStatus)> {
        let mut turned_off = self
            .turned_off
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *turned_off = wanted_off.clone();
        self.resolve(registry, &turned_off)
    }

    /// Computes every state in start order, so a dependency is decided before its dependents.
    fn resolve(
        &self,
        registry: &Registry,
        turned_off: &BTreeSet<String>,
    ) -> Vec<(&'static str, PluginStatus)> {
        let mut decided: HashMap<&str, bool> = HashMap::new();
        let mut changed = Vec::new();
        for plugin in registry.plugins() {
            let status = if turned_off.contains(plugin.name) {
                PluginStatus::Disabled
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
            slot.running.store(running, Ordering::Release);
        }
        changed
    }
}
