//! `build-app --with name=path/to/crate` and `--with name@version`: plugins from outside this
//! repository built into the binary, as xcaddy does for Caddy, without touching the
//! repository's files. A standalone copy of the app (its sources, and manifests whose paths
//! point back into the repository) is generated under `target/with/`, with the extra plugins
//! as dependencies and features, and built with the repository's target directory so that
//! nothing already compiled is compiled again.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

use crate::codegen;
use crate::workspace::{self, PluginCrate};

/// One plugin from outside the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// The plugin's name: its app feature, and the name it must register under.
    pub name: String,
    /// Where cargo finds it.
    pub source: Source,
}

/// Where an external plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A crate directory (absolute once parsed).
    Path(PathBuf),
    /// A version requirement on crates.io.
    Registry(String),
}

/// Parses `name=path` or `name@version`; a relative path is taken from `cwd`.
pub fn parse(spec: &str, cwd: &Path) -> anyhow::Result<External> {
    let (name, source) = if let Some((name, path)) = spec.split_once('=') {
        let path = cwd.join(path.trim());
        if !path.join("Cargo.toml").is_file() {
            bail!(
                "--with {spec}: {} holds no Cargo.toml; give the plugin crate's directory",
                path.display()
            );
        }
        let path = path
            .canonicalize()
            .with_context(|| format!("--with {spec}: cannot resolve {}", path.display()))?;
        (name, Source::Path(path))
    } else if let Some((name, version)) = spec.split_once('@') {
        let version = version.trim();
        let valid = !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-+=^~<>*, ".contains(c));
        if !valid {
            bail!(
                "--with {spec}: `{version}` is not a version requirement; write e.g. `name@1.2.0`"
            );
        }
        (name, Source::Registry(version.to_string()))
    } else {
        bail!(
            "--with {spec}: write `name=path/to/crate` for a local crate or `name@version` for one \
             from crates.io"
        );
    };
    let name = name.trim();
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!("--with {spec}: `{name}` is not a plugin name; plugin names are snake_case");
    }
    Ok(External {
        name: name.to_string(),
        source,
    })
}

