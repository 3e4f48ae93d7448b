//! Generates the app's plugin wiring from the plugin crates: one optional dependency and one
//! feature per plugin in `app/Cargo.toml` (a plugin's feature enables its dependencies'), the
//! `all` feature, and `app/src/plugins.rs` with the `extern crate` lines that keep each
//! enabled plugin's registrations linked.

use std::path::Path;

use anyhow::Context;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Value};

use crate::workspace::{self, PluginCrate};

/// A file and the contents it should have.
#[derive(Debug)]
pub struct Generated {
    /// Path relative to the workspace root.
    pub path: &'static str,
    /// Expected contents.
    pub contents: String,
}

/// Computes every generated file from the workspace at `root`.
pub fn generate(root: &Path) -> anyhow::Result<Vec<Generated>> {
    let plugins = workspace::plugins(root)?;
    let manifest_path = root.join("app/Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    Ok(vec![
        Generated {
            path: "app/Cargo.toml",
            contents: app_manifest(&manifest, &plugins)?,
        },
        Generated {
            path: "app/src/plugins.rs",
            contents: plugins_rs(&plugins),
        },
    ])
}

/// Files whose contents differ from what [`generate`] computes.
pub fn stale(root: &Path) -> anyhow::Result<Vec<&'static str>> {
    Ok(generate(root)?
        .into_iter()
        .filter(|file| {
            std::fs::read_to_string(root.join(file.path))
                .ok()
                .as_deref()
                != Some(file.contents.as_str())
        })
        .map(|file| file.path)
        .collect())
}

/// Writes every generated file that differs; returns the ones that changed.
///
/// `build-app` and `run` call this before every build, so each file is replaced by a rename:
/// cargo or an editor reading `app/Cargo.toml` at that moment sees the old or the new file,
/// never half of one.
pub fn write(root: &Path) -> anyhow::Result<Vec<&'static str>> {
    let mut changed = Vec::new();
    for file in generate(root)? {
        let path = root.join(file.path);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(file.contents.as_str()) {
            let partial = path.with_extension(format!("partial-{}", std::process::id()));
            std::fs::write(&partial, &file.contents)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            std::fs::rename(&partial, &path)
                .with_context(|| format!("cannot replace {}", path.display()))?;
            changed.push(file.path);
        }
    }
    Ok(changed)
}

fn app_manifest(current: &str, plugins: &[PluginCrate]) -> anyhow::Result<String> {
    let mut doc: DocumentMut = current
        .parse()
        .context("app/Cargo.toml is not valid TOML")?;
    let is_plugin_dep = |value: &Item| {
        value
            .get("path")
            .and_then(|path| path.as_str())
            .is_some_and(|path| path.starts_with("../plugins/"))
    };

    let dependencies = doc["dependencies"]
        .as_table_mut()
        .context("app/Cargo.toml has no [dependencies] table")?;
    let stale_deps: Vec<String> = dependencies
        .iter()
        .filter(|(_, value)| is_plugin_dep(value))
        .map(|(name, _)| name.to_string())
        .collect();
    for name in &stale_deps {
        dependencies.remove(name);
    }
    for plugin in plugins {
        let mut table = InlineTable::new();
        table.insert("path", format!("../plugins/{}", plugin.name).into());
        table.insert("optional", true.into());
        dependencies.insert(&plugin.name, Item::Value(Value::InlineTable(table)));
    }

    let features = doc["features"]
        .as_table_mut()
        .context("app/Cargo.toml has no [features] table")?;
    let stale_features: Vec<String> = features
        .iter()
        .filter(|(name, value)| {
            *name == "all"
                || value.as_array().is_some_and(|values| {
                    values
                        .iter()
                        .any(|v| v.as_str() == Some(&format!("dep:{name}")))
                })
        })
        .map(|(name, _)| name.to_string())
        .collect();
    for name in &stale_features {
        features.remove(name);
    }
    let names: Vec<&str> = plugins.iter().map(|plugin| plugin.name.as_str()).collect();
    features.insert(
        "all",
        Item::Value(Value::Array(Array::from_iter(names.iter().copied()))),
    );
    for plugin in plugins {
        let mut enables = vec![format!("dep:{}", plugin.name)];
        enables.extend(plugin.dependencies.iter().cloned());
        features.insert(
            &plugin.name,
            Item::Value(Value::Array(Array::from_iter(enables))),
        );
    }
    if let Some(default) = features.get("default").and_then(Item::as_array) {
        for name in default.iter().filter_map(|value| value.as_str()) {
            anyhow::ensure!(
                features.contains_key(name),
                "app/Cargo.toml: default feature `{name}` names no plugin or feature; \
                 remove it from `default`"
            );
        }
    }
    Ok(doc.to_string())
}

