//! The plugin settings an admin saves from the settings page: `<data>/settings.toml`, which
//! holds `[plugins.<name>]` sections only. A key set in it wins over the same key in
//! `plexichat.toml`; the environment and the command line win over both.
//!
//! Why a file of its own: `plexichat.toml` is the operator's, often under version control or
//! generated; the server never rewrites it. The page's changes live in the data folder, which
//! the server owns and backs up, and `config check` and reloads read both, so a restart keeps
//! what was saved and every message names the file a value came from.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{ConfigErrors, ConfigIssue};

/// The file's name in the data folder.
pub const SETTINGS_FILE: &str = "settings.toml";

/// Largest settings file read.
const MAX_BYTES: u64 = 256 * 1024;

/// Where the settings saved from the page live.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(SETTINGS_FILE)
}

/// The file's text, or `None` when there is none.
pub(super) fn read(path: &Path) -> Result<Option<String>, ConfigErrors> {
    match std::fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(problem(path, format!("cannot read the file: {error}"))),
        Ok(metadata) if metadata.len() > MAX_BYTES => {
            return Err(problem(
                path,
                format!("the file is larger than {MAX_BYTES} bytes"),
            ));
        }
        Ok(_) => {}
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|error| problem(path, format!("cannot read the file: {error}")))
}

fn problem(path: &Path, text: String) -> ConfigErrors {
    ConfigErrors {
        source: path.display().to_string(),
        issues: vec![ConfigIssue::new("", None, text)],
    }
}

/// Writes the settings file's plugin keys into `document`; returns the pointer of each key
/// set, for messages to say where a value came from.
pub(super) fn overlay(
    document: &mut toml::Table,
    text: &str,
    source: &str,
) -> Result<Vec<String>, ConfigErrors> {
    let errors = |issues| ConfigErrors {
        source: source.to_string(),
        issues,
    };
    let settings: toml::Table = toml::from_str(text).map_err(|error| {
        errors(vec![ConfigIssue::new(
            "",
            None,
            format!("not valid TOML: {}", error.message().trim()),
        )])
    })?;
    let mut set = Vec::new();
    for (key, value) in settings {
        let toml::Value::Table(plugins) = value else {
            return Err(errors(vec![not_plugins(&key)]));
        };
        if key != "plugins" {
            return Err(errors(vec![not_plugins(&key)]));
        }
        for (plugin, section) in plugins {
            let toml::Value::Table(section) = section else {
                return Err(errors(vec![ConfigIssue::new(
                    format!("/plugins/{plugin}"),
                    None,
                    "a plugin's settings are a table",
                )]));
            };
            let target = document
                .entry("plugins")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(target) = target else {
                continue;
            };
            let target = target
                .entry(plugin.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(target) = target else {
                continue;
            };
            for (name, value) in section {
                set.push(format!("/plugins/{plugin}/{name}"));
                target.insert(name, value);
            }
        }
    }
    Ok(set)
}

fn not_plugins(key: &str) -> ConfigIssue {
    ConfigIssue::new(
        format!("/{key}"),
        None,
        "the settings saved from the page hold `[plugins.<name>]` sections only; set the rest in plexichat.toml",
    )
}

/// The keys of `plugin` the settings file sets.
pub fn overridden(data_dir: &Path, plugin: &str) -> Vec<String> {
    let text = read(&path(data_dir)).ok().flatten().unwrap_or_default();
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    table
        .get("plugins")
        .and_then(|plugins| plugins.get(plugin))
        .and_then(toml::Value::as_table)
        .map(|section| section.keys().cloned().collect())
        .unwrap_or_default()
}

/// Why the settings could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// A value has no TOML form (a JSON `null` inside a list, say).
    #[error("`{key}` cannot be written to the settings file: {problem}")]
    Value {
        /// The key.
        key: String,
        /// What TOML said.
        problem: String,
    },
    /// The file could not be read or written.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// The file there is not valid settings.
    #[error("{0}")]
    Invalid(String),
}

/// What the file held before a save, to put back if the new settings are refused.
#[derive(Debug)]
pub struct Previous {
    path: PathBuf,
    text: Option<String>,
}

