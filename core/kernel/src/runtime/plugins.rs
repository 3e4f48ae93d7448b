//! What the `plugins:read` permission grants: [`Plugins`], a read-only view of every
//! compiled-in plugin (its manifest and what it registered, its state, its public
//! description), and never a way to change one.
//!
//! The shell lists plugins with it, the docs plugin reads their embedded docs and routes, and
//! the test manager finds their tests. Changing a plugin's state is the operator's (the admin
//! API, the CLI), never another plugin's: nothing here starts, stops or reconfigures anything.

use crate::abi::plugin::PluginDescriptor;
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::runtime::info::{Audience, PluginInfo};
use crate::runtime::state::PluginStatus;

/// Every compiled-in plugin, read-only: `context.plugins()` of a plugin that declares
/// `plugins:read`.
#[derive(Clone)]
pub struct Plugins {
    pub(super) runtime: Runtime,
}

impl Plugins {
    pub(crate) fn new(runtime: Runtime) -> Plugins {
        Plugins { runtime }
    }

    /// The checked set of compiled-in plugins and everything they registered (routes,
    /// commands, event handlers, middleware, tests, embedded docs), in start order. It is
    /// immutable: the binary's composition, fixed at link time.
    pub fn registry(&self) -> &Registry {
        self.runtime.registry()
    }

    /// Every compiled-in plugin's manifest, in start order.
    pub fn descriptors(&self) -> &[&'static PluginDescriptor] {
        self.runtime.registry().plugins()
    }

    /// Plugin `name`'s manifest, if it is compiled in.
    pub fn descriptor(&self, name: &str) -> Option<&'static PluginDescriptor> {
        self.runtime.registry().plugin(name)
    }

    /// Plugin `name`'s state, if it is compiled in.
    pub fn status(&self, name: &str) -> Option<PluginStatus> {
        self.runtime.status(name)
    }

    /// Plugin `name` as the public API describes it (`GET /api/v1/plugins/{name}`): its
    /// manifest, state, routes and counters, without error texts.
    pub fn describe(&self, name: &str) -> Option<PluginInfo> {
        let plugin = self.runtime.registry().plugin(name)?;
        Some(PluginInfo::of_running(
            &self.runtime,
            plugin,
            Audience::Public,
        ))
    }

    /// Every plugin as the public API describes it, in start order.
    pub fn describe_all(&self) -> Vec<PluginInfo> {
        PluginInfo::all_running(&self.runtime, Audience::Public)
    }
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("count", &self.runtime.registry().plugins().len())
            .finish()
    }
}
