//! The configuration file, `plexichat.toml`: parsed, overridden from the environment, and
//! validated against one JSON Schema made for exactly the plugins compiled into this binary.
//!
//! Validation is pure: [`Config::parse`] reads only the text and the environment pairs it is
//! given, and reports every problem at once, each with its JSON pointer. The JSON Schema
//! validator is behind the `validation` feature, which the `plexichat` binary turns on. Nothing is started,
//! opened or written until a valid [`Config`] exists.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::abi::plugin::PluginDescriptor;
use crate::registry::Registry;

pub mod database;
pub mod secret;

use database::DatabaseUrl;
use secret::{REDACTED, Secret};

/// The prefix of environment overrides: `PLEXICHAT__SECTION__KEY=value`.
pub const ENV_PREFIX: &str = "PLEXICHAT__";
/// The admin token may also come from this variable (a common name for a secret).
pub const ENV_ADMIN_TOKEN: &str = "PLEXICHAT_ADMIN_TOKEN";
/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "plexichat.toml";
/// What messages call the configuration when there is no file: the built-in defaults with
/// whatever the environment and the command line override.
const NO_FILE: &str = "the configuration (built-in defaults, no file)";

/// `[server]`: how the HTTP server listens, what it accepts, and how long each phase may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on: an IP address and a port.
    pub bind: SocketAddr,
    /// Bearer token for `/api/v1/admin/*`. Prefer `PLEXICHAT_ADMIN_TOKEN` over writing it
    /// here; without either, the server generates one in the data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// A request not answered within this time gets 408, e.g. `"30s"`, `"2m"`.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "30s")]
    pub request_timeout: Duration,
    /// Largest accepted request body in bytes; larger bodies get 413.
    #[schemars(range(min = 1))]
    pub body_limit: u64,
    /// Longest a plugin's `init` or `stop`, the handlers of a lifecycle event, or a
    /// plugin's background tasks may take to finish, e.g. `"10s"`.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "10s")]
    pub phase_timeout: Duration,
    /// A connection that has started sending a request must complete its head (request line
    /// and headers) within this time, or it is closed.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "10s")]
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no traffic for this long is closed.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "60s")]
    pub idle_timeout: Duration,
    /// Most connections served at once; further clients wait in the listen backlog until
    /// one closes. Lowered at start to what the process's file-descriptor limit allows.
    #[schemars(range(min = 1))]
    pub max_connections: u32,
    /// At shutdown, how long in-flight requests may take to finish before the remaining
    /// connections are closed.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "10s")]
    pub drain_timeout: Duration,
    /// How long a readiness result (`/ready`, per-plugin health) is reused before the
    /// plugin's `ready` hook runs again.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "1s")]
    pub ready_cache: Duration,
    /// A second address that serves only `/metrics` (Prometheus), without authentication;
    /// for an address only the scraper can reach, e.g. `"127.0.0.1:9100"`. Unset, `/metrics`
    /// is served on `bind` and needs the admin token as a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_bind: Option<SocketAddr>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            admin_token: None,
            request_timeout: Duration::from_secs(30),
            body_limit: 1024 * 1024,
            phase_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            drain_timeout: Duration::from_secs(10),
            ready_cache: Duration::from_secs(1),
            metrics_bind: None,
        }
    }
}

/// `[events]`: how proposals of vetoable events treat pre-handlers that cannot decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSection {
    /// Longest one pre-handler of a vetoable event may take to decide, e.g. `"2s"`. One that
    /// runs past it is logged with its plugin's name and counted (an async one is dropped).
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "2s")]
    pub pre_handler_timeout: Duration,
    /// What a pre-handler that ran out of time or panicked means for the proposal:
    /// `"reject"` (it is rejected, naming the plugin) or `"skip"` (the next handler decides).
    pub pre_handler_failure: PreHandlerFailure,
}

impl Default for EventsSection {
    fn default() -> Self {
        EventsSection {
            pre_handler_timeout: Duration::from_secs(2),
            pre_handler_failure: PreHandlerFailure::Reject,
        }
    }
}

/// `[health]`: how plugins' liveness checks are run and what repeated failures lead to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSection {
    /// How often each running plugin's liveness checks run, e.g. `"30s"`; each check has at
    /// most this long (and at most 10 s) to answer.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "30s")]
    pub liveness_interval: Duration,
    /// Consecutive failed rounds after which the plugin is restarted (`stop`, then `init` and
    /// its tasks again), its dependents with it.
    #[schemars(range(min = 1, max = 100))]
    pub failures_before_restart: u32,
    /// Restarts allowed within `restart_window`; one more failure past them marks the plugin
    /// failed, and its dependents stop with it, until an operator enables it again.
    #[schemars(range(min = 0, max = 100))]
    pub max_restarts: u32,
    /// The window `max_restarts` counts in, e.g. `"1h"`. After each restart the next round
    /// waits twice as long as after the previous one in the window (backoff).
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "1h")]
    pub restart_window: Duration,
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            liveness_interval: Duration::from_secs(30),
            failures_before_restart: 3,
            max_restarts: 3,
            restart_window: Duration::from_secs(60 * 60),
        }
    }
}

/// `[events] pre_handler_failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreHandlerFailure {
    /// The proposal is rejected: a policy that could not run is not taken as a yes.
    Reject,
    /// The handler is passed over, as if it had accepted.
    Skip,
}

/// The keys that hold a duration, as JSON pointers.
const DURATIONS: [&str; 9] = [
    "/server/request_timeout",
    "/server/phase_timeout",
    "/server/header_read_timeout",
    "/server/idle_timeout",
    "/server/drain_timeout",
    "/server/ready_cache",
    "/events/pre_handler_timeout",
    "/health/liveness_interval",
    "/health/restart_window",
];

