//! The parse pipeline: TOML text, then environment overrides, then command-line flags, then
//! validation into a [`Config`], with every problem reported at once and named by what set
//! it.

use crate::registry::Registry;

use super::validate::validate;
use super::{Config, ConfigErrors, ConfigIssue};

/// The prefix of environment overrides: `PLEXICHAT__SECTION__KEY=value`.
pub const ENV_PREFIX: &str = "PLEXICHAT__";
/// The admin token may also come from this variable (a common name for a secret).
pub const ENV_ADMIN_TOKEN: &str = "PLEXICHAT_ADMIN_TOKEN";

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
        Config::parse_layers(text, None, env, flags, registry, source)
    }

    /// Like [`Config::parse_with_flags`], with the settings saved from the admin page
    /// (`settings`: the text of `<data>/settings.toml` and its name) read over the file and
    /// under the environment and the flags.
    pub fn parse_layers(
        text: &str,
        settings: Option<(&str, &str)>,
        env: &[(String, String)],
        flags: &[Flag],
        registry: &Registry,
        source: &str,
    ) -> Result<Config, ConfigErrors> {
        let errors = |issues| ConfigErrors {
            source: source.to_string(),
            issues,
        };
        let mut document: toml::Table =
            toml::from_str(text).map_err(|error| errors(vec![syntax_issue(text, &error)]))?;
        // What set a value, for messages: the settings file first, so that a variable for
        // the same key (applied after it) is named instead.
        let mut origins: Vec<(String, String)> = Vec::new();
        if let Some((settings, settings_source)) = settings {
            for pointer in super::settings::overlay(&mut document, settings, settings_source)? {
                origins.push((pointer, settings_source.to_string()));
            }
        }
        let from_env = apply_env(&mut document, env).map_err(errors)?;
        origins.extend(from_env);
        let from_env = origins;
        for flag in flags {
            let path: Vec<String> = flag.pointer[1..].split('/').map(String::from).collect();
            insert_at(&mut document, &path, flag.value.clone());
        }
        let document = serde_json::to_value(&document)
            .map_err(|error| errors(vec![ConfigIssue::new("", None, error.to_string())]))?;
        validate(document, registry).map_err(|mut issues| {
            name_origins(&mut issues, flags, &from_env);
            errors(issues)
        })
    }
}

/// The issue for text that is not TOML, with the line and column where it stops being TOML.
fn syntax_issue(text: &str, error: &toml::de::Error) -> ConfigIssue {
    let place = error
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    ConfigIssue::new(
        "",
        None,
        format!("not valid TOML{place}: {}", error.message().trim()).replace('\n', " "),
    )
}

/// Adds to each issue about a value that is not in the file what set it, so that nobody
/// searches the file for it. Flags beat the environment; of two variables for one key, the
/// one applied last won.
fn name_origins(issues: &mut [ConfigIssue], flags: &[Flag], from_env: &[(String, String)]) {
    for issue in issues {
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
            env_value(raw)
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

/// An override's value read as TOML (`5`, `true`, `"text"`, `[1, 2]`), or as the string it
/// is when it is not valid TOML.
fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
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
