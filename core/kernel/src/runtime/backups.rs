//! Calling plugins' backup handlers (`#[plugin(backup = true)]`) with failures, panics and
//! hangs turned into an error naming the plugin.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt as _;

use crate::runtime::{Host, Runtime, panic_message};

/// How long one handler may take: at least five minutes, as exporting a plugin's own data
/// may take a while, or the configured phase time-out if that is longer.
const MIN_HANDLER_TIME: Duration = Duration::from_secs(300);

/// A backup handler that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}`'s backup handler failed to {action}: {message}")]
pub struct HandlerError {
    /// The plugin.
    pub plugin: String,
    /// `export` or `import`.
    pub action: &'static str,
    /// What it said, or that it panicked or timed out.
    pub message: String,
}

impl Runtime {
    /// The plugins with backup handlers, in start order.
    pub fn backup_plugins(&self) -> Vec<&'static str> {
        self.registry()
            .plugins()
            .iter()
            .filter(|plugin| plugin.backup.is_some())
            .map(|plugin| plugin.name)
            .collect()
    }

    /// Every backup handler's export, in start order; the first failure stops there.
    pub async fn export_backups(&self) -> Result<Vec<(&'static str, Vec<u8>)>, HandlerError> {
        let mut exported = Vec::new();
        for plugin in self.registry().plugins() {
            let (Some(hooks), Some(entry)) = (plugin.backup, self.entry(plugin.name)) else {
                continue;
            };
            let call = (hooks.export)(entry.instance.as_ref(), Host::of(self));
            let data = self.bounded(plugin.name, "export", call).await?;
            exported.push((plugin.name, data));
        }
        Ok(exported)
    }

    /// Hands `data` to `plugin`'s import handler.
    pub async fn import_backup(&self, plugin: &str, data: Vec<u8>) -> Result<(), HandlerError> {
        let error = |message: &str| HandlerError {
            plugin: plugin.to_string(),
            action: "import",
            message: message.to_string(),
        };
        let descriptor = self
            .registry()
            .plugin(plugin)
            .ok_or_else(|| error("this binary does not contain the plugin"))?;
        let hooks = descriptor
            .backup
            .ok_or_else(|| error("the plugin has no backup handler in this binary"))?;
        let entry = self
            .entry(plugin)
            .ok_or_else(|| error("the plugin has no instance"))?;
        let call = (hooks.import)(entry.instance.as_ref(), Host::of(self), data);
        self.bounded(descriptor.name, "import", call).await
    }

    async fn bounded<T>(
        &self,
        plugin: &str,
        action: &'static str,
        call: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, HandlerError> {
        let limit = self.phase_timeout().max(MIN_HANDLER_TIME);
        let outcome = tokio::time::timeout(limit, AssertUnwindSafe(call).catch_unwind()).await;
        let message = match outcome {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(message))) => message,
            Ok(Err(payload)) => panic_message(payload.as_ref()),
            Err(_) => format!(
                "did not finish within {}",
                humantime::format_duration(limit)
            ),
        };
        Err(HandlerError {
            plugin: plugin.to_string(),
            action,
            message,
        })
    }
}