/// Longest duration a setting accepts.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Durations written as text (`"30s"`, `"1m 30s"`, `"500ms"`), read with humantime.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// `[data]`: where the server keeps its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// Directory for everything the server writes; created at start if missing.
    pub dir: PathBuf,
    /// The database: unset for embedded SQLite in `<dir>/plexichat.db`, or a URL,
    /// `sqlite:path/to/file.db` or `postgres://user:password@host/database`. Its password
    /// is never logged or shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseUrl>,
}

impl DataSection {
    /// The database to open: the configured URL, or `<dir>/plexichat.db`.
    pub fn database_url(&self) -> DatabaseUrl {
        self.database
            .clone()
            .unwrap_or_else(|| DatabaseUrl::sqlite_file(&self.dir.join(DEFAULT_DATABASE_FILE)))
    }
}

/// The embedded database's file name inside the data folder.
pub const DEFAULT_DATABASE_FILE: &str = "plexichat.db";

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            dir: PathBuf::from("./data"),
            database: None,
        }
    }
}

/// One problem in a configuration, located by JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigIssue {
    /// The plugin whose section is wrong, if it is a plugin section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Where: a JSON pointer into the document, e.g. `/plugins/my_awesome_plugin/interval`.
    pub pointer: String,
    /// The value found there, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<Value>,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl ConfigIssue {
    /// An issue at `pointer`. The value found is redacted where the key holds a secret (the
    /// admin token, or a plugin setting whose name says token, secret, password or key) and
    /// shortened where it is long, and the problem text loses the same way, so that
    /// validation messages and reload error bodies never echo a secret or a megabyte.
    pub(crate) fn new(
        pointer: impl Into<String>,
        found: Option<Value>,
        problem: impl Into<String>,
    ) -> Self {
        let pointer = pointer.into();
        let plugin = pointer
            .strip_prefix("/plugins/")
            .map(|rest| rest.split('/').next().unwrap_or_default().to_string());
        let mut problem = problem.into();
        let found = found.map(|value| {
            let mut secrets = Vec::new();
            let redacted = redact(&value, is_secret_pointer(&pointer), &mut secrets);
            // Messages quote values in JSON (`"abc"`) or bare (`abc`): remove both forms of
            // every secret, longest first so that one secret inside another goes too.
            secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
            for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
                problem = problem
                    .replace(&Value::String(secret.clone()).to_string(), REDACTED)
                    .replace(secret.as_str(), REDACTED);
            }
            let shown = shorten(&redacted);
            if let (true, Value::String(raw)) = (shown != redacted, &redacted) {
                problem = problem
                    .replace(&redacted.to_string(), &shown.to_string())
                    .replace(raw.as_str(), &cut(raw, MAX_VALUE_CHARS));
            }
            shown
        });
        ConfigIssue {
            plugin,
            pointer,
            found,
            problem: cut(&problem, MAX_PROBLEM_CHARS),
        }
    }
}

/// Longest problem text an issue carries.
const MAX_PROBLEM_CHARS: usize = 300;
/// Longest string value an issue shows.
const MAX_VALUE_CHARS: usize = 100;

/// Whether the key at `pointer`, or any key above it, holds a secret: the admin token, or
/// any key whose name contains `token`, `secret`, `password`, `passwd` or `key` (as in
/// `api_key`).
pub fn is_secret_pointer(pointer: &str) -> bool {
    pointer.split('/').any(is_secret_key)
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["token", "secret", "password", "passwd", "key"]
        .iter()
        .any(|word| key.contains(word))
}

/// `value` with every secret replaced by [`REDACTED`]: all of it when `secret`, else the
/// values of secret keys at any depth; the texts removed are added to `secrets`.
fn redact(value: &Value, secret: bool, secrets: &mut Vec<String>) -> Value {
    if secret {
        collect_leaves(value, secrets);
        return Value::String(REDACTED.to_string());
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), redact(value, is_secret_key(key), secrets)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| redact(item, false, secrets))
                .collect(),
        ),
        // A URL's password (`postgres://user:password@host`), wherever it is configured.
        Value::String(text) => {
            let shown = database::redact_url(text);
            if shown != *text {
                secrets.push(text.clone());
            }
            Value::String(shown)
        }
        other => other.clone(),
    }
}

fn collect_leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Number(number) => out.push(number.to_string()),
        Value::Bool(flag) => out.push(flag.to_string()),
        Value::Array(items) => items.iter().for_each(|item| collect_leaves(item, out)),
        Value::Object(map) => map.values().for_each(|item| collect_leaves(item, out)),
        Value::Null => {}
    }
}

/// A value short enough for a message: long strings are cut, large arrays and objects are
/// described instead of shown.
fn shorten(value: &Value) -> Value {
    match value {
        Value::String(text) if text.chars().count() > MAX_VALUE_CHARS => {
            Value::String(cut(text, MAX_VALUE_CHARS))
        }
        Value::Array(items) if value.to_string().len() > MAX_VALUE_CHARS => {
            Value::String(format!("(an array of {} items)", items.len()))
        }
        Value::Object(map) if value.to_string().len() > MAX_VALUE_CHARS => {
            Value::String(format!("(a table of {} keys)", map.len()))
        }
        other => other.clone(),
    }
}

/// `text` cut to `max` characters, marked with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_string(),
    }
}

/// `plugin `name`: /pointer: problem`. An issue with the whole document (a TOML syntax error,
/// a file that cannot be read) has no pointer to show: it is the problem alone, and
/// [`ConfigErrors`] puts the file's name before it.
impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(plugin) = &self.plugin {
            write!(f, "plugin `{plugin}`: ")?;
        }
        if !self.pointer.is_empty() {
            write!(f, "{}: ", self.pointer)?;
        }
        f.write_str(&self.problem)
    }
}