impl Previous {
    /// Puts the file back as it was.
    pub fn restore(self) -> std::io::Result<()> {
        match self.text {
            Some(text) => write_private(&self.path, text.as_bytes()),
            None => match std::fs::remove_file(&self.path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            },
        }
    }
}

/// Sets `plugin`'s keys in the settings file from `changes` (a `null` removes the key, so it
/// falls back to `plexichat.toml` or its default; `None` for `changes` removes the whole
/// section); returns what was there before.
pub fn save(
    data_dir: &Path,
    plugin: &str,
    changes: Option<&Map<String, Value>>,
) -> Result<Previous, SaveError> {
    let path = path(data_dir);
    let before = read(&path).map_err(|errors| SaveError::Invalid(errors.to_string()))?;
    let mut table: toml::Table = match &before {
        Some(text) => toml::from_str(text).map_err(|error| {
            SaveError::Invalid(format!(
                "{} is not valid TOML: {}",
                path.display(),
                error.message().trim()
            ))
        })?,
        None => toml::Table::new(),
    };
    let plugins = table
        .entry("plugins")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(plugins) = plugins else {
        return Err(SaveError::Invalid(format!(
            "`plugins` in {} is not a table",
            path.display()
        )));
    };
    match changes {
        None => {
            plugins.remove(plugin);
        }
        Some(changes) => {
            let section = plugins
                .entry(plugin.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section) = section else {
                return Err(SaveError::Invalid(format!(
                    "`plugins.{plugin}` in {} is not a table",
                    path.display()
                )));
            };
            for (key, value) in changes {
                if value.is_null() {
                    section.remove(key);
                    continue;
                }
                let value = toml::Value::try_from(value).map_err(|error| SaveError::Value {
                    key: key.clone(),
                    problem: error.to_string(),
                })?;
                section.insert(key.clone(), value);
            }
            if section.is_empty() {
                plugins.remove(plugin);
            }
        }
    }
    let text = format!(
        "# Plugin settings saved from the admin settings page; read over plexichat.toml.\n# Remove a key (or this file) to fall back to plexichat.toml and the defaults.\n{}",
        toml::to_string(&table).map_err(|error| SaveError::Invalid(error.to_string()))?
    );
    crate::storage::data_dir::create(data_dir).map_err(|error| SaveError::Io {
        path: data_dir.display().to_string(),
        error: std::io::Error::other(error.to_string()),
    })?;
    write_private(&path, text.as_bytes()).map_err(|error| SaveError::Io {
        path: path.display().to_string(),
        error,
    })?;
    Ok(Previous { path, text: before })
}

/// Writes `bytes` to `path` through a temporary file and a rename, readable by the owner
/// only (settings may hold secrets): a reader sees the old file or the new one, never half.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("toml.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saving_sets_and_removes_keys_and_restoring_puts_the_file_back() {
        let dir = std::env::temp_dir().join(format!("plexichat-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut changes = Map::new();
        changes.insert("interval".into(), Value::from(5));
        changes.insert("name".into(), Value::from("x"));
        let first = save(&dir, "awesome", Some(&changes)).unwrap();
        assert_eq!(overridden(&dir, "awesome"), ["interval", "name"]);
        let mut remove = Map::new();
        remove.insert("name".into(), Value::Null);
        let second = save(&dir, "awesome", Some(&remove)).unwrap();
        assert_eq!(overridden(&dir, "awesome"), ["interval"]);
        second.restore().unwrap();
        assert_eq!(overridden(&dir, "awesome"), ["interval", "name"]);
        first.restore().unwrap();
        assert!(!path(&dir).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_plugin_sections_are_read_over_the_file() {
        let mut document: toml::Table = toml::from_str("[plugins.a]\nx = 1\ny = 2\n").unwrap();
        let set = overlay(&mut document, "[plugins.a]\nx = 3\n", "settings.toml").unwrap();
        assert_eq!(set, ["/plugins/a/x"]);
        assert_eq!(document["plugins"]["a"]["x"].as_integer(), Some(3));
        assert_eq!(document["plugins"]["a"]["y"].as_integer(), Some(2));
        let refused = overlay(&mut document, "[server]\nbind = \"0.0.0.0:1\"\n", "s").unwrap_err();
        assert!(
            refused.to_string().contains("[plugins.<name>]"),
            "{refused}"
        );
    }
}
