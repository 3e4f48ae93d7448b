//! What a plugin's hooks receive ([`PluginContext`]) and what a background task receives on
//! each (re)start ([`TaskContext`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::abi::hooks::BoxError;
use crate::abi::plugin::Configurable;
use crate::runtime::Runtime;

/// What a plugin's hooks receive: its name, the runtime, its configuration, and a way to
/// spawn supervised background tasks.
#[derive(Clone, Debug)]
pub struct PluginContext {
    plugin: &'static str,
    runtime: Runtime,
}

impl PluginContext {
    pub(crate) fn new(plugin: &'static str, runtime: Runtime) -> PluginContext {
        PluginContext { plugin, runtime }
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// The runtime: other plugins' state, publishing events.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The current configuration of plugin `P`.
    pub fn config<P: Configurable>(&self) -> Option<Arc<P::Config>> {
        self.runtime.config::<P>()
    }

    /// Runs `task` in the background under a supervisor: if it returns an error or panics,
    /// the error is logged and counted and the task is started again after an exponential
    /// backoff (100 ms doubling up to 30 s). A task that returns `Ok` has finished. When the
    /// plugin stops (disabled, or the server shuts down) every one of its tasks'
    /// [`TaskContext::cancelled`] resolves and the runtime waits for them to end, up to the
    /// phase timeout.
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F)
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.runtime
            .tasks()
            .spawn(self.plugin, name, self.runtime.clone(), task);
    }
}

/// What a background task receives on each (re)start.
#[derive(Clone, Debug)]
pub struct TaskContext {
    token: CancellationToken,
    runtime: Runtime,
}

impl TaskContext {
    pub(crate) fn new(token: CancellationToken, runtime: Runtime) -> TaskContext {
        TaskContext { token, runtime }
    }

    /// Resolves when the plugin stops (it is disabled, or the server shuts down); `select!`
    /// on it around long waits.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Waits for `duration`; returns `false` instead if the plugin stops first, so a
    /// periodic task is `while task.sleep(interval).await { ... }`.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            () = self.token.cancelled() => false,
            () = tokio::time::sleep(duration) => true,
        }
    }

    /// Whether the plugin is stopping.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}