/// Every problem found in one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigErrors {
    /// Where the configuration came from, for messages.
    pub source: String,
    /// The problems, in document order.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        write!(
            f,
            "{} has {count} problem{}:",
            self.source,
            if count == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            if issue.pointer.is_empty() {
                write!(f, "\n  {}: {issue}", self.source)?;
            } else {
                write!(f, "\n  {issue}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

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

/// A command-line flag that sets a configuration value. Flags are validated exactly like
/// the file and the environment, and beat both; an issue they cause names the flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// The flag as typed, e.g. `--body-limit`.
    pub name: &'static str,
    /// The key it sets, as a JSON pointer, e.g. `/server/body_limit`.
    pub pointer: &'static str,
    value: toml::Value,
}

impl Flag {
    /// A flag whose value is text, e.g. `--request-timeout 30s`.
    pub fn text(name: &'static str, pointer: &'static str, value: impl Into<String>) -> Flag {
        Flag {
            name,
            pointer,
            value: toml::Value::String(value.into()),
        }
    }

    /// A flag whose value is a number, e.g. `--body-limit 1024`.
    pub fn integer(name: &'static str, pointer: &'static str, value: i64) -> Flag {
        Flag {
            name,
            pointer,
            value: toml::Value::Integer(value),
        }
    }
}

/// Where the configuration file is, decided once at start so that a reload reads the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFile {
    /// `--config PATH`: it must exist.
    Given(PathBuf),
    /// [`DEFAULT_FILE`] in the working directory, which existed at start.
    Found(PathBuf),
    /// No file: the built-in defaults and the environment.
    None,
}

/// Largest configuration file read; a larger one is refused before it is parsed.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

impl ConfigFile {
    /// `given`, else [`DEFAULT_FILE`] if it exists, else none.
    pub fn locate(given: Option<&std::path::Path>) -> ConfigFile {
        match given {
            Some(path) => ConfigFile::Given(path.to_path_buf()),
            None if std::path::Path::new(DEFAULT_FILE).exists() => {
                ConfigFile::Found(PathBuf::from(DEFAULT_FILE))
            }
            None => ConfigFile::None,
        }
    }

    /// The file's text and its name for messages; `None` when there is no file. On a
    /// reload, a file that went missing or empty is an error: the server keeps its
    /// configuration rather than silently falling back to the built-in defaults.
    fn read(&self, reloading: bool) -> Result<Option<(String, String)>, ConfigErrors> {
        let (ConfigFile::Given(path) | ConfigFile::Found(path)) = self else {
            return Ok(None);
        };
        let source = path.display().to_string();
        let fail = |problem: String| ConfigErrors {
            source: source.clone(),
            issues: vec![ConfigIssue::new("", None, problem)],
        };
        let text = read_limited(path).map_err(fail)?;
        if reloading && text.trim().is_empty() {
            return Err(fail(
                "the file is empty; refusing to replace the running configuration with the \
                 built-in defaults (write at least a comment if that is what you want)"
                    .to_string(),
            ));
        }
        Ok(Some((text, source)))
    }
}

/// Reads at most [`MAX_FILE_BYTES`] of a regular file.
fn read_limited(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Non-blocking, so that a FIFO in the file's place cannot hang start-up before the
    // "regular file" check below.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options
        .open(path)
        .map_err(|error| format!("cannot read the file: {error}"))?;
    let metadata = file
        .metadata()
        .map_err(|error| format!("cannot read the file: {error}"))?;
    if !metadata.is_file() {
        return Err("not a regular file".to_string());
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|error| format!("cannot read the file: {error}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the file is larger than {MAX_FILE_BYTES} bytes; a configuration is a few kilobytes"
        ));
    }
    Ok(text)
}

impl Config {
    /// The configuration a binary runs with when there is no file and no override.
    pub fn defaults(registry: &Registry) -> Config {
        Config::parse("", &[], registry, "defaults")
            .expect("the defaults of every compiled-in plugin are valid")
    }

    /// Parses `text` (TOML), applies `env` overrides, and validates the result.
    ///
    /// `env` holds `(name, value)` pairs; only `PLEXICHAT__…` and `PLEXICHAT_ADMIN_TOKEN` are
    /// read. `source` names the file in messages.
    pub fn parse(
        text: &str,
        env: &[(String, String)],
        registry: &Registry,
        source: &str,
    ) -> Result<Config, ConfigErrors> {
        Config::parse_with_flags(text, env, &[], registry, source)
    }

    /// Like [`Config::parse`], with command-line `flags` applied last.
    pub fn parse_with_flags(
        text: &str,
        env: &[(String, String)],
        flags: &[Flag],
        registry: &Registry,
        source: &str,
    ) -> Result<Config, ConfigErrors> {
        let errors = |issues| ConfigErrors {
            source: source.to_string(),
            issues,
        };
        let mut document: toml::Table = toml::from_str(text).map_err(|error| {
            let place = error
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            errors(vec![ConfigIssue::new(
                "",
                None,
                format!("not valid TOML{place}: {}", error.message().trim()).replace('\n', " "),
            )])
        })?;
        let from_env = apply_env(&mut document, env).map_err(errors)?;
        for flag in flags {
            let path: Vec<String> = flag.pointer[1..].split('/').map(String::from).collect();
            insert_at(&mut document, &path, flag.value.clone());
        }
        let document = serde_json::to_value(&document)
            .map_err(|error| errors(vec![ConfigIssue::new("", None, error.to_string())]))?;
        validate(document, registry).map_err(|mut issues| {
            // A value that is not in the file is named by what set it, so that nobody searches
            // the file for it. Flags beat the environment; of two variables for one key, the
            // one applied last won.
            for issue in &mut issues {
                let origin = flags
                    .iter()
                    .find(|flag| flag.pointer == issue.pointer)
                    .map(|flag| flag.name)
                    .or_else(|| {
                        from_env
                            .iter()
                            .rev()
                            .find(|(pointer, _)| *pointer == issue.pointer)
                            .map(|(_, variable)| variable.as_str())
                    });
                if let Some(origin) = origin {
                    issue.problem = format!("{} (set by {origin})", issue.problem);
                }
            }
            errors(issues)
        })
    }

