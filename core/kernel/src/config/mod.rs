//! The configuration file, `plexichat.toml`: parsed, overridden from the environment, and
//! validated against one JSON Schema made for exactly the plugins compiled into this binary.
//!
//! Validation is pure: [`Config::parse`] reads only the text and the environment pairs it is
//! given, and reports every problem at once, each with its JSON pointer. The JSON Schema
//! validator is behind the `validation` feature, which the `plexichat` binary turns on. Nothing is started,
//! opened or written until a valid [`Config`] exists.
//!
//! One concern per module: `sections` (the typed sections), `parse` (TOML, then the
//! environment, then flags), `validate` (document to [`Config`]) with `validator` (the schema
//! check) and `suggest` (did-you-mean), `schema`, `file` (finding and reading the file),
//! `example`, and `issues` (how problems are reported). Everything public is re-exported
//! here.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub mod database;
pub mod secret;

mod example;
mod file;
mod issues;
mod parse;
mod schema;
mod sections;
pub mod settings;
mod suggest;
mod validate;
#[cfg(feature = "validation")]
mod validator;

pub use example::example;
pub use file::{ConfigFile, DEFAULT_FILE, MAX_FILE_BYTES};
pub use issues::{ConfigErrors, ConfigIssue, is_secret_pointer};
pub use parse::{ENV_ADMIN_TOKEN, ENV_PREFIX, Flag};
pub use schema::pointer_token;
pub use schema::schema;
pub use sections::{
    DEFAULT_DATABASE_FILE, DataSection, EventsSection, HealthSection, PreHandlerFailure,
    ServerSection,
};

/// A validated configuration, ready to start a server with.
#[derive(Clone)]
pub struct Config {
    /// `[server]`.
    pub server: ServerSection,
    /// `[data]`.
    pub data: DataSection,
    /// `[events]`.
    pub events: EventsSection,
    /// `[health]`.
    pub health: HealthSection,
    /// Plugins kept from starting, as written (dependents are disabled with them at start).
    pub disabled: BTreeSet<String>,
    /// Plugins declared with `auto_start = false` that start anyway, as written.
    pub enabled: BTreeSet<String>,
    /// Each compiled-in plugin's section after defaults, as JSON (what `status` shows).
    pub plugin_values: BTreeMap<&'static str, Value>,
    /// Each configured plugin's typed configuration.
    pub(crate) plugin_configs: BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>,
}

/// Plugin sections are left out: a plugin's settings may hold secrets that only it knows
/// to be secret.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("data", &self.data)
            .field("events", &self.events)
            .field("health", &self.health)
            .field("disabled", &self.disabled)
            .field("enabled", &self.enabled)
            .field("plugins", &self.plugin_values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Config {
    /// The settings of `[server]` and `[data]` that differ between `self` and `other`; they
    /// take effect only when the server restarts.
    pub fn restart_required(&self, other: &Config) -> Vec<&'static str> {
        let (a, b) = (&self.server, &other.server);
        [
            ("server.bind", a.bind != b.bind),
            ("server.admin_token", a.admin_token != b.admin_token),
            (
                "server.request_timeout",
                a.request_timeout != b.request_timeout,
            ),
            ("server.body_limit", a.body_limit != b.body_limit),
            (
                "server.header_read_timeout",
                a.header_read_timeout != b.header_read_timeout,
            ),
            ("server.idle_timeout", a.idle_timeout != b.idle_timeout),
            (
                "server.max_connections",
                a.max_connections != b.max_connections,
            ),
            ("server.drain_timeout", a.drain_timeout != b.drain_timeout),
            ("server.max_streams", a.max_streams != b.max_streams),
            (
                "server.max_streams_per_client",
                a.max_streams_per_client != b.max_streams_per_client,
            ),
            (
                "server.stream_lifetime",
                a.stream_lifetime != b.stream_lifetime,
            ),
            ("server.ready_cache", a.ready_cache != b.ready_cache),
            ("data.dir", self.data.dir != other.data.dir),
            ("data.database", self.data.database != other.data.database),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| name)
        .collect()
    }

    /// The typed configuration of plugin `name`, if it declares one.
    pub fn plugin_config(&self, name: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        self.plugin_configs.get(name).cloned()
    }
}
