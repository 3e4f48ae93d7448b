//! The configuration file, `plexichat.toml`: parsed, overridden from the environment, and
//! validated against one JSON Schema made for exactly the plugins compiled into this binary.
//!
//! Validation is pure: [`Config::parse`] reads only the text and the environment pairs it is
//! given, and reports every problem at once, each with its JSON pointer. Nothing is started,
//! opened or written until a valid [`Config`] exists.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::plugin::PluginDescriptor;
use crate::registry::Registry;
use crate::server::ServerOptions;

/// The prefix of environment overrides: `PLEXICHAT__SECTION__KEY=value`.
pub const ENV_PREFIX: &str = "PLEXICHAT__";
/// The admin token may also come from this variable (a common name for a secret).
pub const ENV_ADMIN_TOKEN: &str = "PLEXICHAT_ADMIN_TOKEN";
/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "plexichat.toml";

/// `[server]`: how the HTTP server listens and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on: an IP address and a port.
    pub bind: SocketAddr,
    /// Bearer token for `/api/v1/admin/*`. Prefer `PLEXICHAT_ADMIN_TOKEN` over writing it here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// A request not answered within this time gets 408, e.g. `"30s"`, `"2m"`.
    #[schemars(example = "30s")]
    pub request_timeout: String,
    /// Largest accepted request body in bytes; larger bodies get 413.
    #[schemars(range(min = 1))]
    pub body_limit: u64,
    /// Longest a plugin's start or stop may take, and how long shutdown waits for its
    /// background tasks, e.g. `"10s"`.
    #[schemars(example = "10s")]
    pub phase_timeout: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        let options = ServerOptions::default();
        ServerSection {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            admin_token: None,
            request_timeout: humantime::format_duration(options.request_timeout).to_string(),
            body_limit: options.body_limit as u64,
            phase_timeout: humantime::format_duration(options.phase_timeout).to_string(),
        }
    }
}

/// `[data]`: where the server keeps its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// Directory for everything the server writes; created at start if missing.
    pub dir: PathBuf,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            dir: PathBuf::from("./data"),
        }
    }
}

/// How `#[plugin(config = T)]` describes `T` to the runtime; written by the macro.
pub struct ConfigSpec {
    /// Rust name of the configuration type, for messages.
    pub type_name: &'static str,
    /// Adds `T`'s schema to a generator shared by the whole document.
    pub schema: fn(&mut SchemaGenerator) -> Schema,
    /// `T::default()` as JSON, for `config example` and for plugins without a section.
    pub defaults: fn() -> Value,
    /// Deserialises a validated section into a `T`.
    pub parse: fn(Value) -> Result<Arc<dyn Any + Send + Sync>, String>,
}

impl fmt::Debug for ConfigSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name)
    }
}

#[doc(hidden)]
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

#[doc(hidden)]
pub fn defaults_of<T: Default + Serialize>() -> Value {
    serde_json::to_value(T::default()).unwrap_or(Value::Null)
}