    /// Reads `file` and parses it with `env` and `flags`. The only I/O is reading that one
    /// file, at most [`MAX_FILE_BYTES`] of it; a file that cannot be read is reported like
    /// any other problem.
    pub fn load(
        file: &ConfigFile,
        env: &[(String, String)],
        flags: &[Flag],
        registry: &Registry,
    ) -> Result<Config, ConfigErrors> {
        Config::read_and_parse(file, false, env, flags, registry)
    }

    /// Like [`Config::load`] for a running server: the file chosen at start must still be
    /// there and not be empty.
    pub fn reload(
        file: &ConfigFile,
        env: &[(String, String)],
        flags: &[Flag],
        registry: &Registry,
    ) -> Result<Config, ConfigErrors> {
        Config::read_and_parse(file, true, env, flags, registry)
    }

    fn read_and_parse(
        file: &ConfigFile,
        reloading: bool,
        env: &[(String, String)],
        flags: &[Flag],
        registry: &Registry,
    ) -> Result<Config, ConfigErrors> {
        match file.read(reloading)? {
            Some((text, source)) => Config::parse_with_flags(&text, env, flags, registry, &source),
            None => Config::parse_with_flags("", env, flags, registry, NO_FILE),
        }
    }

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

/// Applies `PLEXICHAT__A__B=value` as `a.b = value`; values are read as TOML (`5`, `true`,
/// `"text"`, `[1, 2]`), and anything that is not valid TOML is taken as a string.
///
/// The admin token is the exception: `PLEXICHAT_ADMIN_TOKEN` and
/// `PLEXICHAT__SERVER__ADMIN_TOKEN` are taken verbatim as strings (`123456` and `true` are
/// tokens, not numbers), and when both are set `PLEXICHAT_ADMIN_TOKEN` wins.
///
/// Returns the JSON pointer each variable set and the variable's name, in the order applied.
fn apply_env(
    document: &mut toml::Table,
    env: &[(String, String)],
) -> Result<Vec<(String, String)>, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let mut applied = Vec::new();
    let mut overrides: Vec<(Vec<String>, &str, &str)> = env
        .iter()
        .filter_map(|(name, value)| {
            let path = name.strip_prefix(ENV_PREFIX)?;
            Some((
                path.split("__").map(str::to_ascii_lowercase).collect(),
                value.as_str(),
                name.as_str(),
            ))
        })
        .collect();
    // Sorting makes the result independent of the order the environment listed them in.
    overrides.sort();
    let token = ["server".to_string(), "admin_token".to_string()];
    for (path, raw, name) in overrides {
        let pointer = format!("/{}", path.join("/"));
        if path.iter().any(String::is_empty) {
            issues.push(ConfigIssue::new(
                pointer,
                None,
                "environment override has an empty segment; separate levels with `__`",
            ));
            continue;
        }
        let value = if path == token {
            toml::Value::String(raw.to_string())
        } else {
            toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut table| table.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.to_string()))
        };
        if insert_at(document, &path, value) {
            applied.push((pointer, name.to_string()));
        } else {
            issues.push(ConfigIssue::new(
                pointer,
                None,
                "environment override goes below a value that is not a table",
            ));
        }
    }
    if let Some((_, raw)) = env.iter().find(|(name, _)| name == ENV_ADMIN_TOKEN)
        && insert_at(document, &token, toml::Value::String(raw.clone()))
    {
        applied.push((
            "/server/admin_token".to_string(),
            ENV_ADMIN_TOKEN.to_string(),
        ));
    }
    if issues.is_empty() {
        Ok(applied)
    } else {
        Err(issues)
    }
}

/// Sets `path` in `table`, creating tables on the way; false if a value on the way is not a
/// table.
fn insert_at(table: &mut toml::Table, path: &[String], value: toml::Value) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return true;
    }
    match table
        .entry(first.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        toml::Value::Table(inner) => insert_at(inner, rest, value),
        _ => false,
    }
}

/// The JSON Schema of `plexichat.toml` for the plugins in `registry`.
pub fn schema(registry: &Registry) -> Value {
    schema_with_sections(registry, |_| true)
}

/// The schema with only the plugin sections `wanted` says: the validator needs only those of
/// the sections a document has (every section is optional), and compiling a thousand
/// plugins' sections to check a file that sets `[server] bind` was most of such a start.
fn schema_with_sections(registry: &Registry, wanted: impl Fn(&str) -> bool) -> Value {
    // Draft 7 rather than 2020-12: editors' TOML and JSON language servers (taplo, VS Code)
    // support it fully, and its meta-schema, which the validator checks our schema against
    // once per process, costs a third as much to build: 2 ms of every start-up.
    let mut generator = SchemaSettings::draft07().into_generator();
    let names: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
    let server = generator.subschema_for::<ServerSection>();
    let data = generator.subschema_for::<DataSection>();
    let events = generator.subschema_for::<EventsSection>();
    let health = generator.subschema_for::<HealthSection>();
    let mut definitions = generator.take_definitions(true);
    let mut plugins = Map::new();
    for plugin in registry.plugins().iter().filter(|p| wanted(p.name)) {
        plugins.insert(
            plugin.name.to_string(),
            plugin_schema(plugin, &mut definitions),
        );
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "plexichat.toml",
        "description": "PlexiChat configuration for the plugins compiled into this binary.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "disabled": {
                "description": "Compiled-in plugins to keep from starting; their dependents stop with them.",
                "type": "array",
                "uniqueItems": true,
                "items": { "enum": names },
            },
            "enabled": {
                "description": "Plugins declared with `auto_start = false` to start anyway.",
                "type": "array",
                "uniqueItems": true,
                "items": { "enum": names },
            },
            "server": server,
            "data": data,
            "events": events,
            "health": health,
            "plugins": {
                "description": "One section per compiled-in plugin, holding that plugin's own settings.",
                "type": "object",
                "additionalProperties": false,
                "properties": plugins,
            },
        },
        "definitions": definitions,
    })
}