pub(crate) fn plugins_rs(plugins: &[PluginCrate]) -> String {
    let mut out = String::from(
        "//! The plugins this binary can contain, one cargo feature each.\n\
         //!\n\
         //! Generated by `cargo xtask codegen` (run by `cargo xtask new-plugin`); do not edit.\n\
         //! Each `extern crate` is what makes the linker keep that plugin's registrations: a crate\n\
         //! that nothing references is dropped together with its link-section entries.\n\n",
    );
    for plugin in plugins {
        out.push_str(&format!(
            "#[cfg(feature = \"{0}\")]\nextern crate {0} as _;\n",
            plugin.name
        ));
    }
    out.push_str(
        "\n/// The plugins the enabled features asked for; start-up checks that exactly these registered.\n\
         pub(crate) const ENABLED: &[&str] = &[\n",
    );
    for plugin in plugins {
        out.push_str(&format!(
            "    #[cfg(feature = \"{0}\")]\n    \"{0}\",\n",
            plugin.name
        ));
    }
    out.push_str("];\n");
    out.push_str(
        "\n/// Every plugin's command categories, whether this binary contains it or not, so that a\n\
         /// command of a plugin left out is answered with the plugin to build in.\n\
         // `plexichat-gui` includes this file and has no commands.\n\
         #[allow(dead_code)]\n\
         pub(crate) const COMMAND_CATEGORIES: &[(&str, &str)] = &[\n",
    );
    let mut categories: Vec<(&str, &str)> = plugins
        .iter()
        .flat_map(|plugin| {
            plugin
                .command_categories
                .iter()
                .map(|category| (category.as_str(), plugin.name.as_str()))
        })
        .collect();
    categories.sort();
    for (category, plugin) in categories {
        out.push_str(&format!("    (\"{category}\", \"{plugin}\"),\n"));
    }
    out.push_str("];\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_fresh() {
        let stale = stale(&workspace::root()).expect("workspace readable");
        assert!(
            stale.is_empty(),
            "{} out of date: run `cargo xtask codegen` and commit the result",
            stale.join(", ")
        );
    }

    #[test]
    fn a_plugin_feature_enables_its_dependencies() {
        let plugins = [
            PluginCrate {
                name: "base".into(),
                dependencies: vec![],
                command_categories: vec![],
            },
            PluginCrate {
                name: "on_top".into(),
                dependencies: vec!["base".into()],
                command_categories: vec![],
            },
        ];
        let manifest = "[features]\ndefault = [\"on_top\"]\ninventory = []\nold = [\"dep:old\"]\n\
                        [dependencies]\nold = { path = \"../plugins/old\", optional = true }\n\
                        anyhow = \"1\"\n";
        let out: DocumentMut = app_manifest(manifest, &plugins).unwrap().parse().unwrap();
        let feature = |name: &str| -> Vec<String> {
            out["features"][name]
                .as_array()
                .unwrap_or_else(|| panic!("feature {name}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(feature("on_top"), ["dep:on_top", "base"]);
        assert_eq!(feature("all"), ["base", "on_top"]);
        assert_eq!(feature("inventory"), Vec::<String>::new());
        assert!(
            out["features"].get("old").is_none(),
            "removed plugin's feature stays"
        );
        assert!(out["dependencies"].get("old").is_none());
        assert!(out["dependencies"].get("anyhow").is_some());
    }

    #[test]
    fn a_default_naming_no_plugin_is_an_error() {
        let manifest = "[features]\ndefault = [\"gone\"]\n[dependencies]\n";
        let error = app_manifest(manifest, &[]).unwrap_err().to_string();
        assert!(error.contains("`gone`"), "{error}");
    }
}
