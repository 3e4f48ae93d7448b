//! From a JSON document to a [`Config`]: sections of plugins that are not compiled in, the
//! schema, the checks a schema cannot express, then the typed sections and each plugin's own
//! configuration.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::registry::Registry;

use super::sections::{DURATIONS, MAX_DURATION};
use super::suggest::closest;
#[cfg(feature = "validation")]
use super::validator::schema_issues;
use super::{Config, ConfigIssue, DataSection, EventsSection, HealthSection, ServerSection};

/// The [`Config`] that `document` describes, or every problem with it.
pub(super) fn validate(
    mut document: Value,
    registry: &Registry,
) -> Result<Config, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    foreign_plugin_sections(&mut document, registry, &mut issues);
    // An empty document (no file, no overrides) is valid by construction: the schema requires
    // no key (a test holds it to that). Skipping the validator there saves compiling it, the
    // largest part of start-up without a configuration file.
    let empty = document.as_object().is_some_and(Map::is_empty);
    if !empty {
        issues.extend(schema_issues(&document, registry));
    }
    // Checks a schema cannot express, run even when the schema found problems so that one
    // pass reports everything.
    bind_and_duration_issues(&document, &mut issues);
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
    let (disabled, enabled) = (names(&document, "disabled"), names(&document, "enabled"));
    admin_token_issue(&document, &mut issues);
    for name in disabled.intersection(&enabled) {
        issues.push(ConfigIssue::new(
            "/enabled",
            Some(json!(name)),
            format!("`{name}` is both in `disabled` and in `enabled`; keep it in one"),
        ));
    }
    let (plugin_values, plugin_configs) = plugin_sections(&document, registry, &mut issues);
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

/// Refuses a section of a plugin that is not compiled in (listing the ones that are) and
/// settings given to a plugin that takes none; both are removed from `document` so that the
/// schema does not report them a second time.
fn foreign_plugin_sections(
    document: &mut Value,
    registry: &Registry,
    issues: &mut Vec<ConfigIssue>,
) {
    let known: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
    let known_list = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    let Some(Value::Object(sections)) = document.pointer_mut("/plugins") else {
        return;
    };
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

/// Refuses a `bind` that is not an IP address and port, and a duration that does not parse,
/// is zero (where zero is not allowed) or is longer than a year.
fn bind_and_duration_issues(document: &Value, issues: &mut Vec<ConfigIssue>) {
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
}

/// The plugin names listed under `key` (`disabled` or `enabled`).
fn names(document: &Value, key: &str) -> BTreeSet<String> {
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
}

/// The shortest admin token accepted: 32 bytes, as `openssl rand -hex 16` prints; the one
/// the server generates is 64 characters.
const MIN_ADMIN_TOKEN_BYTES: usize = 32;

/// Refuses an admin token that is not visible ASCII without spaces (a token a client cannot
/// send in an `Authorization` header would lock everyone out) or shorter than
/// [`MIN_ADMIN_TOKEN_BYTES`] (a short one is guessed).
fn admin_token_issue(document: &Value, issues: &mut Vec<ConfigIssue>) {
    let Some(Value::String(token)) = document.pointer("/server/admin_token") else {
        return;
    };
    if token.is_empty() {
        return;
    }
    if token.trim() != token || !token.bytes().all(|b| b.is_ascii_graphic()) {
        issues.push(ConfigIssue::new(
            "/server/admin_token",
            Some(json!(token)),
            "the admin token must be visible ASCII without spaces (a trailing newline, say, \
             could never be sent in an `Authorization` header)",
        ));
    } else if token.len() < MIN_ADMIN_TOKEN_BYTES {
        issues.push(ConfigIssue::new(
            "/server/admin_token",
            Some(json!(token)),
            format!(
                "the admin token is {} bytes; it must be at least {MIN_ADMIN_TOKEN_BYTES} \
                 (`openssl rand -hex 32` prints one), or leave it unset and the server writes \
                 one to <data>/admin_token",
                token.len()
            ),
        ));
    }
}

/// Each configured plugin's typed configuration, by name.
type PluginConfigs = BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>;

/// Each plugin's section, its defaults overlaid with what `document` sets, as JSON and as
/// the plugin's typed configuration; refuses a section the plugin's own parser rejects.
fn plugin_sections(
    document: &Value,
    registry: &Registry,
    issues: &mut Vec<ConfigIssue>,
) -> (BTreeMap<&'static str, Value>, PluginConfigs) {
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
    (plugin_values, plugin_configs)
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