/// `plugin`'s section, its named types under `definitions/<plugin>/`.
///
/// One generator per plugin: schemars names a second type called `Settings` `Settings2`,
/// trying every number from 2 up, so one shared generator made the schema of N plugins that
/// each call their type `Settings` cost O(N²) (100 ms of every start at 1000 plugins), and
/// gave operators `Settings417` to look up. Plugin names are snake case, so they cannot meet
/// core's type names (`ServerSection`) in `definitions`.
fn plugin_schema(plugin: &PluginDescriptor, definitions: &mut Map<String, Value>) -> Value {
    match plugin.config {
        Some(spec) => {
            let mut settings = SchemaSettings::draft07();
            settings.definitions_path =
                format!("/definitions/{}", pointer_token(plugin.name)).into();
            let mut generator = settings.into_generator();
            let schema = (spec.schema)(&mut generator).to_value();
            let own = generator.take_definitions(true);
            if !own.is_empty() {
                definitions.insert(plugin.name.to_string(), Value::Object(own));
            }
            schema
        }
        None => json!({
            "description": format!("`{}` has no settings.", plugin.name),
            "type": "object",
            "additionalProperties": false,
        }),
    }
}

/// Every place where `document` breaks the schema of the plugins in `registry`.
#[cfg(feature = "validation")]
fn schema_issues(document: &Value, registry: &Registry) -> Vec<ConfigIssue> {
    use jsonschema::error::ValidationErrorKind;
    let present = document
        .pointer("/plugins")
        .and_then(Value::as_object)
        .map(|sections| sections.keys().map(String::as_str).collect::<BTreeSet<_>>())
        .unwrap_or_default();
    let needed = schema_with_sections(registry, |name| present.contains(name));
    // Messages look beyond the sections written (`bind` belongs in `[server]`, a key of
    // another plugin's section), so a document with problems gets the whole schema for them;
    // schema paths are the same in both.
    // A plugin's broken `#[schemars]` attribute (a bad regex) is therefore reported when its
    // section is written, not for every file; the test suite compiles the whole schema.
    let whole = std::cell::OnceCell::new();
    let whole_schema = || whole.get_or_init(|| schema(registry));
    match jsonschema::validator_for(&needed) {
        Ok(validator) => validator
            .iter_errors(document)
            .flat_map(|error| {
                let pointer = error.instance_path().as_str().to_string();
                let instance = error.instance();
                match error.kind() {
                    // The validator's "Additional properties are not allowed ('bnid' was
                    // unexpected)" at the section becomes one issue per key, at the key, that
                    // says what the section accepts.
                    ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
                        .iter()
                        .map(|key| {
                            // The keyword's location without `$ref`s: its parent is the
                            // section's own schema, whose `properties` are the valid keys.
                            let keys: Vec<&str> = error
                                .schema_path()
                                .as_str()
                                .strip_suffix("/additionalProperties")
                                .and_then(|section| whole_schema().pointer(section))
                                .and_then(|node| node.get("properties"))
                                .and_then(Value::as_object)
                                .map(|properties| properties.keys().map(String::as_str).collect())
                                .unwrap_or_default();
                            unknown_key(whole_schema(), &pointer, &keys, key, instance.get(key))
                        })
                        .collect(),
                    ValidationErrorKind::Enum { options } => {
                        let mut problem = error.to_string();
                        if let (Value::String(written), Value::Array(options)) =
                            (&**instance, &**options)
                            && let Some(near) =
                                closest(written, options.iter().filter_map(Value::as_str))
                        {
                            problem.push_str(&format!("; did you mean \"{near}\"?"));
                        }
                        vec![ConfigIssue::new(
                            pointer,
                            Some(instance.clone().into_owned()),
                            problem,
                        )]
                    }
                    _ => vec![ConfigIssue::new(
                        pointer,
                        Some(instance.clone().into_owned()),
                        error.to_string(),
                    )],
                }
            })
            .collect(),
        // Only a plugin's `#[config]` attributes (a bad `regex`, say) can break the
        // generated schema; say so instead of panicking.
        Err(error) => vec![ConfigIssue::new(
            "",
            None,
            format!(
                "the configuration schema generated from the compiled-in plugins does not \
                 compile at {} ({error}): a plugin's `#[schemars(...)]` attributes are wrong",
                error.schema_path()
            ),
        )],
    }
}

/// The issue for `key`, which the section at `pointer` does not accept: the closest of the
/// `keys` it does accept, or the section where `key` belongs, then all those `keys` (none
/// when the schema does not list them).
#[cfg(feature = "validation")]
fn unknown_key(
    schema: &Value,
    pointer: &str,
    keys: &[&str],
    key: &str,
    found: Option<&Value>,
) -> ConfigIssue {
    let mut problem = match section_name(pointer) {
        Some(section) => format!("unknown key `{key}` in {section}"),
        None => format!("unknown top-level key `{key}`"),
    };
    let near = closest(key, keys.iter().copied());
    if let Some(near) = near {
        problem.push_str(&format!("; did you mean `{near}`?"));
    } else if let Some(home) = home_of(schema, pointer, key) {
        problem.push_str(&format!("; {home}"));
    }
    if !keys.is_empty() {
        // After a question the list is a sentence of its own.
        let separator = if problem.ends_with('?') { " " } else { "; " };
        problem.push_str(&format!("{separator}valid keys: {}", keys.join(", ")));
    }
    let escaped = pointer_token(key);
    // A misspelt secret key (`admin_tokn`) holds a secret all the same.
    let found = match near {
        Some(near) if is_secret_key(near) => found.map(|_| Value::String(REDACTED.to_string())),
        _ => found.cloned(),
    };
    // Built empty and given its problem afterwards: the problem names keys, never the value,
    // so the scrubbing of secret values that `new` does to a problem text has nothing to
    // remove there, and could only mangle key names that contain a short secret.
    let mut issue = ConfigIssue::new(format!("{pointer}/{escaped}"), found, "");
    issue.problem = cut(&problem, MAX_PROBLEM_CHARS);
    issue
}