#[doc(hidden)]
pub fn parse_as<T: DeserializeOwned + Send + Sync + 'static>(
    value: Value,
) -> Result<Arc<dyn Any + Send + Sync>, String> {
    serde_path_to_error::deserialize::<_, T>(value)
        .map(|config| Arc::new(config) as Arc<dyn Any + Send + Sync>)
        .map_err(|error| match error.path().to_string().as_str() {
            "." => error.inner().to_string(),
            path => format!("{path}: {}", error.inner()),
        })
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
    fn new(pointer: impl Into<String>, found: Option<Value>, problem: impl Into<String>) -> Self {
        let pointer = pointer.into();
        let plugin = pointer
            .strip_prefix("/plugins/")
            .map(|rest| rest.split('/').next().unwrap_or_default().to_string());
        ConfigIssue {
            plugin,
            pointer,
            found,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        if let Some(plugin) = &self.plugin {
            write!(f, "plugin `{plugin}`: ")?;
        }
        write!(f, "{pointer}: {}", self.problem)
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
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A validated configuration, ready to start a server with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`.
    pub server: ServerSection,
    /// `[data]`.
    pub data: DataSection,
    /// Plugins kept from starting, as written (dependents are disabled with them at start).
    pub disabled: BTreeSet<String>,
    /// Each compiled-in plugin's section after defaults, as JSON (what `status` shows).
    pub plugin_values: BTreeMap<&'static str, Value>,
    /// Each configured plugin's typed configuration.
    pub(crate) plugin_configs: BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>,
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
        apply_env(&mut document, env).map_err(errors)?;
        let document = serde_json::to_value(&document)
            .map_err(|error| errors(vec![ConfigIssue::new("", None, error.to_string())]))?;
        validate(document, registry).map_err(errors)
    }

    /// Reads `path` (or [`DEFAULT_FILE`] if it exists, or nothing) and parses it with `env`.
    /// The only I/O is reading that one file; a file that cannot be read is reported like
    /// any other problem.
    pub fn load(
        path: Option<&std::path::Path>,
        env: &[(String, String)],
        registry: &Registry,
    ) -> Result<Config, ConfigErrors> {
        let default = std::path::Path::new(DEFAULT_FILE);
        let path = path.or_else(|| default.exists().then_some(default));
        let Some(path) = path else {
            return Config::parse("", env, registry, "the built-in defaults");
        };
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, env, registry, &source),
            Err(error) => Err(ConfigErrors {
                issues: vec![ConfigIssue::new(
                    "",
                    None,
                    format!("cannot read the file: {error}"),
                )],
                source,
            }),
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
            ("server.phase_timeout", a.phase_timeout != b.phase_timeout),
            ("data.dir", self.data != other.data),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| name)
        .collect()
    }

    /// The limits `[server]` sets, for [`crate::server::serve`].
    pub fn server_options(&self) -> ServerOptions {
        ServerOptions {
            // Validation parsed this already; the fallback is unreachable but harmless.
            request_timeout: humantime::parse_duration(&self.server.request_timeout)
                .unwrap_or(ServerOptions::default().request_timeout),
            body_limit: usize::try_from(self.server.body_limit).unwrap_or(usize::MAX),
            admin_token: self.server.admin_token.as_deref().map(Arc::from),
            phase_timeout: humantime::parse_duration(&self.server.phase_timeout)
                .unwrap_or(ServerOptions::default().phase_timeout),
            strict: false,
        }
    }

    /// The typed configuration of plugin `name`, if it declares one.
    pub fn plugin_config(&self, name: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        self.plugin_configs.get(name).cloned()
    }
}

/// Applies `PLEXICHAT__A__B=value` as `a.b = value`; values are read as TOML (`5`, `true`,
/// `"text"`, `[1, 2]`), and anything that is not valid TOML is taken as a string.
fn apply_env(document: &mut toml::Table, env: &[(String, String)]) -> Result<(), Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let mut overrides: Vec<(Vec<String>, &str)> = env
        .iter()
        .filter_map(|(name, value)| {
            if name == ENV_ADMIN_TOKEN {
                return Some((vec!["server".into(), "admin_token".into()], value.as_str()));
            }
            let path = name.strip_prefix(ENV_PREFIX)?;
            Some((
                path.split("__").map(str::to_ascii_lowercase).collect(),
                value.as_str(),
            ))
        })
        .collect();
    // A specific variable beats the generic one; sorting makes the result independent of the
    // order the environment listed them in.
    overrides.sort();
    for (path, raw) in overrides {
        let pointer = format!("/{}", path.join("/"));
        if path.iter().any(String::is_empty) {
            issues.push(ConfigIssue::new(
                pointer,
                None,
                "environment override has an empty segment; separate levels with `__`",
            ));
            continue;
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut table| table.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        if !insert_at(document, &path, value) {
            issues.push(ConfigIssue::new(
                pointer,
                None,
                "environment override goes below a value that is not a table",
            ));
        }
    }
    if issues.is_empty() {
        Ok(())
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
    // Draft 7 rather than 2020-12: editors' TOML and JSON language servers (taplo, VS Code)
    // support it fully, and its meta-schema, which the validator checks our schema against
    // once per process, costs a third as much to build: 2 ms of every start-up.
    let mut generator = SchemaSettings::draft07().into_generator();
    let names: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
    let mut plugins = Map::new();
    for plugin in registry.plugins() {
        plugins.insert(
            plugin.name.to_string(),
            plugin_schema(plugin, &mut generator),
        );
    }
    let server = generator.subschema_for::<ServerSection>();
    let data = generator.subschema_for::<DataSection>();
    let definitions = generator.take_definitions(true);
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
            "server": server,
            "data": data,
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

fn plugin_schema(plugin: &PluginDescriptor, generator: &mut SchemaGenerator) -> Value {
    match plugin.config {
        Some(spec) => (spec.schema)(generator).to_value(),
        None => json!({
            "description": format!("`{}` has no settings.", plugin.name),
            "type": "object",
            "additionalProperties": false,
        }),
    }
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
            issues.push(ConfigIssue {
                plugin: None,
                pointer: format!("/plugins/{name}"),
                found: value,
                problem: format!(
                    "no plugin `{name}` is compiled into this binary; compiled-in plugins: {known_list}"
                ),
            });
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
        let schema = schema(registry);
        match jsonschema::validator_for(&schema) {
            Ok(validator) => {
                for error in validator.iter_errors(&document) {
                    let pointer = error.instance_path().as_str().to_string();
                    let found = Some(error.instance().clone().into_owned());
                    issues.push(ConfigIssue::new(pointer, found, error.to_string()));
                }
            }
            // Only a plugin's `#[config]` attributes (a bad `regex`, say) can break the
            // generated schema; say so instead of panicking.
            Err(error) => issues.push(ConfigIssue::new(
                "",
                None,
                format!(
                    "the configuration schema generated from the compiled-in plugins does not \
                     compile at {} ({error}): a plugin's `#[schemars(...)]` attributes are wrong",
                    error.schema_path()
                ),
            )),
        }
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
    for pointer in ["/server/request_timeout", "/server/phase_timeout"] {
        if let Some(Value::String(timeout)) = document.pointer(pointer)
            && let Err(error) = humantime::parse_duration(timeout)
        {
            issues.push(ConfigIssue::new(
                pointer,
                Some(json!(timeout)),
                format!("not a duration ({error}); write e.g. \"30s\", \"500ms\" or \"2m\""),
            ));
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }

    let section = |name: &str| document.get(name).cloned().unwrap_or(json!({}));
    let server: ServerSection =
        deserialize_section("/server", section("server"), &mut issues).unwrap_or_default();
    let data: DataSection =
        deserialize_section("/data", section("data"), &mut issues).unwrap_or_default();
    let disabled: BTreeSet<String> = document
        .get("disabled")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();

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
        disabled,
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
/// it passes [`Config::parse`] unchanged.
pub fn example(registry: &Registry) -> String {
    let server = ServerSection::default();
    let data = DataSection::default();
    let names: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
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
    out.push_str("disabled = []\n\n");
    out.push_str("[server]\n");
    out.push_str("# Address to listen on: an IP address and a port.\n");
    out.push_str(&format!("bind = \"{}\"\n", server.bind));
    out.push_str(
        "# Bearer token for /api/v1/admin/*. Prefer the PLEXICHAT_ADMIN_TOKEN variable.\n",
    );
    out.push_str("# admin_token = \"...\"\n");
    out.push_str("# A request not answered within this time gets 408.\n");
    out.push_str(&format!(
        "request_timeout = \"{}\"\n",
        server.request_timeout
    ));
    out.push_str("# Largest accepted request body in bytes; larger bodies get 413.\n");
    out.push_str(&format!("body_limit = {}\n", server.body_limit));
    out.push_str(
        "# Longest a plugin's start or stop may take; also how long shutdown waits for tasks.\n",
    );
    out.push_str(&format!("phase_timeout = \"{}\"\n\n", server.phase_timeout));
    out.push_str("[data]\n");
    out.push_str("# Directory for everything the server writes; created at start if missing.\n");
    out.push_str(&format!("dir = {}\n", toml_value(&json!(data.dir))));

    let schema = schema(registry);
    for plugin in registry.plugins() {
        let Some(spec) = plugin.config else {
            continue;
        };
        out.push_str(&format!("\n[plugins.{}]\n", plugin.name));
        let defaults = (spec.defaults)();
        let properties = plugin_properties(&schema, plugin.name);
        if let Value::Object(values) = defaults {
            for (key, value) in values {
                if let Some(property) = properties.as_ref().and_then(|p| p.get(&key)) {
                    if let Some(text) = property.get("description").and_then(Value::as_str) {
                        for line in text.lines() {
                            out.push_str(&format!("# {line}\n"));
                        }
                    }
                    let range = [("minimum", ">="), ("maximum", "<=")]
                        .iter()
                        .filter_map(|(bound, sign)| {
                            property.get(*bound).map(|v| format!("{sign} {v}"))
                        })
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
    }
    out
}

/// The `properties` of a plugin's schema, following one `$ref` into `definitions`.
fn plugin_properties(schema: &Value, plugin: &str) -> Option<Map<String, Value>> {
    let mut node = schema.pointer(&format!("/properties/plugins/properties/{plugin}"))?;
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        node = schema.pointer(reference.trim_start_matches('#'))?;
    }
    node.get("properties").and_then(Value::as_object).cloned()
}

fn toml_value(value: &Value) -> String {
    toml::Value::try_from(value)
        .map(|value| value.to_string())
        .unwrap_or_else(|_| value.to_string())
}
