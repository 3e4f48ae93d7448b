//! What the workspace contains: its root, and the plugin crates under `plugins/`.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The workspace root (the parent of this crate's directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The `cargo` that runs us, so nested builds use the same toolchain.
pub fn cargo() -> std::process::Command {
    std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// One plugin crate, as its files describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCrate {
    /// Crate name, which is also the plugin name and the app feature name.
    pub name: String,
    /// The package description.
    pub description: String,
    /// Plugin crates this one depends on (path dependencies into `plugins/`).
    pub dependencies: Vec<String>,
    /// The `type =` of its `#[plugin]`, `feature` when left to the default.
    pub kind: String,
}

/// Every plugin crate under `root/plugins`, sorted by name.
pub fn plugins(root: &Path) -> anyhow::Result<Vec<PluginCrate>> {
    let dir = root.join("plugins");
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
    {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
        .iter()
        .map(|name| read_plugin(&dir, name, &names))
        .collect()
}

fn read_plugin(dir: &Path, name: &str, all: &[String]) -> anyhow::Result<PluginCrate> {
    let manifest_path = dir.join(name).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", manifest_path.display()))?;
    let package_name = manifest["package"]["name"].as_str().unwrap_or_default();
    anyhow::ensure!(
        package_name == name,
        "{}: package name `{package_name}` differs from its directory `plugins/{name}`; \
         a plugin crate is named as its directory",
        manifest_path.display()
    );
    let description = manifest["package"]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut dependencies: Vec<String> = manifest
        .get("dependencies")
        .and_then(|deps| deps.as_table_like())
        .map(|deps| {
            deps.iter()
                .filter(|(dep, value)| {
                    all.iter().any(|plugin| plugin == dep)
                        && value
                            .get("path")
                            .and_then(|path| path.as_str())
                            .is_some_and(|path| path.trim_end_matches('/').ends_with(dep))
                })
                .map(|(dep, _)| dep.to_string())
                .collect()
        })
        .unwrap_or_default();
    dependencies.sort();
    let lib = dir.join(name).join("src").join("lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap_or_default();
    Ok(PluginCrate {
        name: name.to_string(),
        description,
        dependencies,
        kind: plugin_type(&source).unwrap_or_else(|| "feature".to_string()),
    })
}

/// The `type = x` inside the `#[plugin(...)]` attribute, read from source text; the binary's
/// `plugins list` is authoritative, this is for listing a workspace without building it.
fn plugin_type(source: &str) -> Option<String> {
    let start = source.find("#[plugin(")?;
    let attribute = &source[start..];
    let end = attribute.find(")]").unwrap_or(attribute.len());
    let attribute = &attribute[..end];
    let after = attribute.split("type").skip(1).find_map(|rest| {
        let rest = rest.trim_start().strip_prefix('=')?;
        let value: String = rest
            .trim_start()
            .trim_start_matches('"')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!value.is_empty()).then_some(value)
    })?;
    Some(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_type_is_read_from_the_attribute() {
        let check = |source: &str, expected: Option<&str>| {
            assert_eq!(plugin_type(source).as_deref(), expected, "{source}");
        };
        check(
            "#[plugin(type = monitoring, author = \"x\")]",
            Some("monitoring"),
        );
        check("#[plugin(\n    type = \"ai_node\",\n)]", Some("ai_node"));
        check("#[plugin(author = \"x\")]\nstruct S; // type = theme", None);
        check("no attribute", None);
    }

    #[test]
    fn the_workspace_plugins_are_found_with_their_dependencies() {
        let plugins = plugins(&root()).expect("plugins readable");
        let audit = plugins
            .iter()
            .find(|plugin| plugin.name == "awesome_audit")
            .expect("awesome_audit is a workspace plugin");
        assert_eq!(audit.dependencies, ["my_awesome_plugin"]);
        assert_eq!(audit.kind, "monitoring");
    }
}