/// Where `key`, unknown at `pointer`, belongs, if it is a plugin's name or a key of another
/// section: `[plugins.my_awesome_plugin]` written as `[my_awesome_plugin]`, or `bind` written
/// above the `[server]` header or below another one.
#[cfg(feature = "validation")]
fn home_of(schema: &Value, pointer: &str, key: &str) -> Option<String> {
    let plugins = schema
        .pointer("/properties/plugins/properties")?
        .as_object()?;
    if pointer.is_empty() && plugins.contains_key(key) {
        return Some(format!("a plugin's settings go in `[plugins.{key}]`"));
    }
    let sections = ["server", "data", "events", "health"]
        .into_iter()
        .map(|name| (name.to_string(), format!("/properties/{name}")))
        .chain(plugins.keys().map(|name| {
            (
                format!("plugins.{name}"),
                format!("/properties/plugins/properties/{name}"),
            )
        }));
    sections
        .filter(|(name, _)| pointer != format!("/{}", name.replace('.', "/")))
        .find(|(_, node)| {
            section_properties(schema, node).is_some_and(|keys| keys.contains_key(key))
        })
        .map(|(name, _)| format!("it belongs in `[{name}]`"))
}

/// `key` as one token of a JSON pointer (RFC 6901): `~` and `/` escaped.
pub(crate) fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// How an operator writes the section at `pointer`: `[server]`,
/// `[plugins.my_awesome_plugin]`; `None` for the top level.
#[cfg(feature = "validation")]
fn section_name(pointer: &str) -> Option<String> {
    let mut name = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            name.push_str(&format!("[{segment}]"));
        } else {
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(&segment);
        }
    }
    (!name.is_empty()).then(|| format!("`[{name}]`"))
}

/// The candidate closest to `word`, if one is close enough to be what was meant: the same
/// word in another case, or one at most an edit per three characters away (an edit inserts,
/// deletes or replaces a character, or swaps two neighbours). Ties go to the first.
fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = word.chars().count().max(3) / 3;
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = if candidate.eq_ignore_ascii_case(word) {
                0
            } else {
                edit_distance(word, candidate)
            };
            (distance, candidate)
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// two neighbouring characters, each counting one (`bnid` is one edit from `bind`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: the one before the previous (for swaps), the previous, and the
    // one being filled.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            current[j] = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Without the validator (the `validation` feature, which the app and the test suite turn
/// on), a configuration that sets anything is refused rather than half-checked: the
/// constraints of `#[config]` types (ranges, lengths, patterns) would go unenforced. Plugin
/// crates' own test builds, which run on the defaults, skip compiling the validator's ~70
/// crates this way.
#[cfg(not(feature = "validation"))]
fn schema_issues(_document: &Value, _registry: &Registry) -> Vec<ConfigIssue> {
    vec![ConfigIssue::new(
        "",
        None,
        "this program was built without configuration validation, so it can only run on the \
         defaults; build it with the `validation` feature of `plexichat` (the `plexichat` \
         binary has it)",
    )]
}