/// Generates the standalone app under `root/target/with/<names>` and returns its directory.
pub fn generate(root: &Path, externals: &[External]) -> anyhow::Result<PathBuf> {
    let in_repo = workspace::plugins(root)?;
    for external in externals {
        if in_repo.iter().any(|plugin| plugin.name == external.name) {
            bail!(
                "--with {0}: the workspace already has a plugin `{0}`; choose it with --plugins",
                external.name
            );
        }
    }
    let mut names: Vec<&str> = externals.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    let dir = root.join("target/with").join(names.join("+"));
    std::fs::create_dir_all(dir.join("app/src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;

    let workspace_manifest = std::fs::read_to_string(root.join("Cargo.toml"))?;
    write_if_changed(
        &dir.join("Cargo.toml"),
        &standalone_workspace(&workspace_manifest, root)?,
    )?;
    let app_manifest = std::fs::read_to_string(root.join("app/Cargo.toml"))?;
    write_if_changed(
        &dir.join("app/Cargo.toml"),
        &app_with(&app_manifest, &root.join("app"), externals)?,
    )?;
    for entry in std::fs::read_dir(root.join("app/src"))? {
        let entry = entry?;
        let name = entry.file_name();
        if name != "plugins.rs" && entry.path().is_file() {
            write_if_changed(
                &dir.join("app/src").join(&name),
                &std::fs::read_to_string(entry.path())?,
            )?;
        }
    }
    let mut plugins = in_repo;
    plugins.extend(externals.iter().map(|external| PluginCrate {
        name: external.name.clone(),
        dependencies: Vec::new(),
        command_categories: Vec::new(),
    }));
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    write_if_changed(
        &dir.join("app/src/plugins.rs"),
        &codegen::plugins_rs(&plugins),
    )?;
    // The repository's lock file, so that the same versions are built; cargo adds the
    // external plugins' own dependencies to this copy.
    if !dir.join("Cargo.lock").exists() {
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    }
    Ok(dir)
}

/// The repository's workspace manifest for a workspace of the app alone: every path made
/// absolute, and `plexichat` patched in for registry plugins that depend on its crates.io
/// name.
fn standalone_workspace(manifest: &str, root: &Path) -> anyhow::Result<String> {
    let mut doc: DocumentMut = manifest.parse().context("Cargo.toml is not valid TOML")?;
    let workspace = doc["workspace"]
        .as_table_mut()
        .context("Cargo.toml has no [workspace]")?;
    workspace.insert(
        "members",
        Item::Value(Value::Array(Array::from_iter(["app"]))),
    );
    workspace.remove("default-members");
    workspace.remove("exclude");
    if let Some(dependencies) = workspace
        .get_mut("dependencies")
        .and_then(Item::as_table_like_mut)
    {
        for (_, dependency) in dependencies.iter_mut() {
            absolutize(dependency, root);
        }
    }
    let mut patch = Table::new();
    for (name, path) in [("plexichat", "core"), ("plexichat-macros", "macros")] {
        let mut table = InlineTable::new();
        table.insert("path", root.join(path).to_string_lossy().as_ref().into());
        patch.insert(name, Item::Value(Value::InlineTable(table)));
    }
    let mut patches = Table::new();
    patches.set_implicit(true);
    patches.insert("crates-io", Item::Table(patch));
    doc.insert("patch", Item::Table(patches));
    Ok(format!(
        "# Generated by `cargo xtask build-app --with`; do not edit.\n{doc}"
    ))
}

/// The app's manifest with its paths absolute and each external plugin as an optional
/// dependency with a feature of its name.
fn app_with(manifest: &str, app_dir: &Path, externals: &[External]) -> anyhow::Result<String> {
    let mut doc: DocumentMut = manifest
        .parse()
        .context("app/Cargo.toml is not valid TOML")?;
    let dependencies = doc["dependencies"]
        .as_table_mut()
        .context("app/Cargo.toml has no [dependencies] table")?;
    for (_, dependency) in dependencies.iter_mut() {
        absolutize(dependency, app_dir);
    }
    for external in externals {
        let mut table = InlineTable::new();
        match &external.source {
            Source::Path(path) => {
                table.insert("path", path.to_string_lossy().as_ref().into());
            }
            Source::Registry(version) => {
                table.insert("version", version.as_str().into());
            }
        }
        table.insert("optional", true.into());
        dependencies.insert(&external.name, Item::Value(Value::InlineTable(table)));
    }
    let features = doc["features"]
        .as_table_mut()
        .context("app/Cargo.toml has no [features] table")?;
    for external in externals {
        features.insert(
            &external.name,
            Item::Value(Value::Array(Array::from_iter([format!(
                "dep:{}",
                external.name
            )]))),
        );
    }
    Ok(format!(
        "# Generated by `cargo xtask build-app --with`; do not edit.\n{doc}"
    ))
}

/// Makes a dependency's `path` absolute, relative to `base`.
fn absolutize(dependency: &mut Item, base: &Path) {
    let Some(table) = dependency.as_table_like_mut() else {
        return;
    };
    let Some(path) = table.get("path").and_then(Item::as_str) else {
        return;
    };
    let absolute = base.join(path);
    let absolute = absolute.canonicalize().unwrap_or(absolute);
    table.insert(
        "path",
        Item::Value(absolute.to_string_lossy().as_ref().into()),
    );
}

/// Writes `contents` unless the file already holds them, so that cargo's fingerprints of an
/// unchanged build stay fresh.
fn write_if_changed(path: &Path, contents: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(());
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_a_name_and_a_path_or_a_version() {
        let root = workspace::root();
        let path = parse("awesome=plugins/my_awesome_plugin", &root).unwrap();
        assert_eq!(path.name, "awesome");
        assert_eq!(
            path.source,
            Source::Path(
                root.join("plugins/my_awesome_plugin")
                    .canonicalize()
                    .unwrap()
            )
        );
        assert_eq!(
            parse("weather@1.2", &root).unwrap().source,
            Source::Registry("1.2".to_string())
        );
        let error = |spec: &str| parse(spec, &root).unwrap_err().to_string();
        assert!(error("weather").contains("write `name=path/to/crate`"));
        assert!(error("weather=plugins").contains("holds no Cargo.toml"));
        assert!(error("Weather@1").contains("snake_case"));
        assert!(error("weather@").contains("not a version requirement"));
    }

    #[test]
    fn the_generated_manifests_point_into_the_repository_and_add_the_plugins() {
        let root = workspace::root();
        let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let standalone = standalone_workspace(&workspace, &root).unwrap();
        let core = root.join("core").to_string_lossy().into_owned();
        assert!(standalone.contains("members = [\"app\"]"), "{standalone}");
        assert!(
            standalone.contains(&format!("plexichat = {{ path = \"{core}\"")),
            "{standalone}"
        );
        assert!(standalone.contains("[patch.crates-io]"), "{standalone}");

        let app = std::fs::read_to_string(root.join("app/Cargo.toml")).unwrap();
        let externals = [
            External {
                name: "weather".to_string(),
                source: Source::Registry("1.2".to_string()),
            },
            External {
                name: "local_thing".to_string(),
                source: Source::Path(PathBuf::from("/somewhere/local_thing")),
            },
        ];
        let generated = app_with(&app, &root.join("app"), &externals).unwrap();
        let doc: DocumentMut = generated.parse().unwrap();
        assert_eq!(
            doc["dependencies"]["weather"]["version"].as_str(),
            Some("1.2")
        );
        assert_eq!(
            doc["dependencies"]["local_thing"]["path"].as_str(),
            Some("/somewhere/local_thing")
        );
        assert_eq!(
            doc["dependencies"]["my_awesome_plugin"]["path"].as_str(),
            Some(
                root.join("plugins/my_awesome_plugin")
                    .to_string_lossy()
                    .as_ref()
            )
        );
        let weather = doc["features"]["weather"].as_array().unwrap();
        assert_eq!(weather.get(0).and_then(|v| v.as_str()), Some("dep:weather"));
    }
}
