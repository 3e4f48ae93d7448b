//! Reloading the configuration: read and validated off the async workers, offered to plugins
//! (`config.changing`, which may veto), swapped in, then the `disabled`/`enabled` wishes
//! applied through the same transitions as the admin API, and `config.changed` published.

use std::sync::Arc;

use serde::Serialize;
use tokio::time::Instant;

use super::state::PluginStatus;
use super::{Delivery, HandlerFailure, Runtime};
use crate::abi::event::Event;
use crate::abi::plugin::Configurable;
use crate::config::{Config, ConfigErrors, ConfigIssue};
use crate::registry::Registry;

/// Published when a new configuration has been validated, before it takes effect. A handler
/// that returns an error (or panics) vetoes it: the previous configuration stays in effect
/// everywhere. Plugins check their new section with [`ConfigChanging::config_of`].
#[derive(Debug, Clone)]
pub struct ConfigChanging {
    pub(crate) config: Arc<Config>,
}

impl ConfigChanging {
    /// The new typed configuration of plugin `P`.
    pub fn config_of<P: Configurable>(&self) -> Option<Arc<P::Config>> {
        self.config
            .plugin_config(P::NAME)
            .and_then(|config| config.downcast::<P::Config>().ok())
    }
}

impl Serialize for ConfigChanging {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.config.plugin_values.serialize(serializer)
    }
}

impl Event for ConfigChanging {
    const NAME: &'static str = "config.changing";
}

/// Published after a new configuration took effect.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigChanged {
    /// Plugins whose section changed.
    pub plugins: Vec<&'static str>,
}

impl Event for ConfigChanged {
    const NAME: &'static str = "config.changed";
}

crate::abi::event::core_events!(ConfigChanging, ConfigChanged);

/// Produces a fresh, validated configuration for a reload (reads the file and environment).
/// It runs on a blocking thread, so it may do file I/O.
pub type ConfigSource = Arc<dyn Fn(&Registry) -> Result<Config, ConfigErrors> + Send + Sync>;

/// What a successful reload changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Plugins whose section changed.
    pub plugins: Vec<&'static str>,
    /// Plugins whose state changed, with their new state.
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
    /// The new configuration is invalid, or could not be read.
    #[error("{0}")]
    Invalid(ConfigErrors),
    /// A plugin's `config.changing` handler refused it.
    #[error("a plugin refused the new configuration")]
    Vetoed(Vec<HandlerFailure>),
}

impl Runtime {
    /// Reads the configuration again from the source and applies it; see
    /// [`Runtime::apply_config`].
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let source = self.inner.source.clone().ok_or(ReloadError::NoSource)?;
        let runtime = self.clone();
        // Reading and validating a file is blocking work; on a worker thread of its own it
        // cannot stall the requests being served meanwhile.
        let config = tokio::task::spawn_blocking(move || source(runtime.registry()))
            .await
            .map_err(|error| {
                ReloadError::Invalid(ConfigErrors {
                    source: "the configuration source".to_string(),
                    issues: vec![ConfigIssue::new(
                        "",
                        None,
                        format!("reading the configuration failed: {error}"),
                    )],
                })
            })?
            .map_err(ReloadError::Invalid)?;
        self.apply_config(config).await
    }

    /// Makes a validated configuration current, or changes nothing.
    ///
    /// Plugins first see it in `config.changing`; if any handler fails (or does not finish
    /// within the phase timeout), the previous configuration stays in effect everywhere.
    /// Otherwise each plugin's section is swapped in, the `disabled`/`enabled` lists are
    /// applied (admin decisions outlive a reload unless the file changes its mind about that
    /// plugin; see [`super::state::Wishes::apply_file`]), and `config.changed` is published.
    /// Reloads, start, shutdown and the admin API's state changes are serialised.
    pub async fn apply_config(&self, config: Config) -> Result<ReloadReport, ReloadError> {
        let runtime = self.clone();
        super::transitions::to_the_end(async move { runtime.apply(config).await }).await
    }

    /// [`Runtime::apply_config`], run to the end on its own task.
    async fn apply(&self, config: Config) -> Result<ReloadReport, ReloadError> {
        let mut control = self.lock_control().await;
        let changing = ConfigChanging {
            config: Arc::new(config),
        };
        let deadline = Instant::now() + self.phase_timeout();
        let report = self
            .dispatch(&changing, Delivery::Running, Some(deadline))
            .await;
        if !report.failures.is_empty() {
            return Err(ReloadError::Vetoed(report.failures));
        }
        let config = changing.config;
        let current = self.current_config();
        let plugins: Vec<&'static str> = self
            .registry()
            .plugins()
            .iter()
            .map(|plugin| plugin.name)
            .filter(|name| current.plugin_values.get(name) != config.plugin_values.get(name))
            .collect();
        let restart_required = current.restart_required(&config);
        *self
            .inner
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::clone(&config);
        for (name, entry) in &self.inner.by_name {
            *entry
                .config
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = config.plugin_config(name);
        }
        let file_off = super::state::file_off(self.registry(), &config);
        let states = self.apply_file_wishes(&mut control, file_off).await;
        tracing::info!(?plugins, ?restart_required, "configuration reloaded");
        let deadline = Instant::now() + self.phase_timeout();
        let changed = ConfigChanged {
            plugins: plugins.clone(),
        };
        self.dispatch(&changed, Delivery::Running, Some(deadline))
            .await;
        Ok(ReloadReport {
            plugins,
            states,
            restart_required,
        })
    }
}