fn validate(mut document: Value, registry: &Registry) -> Result<Config, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let known: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
    let known_list = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };

    // Sections for plugins that are not in this binary get a message that lists the ones
    // that are; they are then removed so the schema does not report them a second time.
    if let Some(Value::Object(sections)) = document.pointer_mut("/plugins") {
        let unknown: Vec<String> = sections
            .keys()
            .filter(|name| !known.contains(&name.as_str()))
            .cloned()
            .collect();
        for name in unknown {
            let value = sections.remove(&name);
            let guess = closest(&name, known.iter().copied())
                .map(|near| format!("did you mean `{near}`? "))
                .unwrap_or_default();
            let mut issue = ConfigIssue::new(
                format!("/plugins/{name}"),
                value,
                format!(
                    "no plugin `{name}` is compiled into this binary; {guess}compiled-in plugins: {known_list}"
                ),
            );
            // A section of a plugin that is not compiled in is nobody's.
            issue.plugin = None;
            issues.push(issue);
        }
        // Likewise for settings given to a plugin that takes none.
        for plugin in registry.plugins().iter().filter(|p| p.config.is_none()) {
            match sections.get(plugin.name) {
                Some(Value::Object(keys)) if keys.is_empty() => {}
                Some(_) => {
                    let value = sections.remove(plugin.name);
                    issues.push(ConfigIssue::new(
                        format!("/plugins/{}", plugin.name),
                        value,
                        "this plugin has no settings; remove the section",
                    ));
                }
                None => {}
            }
        }
    }

    // An empty document (no file, no overrides) is valid by construction: the schema requires
    // no key (a test holds it to that). Skipping the validator there saves compiling it, the
    // largest part of start-up without a configuration file.
    let empty = document.as_object().is_some_and(Map::is_empty);
    if !empty {
        issues.extend(schema_issues(&document, registry));
    }
    // Checks a schema cannot express, run even when the schema found problems so that one
    // pass reports everything.
    if let Some(Value::String(bind)) = document.pointer("/server/bind")
        && bind.parse::<SocketAddr>().is_err()
    {
        issues.push(ConfigIssue::new(
            "/server/bind",
            Some(json!(bind)),
            "not an IP address and port; write e.g. \"127.0.0.1:8000\" or \"[::1]:8000\"",
        ));
    }
    for pointer in DURATIONS {
        let Some(Value::String(text)) = document.pointer(pointer) else {
            continue;
        };
        let problem = match humantime::parse_duration(text) {
            Err(error) => {
                format!("not a duration ({error}); write e.g. \"30s\", \"500ms\" or \"2m\"")
            }
            // Zero would make a timer fire at once, forever; a year is beyond any sane wait
            // and keeps deadline arithmetic far from overflow.
            Ok(duration) if duration.is_zero() && pointer != "/server/ready_cache" => {
                "must be longer than zero".to_string()
            }
            Ok(duration) if duration > MAX_DURATION => "must be at most a year".to_string(),
            Ok(_) => continue,
        };
        issues.push(ConfigIssue::new(pointer, Some(json!(text)), problem));
    }
    if !issues.is_empty() {
        return Err(issues);
    }

    let section = |name: &str| document.get(name).cloned().unwrap_or(json!({}));
    let server: ServerSection =
        deserialize_section("/server", section("server"), &mut issues).unwrap_or_default();
    let data: DataSection =
        deserialize_section("/data", section("data"), &mut issues).unwrap_or_default();
    let events: EventsSection =
        deserialize_section("/events", section("events"), &mut issues).unwrap_or_default();
    let health: HealthSection =
        deserialize_section("/health", section("health"), &mut issues).unwrap_or_default();
    let names = |key: &str| -> BTreeSet<String> {
        document
            .get(key)
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (disabled, enabled) = (names("disabled"), names("enabled"));
    // A token a client cannot send in an `Authorization` header would lock everyone out.
    if let Some(Value::String(token)) = document.pointer("/server/admin_token")
        && !token.is_empty()
        && (token.trim() != token || !token.bytes().all(|b| b.is_ascii_graphic()))
    {
        issues.push(ConfigIssue::new(
            "/server/admin_token",
            Some(json!(token)),
            "the admin token must be visible ASCII without spaces (a trailing newline, say, \
             could never be sent in an `Authorization` header)",
        ));
    }
    for name in disabled.intersection(&enabled) {
        issues.push(ConfigIssue::new(
            "/enabled",
            Some(json!(name)),
            format!("`{name}` is both in `disabled` and in `enabled`; keep it in one"),
        ));
    }

    let mut plugin_values = BTreeMap::new();
    let mut plugin_configs = BTreeMap::new();
    for plugin in registry.plugins() {
        let Some(spec) = plugin.config else {
            continue;
        };
        let pointer = format!("/plugins/{}", plugin.name);
        let mut value = (spec.defaults)();
        if let (Value::Object(merged), Some(Value::Object(written))) =
            (&mut value, document.pointer(&pointer))
        {
            merged.extend(written.clone());
        }
        match (spec.parse)(value.clone()) {
            Ok(config) => {
                plugin_configs.insert(plugin.name, config);
                plugin_values.insert(plugin.name, value);
            }
            Err(problem) => issues.push(ConfigIssue::new(pointer, Some(value), problem)),
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Config {
        server,
        data,
        events,
        health,
        disabled,
        enabled,
        plugin_values,
        plugin_configs,
    })
}

fn deserialize_section<T: DeserializeOwned>(
    pointer: &str,
    value: Value,
    issues: &mut Vec<ConfigIssue>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value.clone()) {
        Ok(section) => Some(section),
        Err(error) => {
            let field = error.path().to_string();
            let (pointer, found) = if field == "." {
                (pointer.to_string(), Some(value))
            } else {
                let relative = format!("/{}", field.replace('.', "/"));
                let found = value.pointer(&relative).cloned();
                (format!("{pointer}{relative}"), found)
            };
            issues.push(ConfigIssue::new(pointer, found, error.inner().to_string()));
            None
        }
    }
}

/// A complete, commented configuration with every default, for the plugins in `registry`;
/// it passes [`Config::parse`] unchanged. Comments come from the schema's descriptions, so
/// they cannot disagree with `config schema`.
pub fn example(registry: &Registry) -> String {
    let names: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
    let schema = schema(registry);
    let mut out = String::new();
    out.push_str(
        "# plexichat.toml: generated by `plexichat config example` for this binary's plugins:\n",
    );
    out.push_str(&format!(
        "# {}.\n",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    ));
    out.push_str("# Any value can be overridden from the environment, e.g.\n");
    out.push_str(
        "# PLEXICHAT__SERVER__BIND=0.0.0.0:8080 or PLEXICHAT__PLUGINS__<NAME>__<KEY>=value.\n\n",
    );
    out.push_str("# Compiled-in plugins to keep from starting; their dependents stop with them.\n");
    out.push_str("disabled = []\n");
    out.push_str("# Plugins declared with `auto_start = false` to start anyway.\n");
    out.push_str("enabled = []\n");
    let server = serde_json::to_value(ServerSection::default()).unwrap_or(Value::Null);
    out.push('\n');
    write_description(&mut out, &schema, "/properties/server");
    out.push_str("[server]\n");
    write_keys(
        &mut out,
        server,
        section_properties(&schema, "/properties/server").as_ref(),
    );
    out.push_str(
        "# Bearer token for /api/v1/admin/*. Prefer the PLEXICHAT_ADMIN_TOKEN variable.\n",
    );
    out.push_str("# admin_token = \"...\"\n");
    out.push_str(
        "# A second address serving only /metrics, without authentication (unset: /metrics\n# is on `bind`, behind the admin token).\n",
    );
    out.push_str("# metrics_bind = \"127.0.0.1:9100\"\n");
    let data = serde_json::to_value(DataSection::default()).unwrap_or(Value::Null);
    out.push('\n');
    write_description(&mut out, &schema, "/properties/data");
    out.push_str("[data]\n");
    write_keys(
        &mut out,
        data,
        section_properties(&schema, "/properties/data").as_ref(),
    );
    let events = serde_json::to_value(EventsSection::default()).unwrap_or(Value::Null);
    out.push('\n');
    write_description(&mut out, &schema, "/properties/events");
    out.push_str("[events]\n");
    write_keys(
        &mut out,
        events,
        section_properties(&schema, "/properties/events").as_ref(),
    );
    let health = serde_json::to_value(HealthSection::default()).unwrap_or(Value::Null);
    out.push('\n');
    write_description(&mut out, &schema, "/properties/health");
    out.push_str("[health]\n");
    write_keys(
        &mut out,
        health,
        section_properties(&schema, "/properties/health").as_ref(),
    );
    for plugin in registry.plugins() {
        let Some(spec) = plugin.config else {
            continue;
        };
        let pointer = format!("/properties/plugins/properties/{}", plugin.name);
        out.push('\n');
        write_description(&mut out, &schema, &pointer);
        out.push_str(&format!("[plugins.{}]\n", plugin.name));
        write_keys(
            &mut out,
            (spec.defaults)(),
            section_properties(&schema, &pointer).as_ref(),
        );
    }
    out
}

/// Writes each key of `values` with its description and range as comments.
fn write_keys(out: &mut String, values: Value, properties: Option<&Map<String, Value>>) {
    let Value::Object(values) = values else {
        return;
    };
    for (key, value) in values {
        if let Some(property) = properties.and_then(|p| p.get(&key)) {
            if let Some(text) = property.get("description").and_then(Value::as_str) {
                for line in text.lines() {
                    out.push_str(&format!("# {line}\n"));
                }
            }
            let range = [("minimum", ">="), ("maximum", "<=")]
                .iter()
                .filter_map(|(bound, sign)| property.get(*bound).map(|v| format!("{sign} {v}")))
                .collect::<Vec<_>>();
            if !range.is_empty() {
                out.push_str(&format!("# allowed: {}\n", range.join(", ")));
            }
        }
        if value.is_null() {
            out.push_str(&format!("# {key} = (unset)\n"));
        } else {
            out.push_str(&format!("{key} = {}\n", toml_value(&value)));
        }
    }
}

/// Writes the description of the section at `pointer` in the schema (its type's doc
/// comment) as comments.
fn write_description(out: &mut String, schema: &Value, pointer: &str) {
    let text = section_node(schema, pointer)
        .and_then(|node| node.get("description"))
        .and_then(Value::as_str);
    for line in text.into_iter().flat_map(str::lines) {
        out.push_str(&format!("# {line}\n"));
    }
}

/// The `properties` of the schema node at `pointer`, following one `$ref` into
/// `definitions`.
fn section_properties(schema: &Value, pointer: &str) -> Option<Map<String, Value>> {
    section_node(schema, pointer)?
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
}

/// The schema node at `pointer`, following one `$ref` into `definitions`.
fn section_node<'a>(schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    let node = schema.pointer(pointer)?;
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => schema.pointer(reference.trim_start_matches('#')),
        None => Some(node),
    }
}

fn toml_value(value: &Value) -> String {
    toml::Value::try_from(value)
        .map(|value| value.to_string())
        .unwrap_or_else(|_| value.to_string())
}

#[cfg(all(test, not(feature = "validation")))]
mod tests {
    use super::*;

    /// A build without the validator runs on the defaults and refuses anything else, rather
    /// than leaving `#[config]` constraints unchecked.
    #[test]
    fn without_the_validator_only_the_defaults_are_accepted() {
        let registry = Registry::from_parts(vec![], vec![], vec![]).unwrap();
        assert!(Config::parse("", &[], &registry, "test.toml").is_ok());
        let errors =
            Config::parse("[server]\nbody_limit = 5\n", &[], &registry, "test.toml").unwrap_err();
        assert!(
            errors.issues[0]
                .problem
                .starts_with("this program was built without configuration validation"),
            "{errors}"
        );
    }
}

#[cfg(test)]
mod suggestions {
    use super::*;

    /// `(word, candidates, suggestion)`.
    #[test]
    fn closest_as_a_table() {
        let check = |word: &str, candidates: &[&str], expect: Option<&str>| {
            let found = closest(word, candidates.iter().copied());
            assert_eq!(found, expect, "{word} among {candidates:?}");
        };
        check("bnid", &["admin_token", "bind"], Some("bind"));
        check("intervall", &["enabled", "interval"], Some("interval"));
        check("BIND", &["bind", "body_limit"], Some("bind"));
        check(
            "max_temperature",
            &["max_temperature_c", "min_temperature_c"],
            Some("max_temperature_c"),
        );
        check("ports", &["port", "ports_open"], Some("port"));
        check("bat", &["bad", "bag"], Some("bad"));
        check("colour", &["bind", "body_limit", "data"], None);
        check("ab", &["cd"], None);
        check("anything", &[], None);
    }

    /// `(a, b, distance)`: insertions, deletions, substitutions and swaps of neighbours.
    #[test]
    fn edit_distance_as_a_table() {
        let check = |a: &str, b: &str, expect: usize| {
            assert_eq!(edit_distance(a, b), expect, "{a} → {b}");
            assert_eq!(edit_distance(b, a), expect, "{b} → {a}");
        };
        check("", "", 0);
        check("bind", "bind", 0);
        check("", "bind", 4);
        check("bnid", "bind", 1);
        check("intervall", "interval", 1);
        check("kitten", "sitting", 3);
        check("größe", "grösse", 2);
    }
}
