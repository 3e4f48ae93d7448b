//! What the workspace contains: its root, and the plugin crates under `plugins/`.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The workspace root: the parent of this crate's directory as Cargo names it when it runs
/// the task, so that `cargo xtask` in a copied or moved checkout acts on that checkout even
/// when it reuses a binary built in the original (whose build-time path is baked in); that
/// build-time path only when the binary runs outside Cargo.
pub fn root() -> PathBuf {
    root_from(std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from))
}

fn root_from(running: Option<PathBuf>) -> PathBuf {
    let manifest_dir = running
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The `cargo` that runs us, so nested builds use the same toolchain.
pub fn cargo() -> std::process::Command {
    std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// One plugin crate, as its manifest describes it: enough to wire it into the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCrate {
    /// Crate name, which is also the plugin name and the app feature name.
    pub name: String,
    /// Plugin crates this one depends on (path dependencies into `plugins/`).
    pub dependencies: Vec<String>,
    /// The categories of its `#[plexichat::command]`s (`plexichat <category> …`), sorted.
    pub command_categories: Vec<String>,
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

fn read_manifest(dir: &Path, name: &str) -> anyhow::Result<toml_edit::DocumentMut> {
    let manifest_path = dir.join(name).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    text.parse()
        .with_context(|| format!("{} is not valid TOML", manifest_path.display()))
}

fn read_plugin(dir: &Path, name: &str, all: &[String]) -> anyhow::Result<PluginCrate> {
    let manifest = read_manifest(dir, name)?;
    let package_name = manifest["package"]["name"].as_str().unwrap_or_default();
    anyhow::ensure!(
        package_name == name,
        "{}: package name `{package_name}` differs from its directory `plugins/{name}`; \
         a plugin crate is named as its directory",
        dir.join(name).join("Cargo.toml").display()
    );
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
    Ok(PluginCrate {
        name: name.to_string(),
        dependencies,
        command_categories: command_categories(&dir.join(name).join("src"), name)?,
    })
}

/// The categories of the `#[plexichat::command]` functions under `src`, read with syn as the
/// macro reads them (`category = "..."`, else the plugin's name), sorted and without repeats:
/// so that a binary built without the plugin can name it when asked for one of its commands.
/// A file that does not parse is skipped: the compiler reports it.
pub fn command_categories(src: &Path, plugin: &str) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    if src.is_dir() {
        rust_files(src, &mut files)?;
    }
    let mut categories = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        if let Ok(parsed) = syn::parse_file(&text) {
            collect_categories(&parsed.items, plugin, &mut categories);
        }
    }
    categories.sort();
    categories.dedup();
    Ok(categories)
}

fn collect_categories(items: &[syn::Item], plugin: &str, out: &mut Vec<String>) {
    for item in items {
        match item {
            syn::Item::Fn(function) => {
                for attribute in &function.attrs {
                    let path = attribute.path();
                    let is_command = path.segments.len() == 2
                        && path.segments[0].ident == "plexichat"
                        && path.segments[1].ident == "command";
                    if is_command {
                        out.push(category_of(attribute).unwrap_or_else(|| plugin.to_string()));
                    }
                }
            }
            syn::Item::Mod(module) => {
                if let Some((_, items)) = &module.content {
                    collect_categories(items, plugin, out);
                }
            }
            _ => {}
        }
    }
}

/// `category = "..."` of a `#[plexichat::command(...)]`, if it sets one.
fn category_of(attribute: &syn::Attribute) -> Option<String> {
    let syn::Meta::List(list) = &attribute.meta else {
        return None;
    };
    let pairs = list
        .parse_args_with(
            syn::punctuated::Punctuated::<syn::MetaNameValue, syn::Token![,]>::parse_terminated,
        )
        .ok()?;
    pairs.iter().find_map(|pair| {
        if !pair.path.is_ident("category") {
            return None;
        }
        match &pair.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) => Some(text.value()),
            _ => None,
        }
    })
}

/// What a plugin says about itself, read from its source without building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The `type =` of its `#[plugin]`, `feature` when left to the default.
    pub kind: String,
    /// The description the binary will report (see [`summary`]).
    pub description: String,
}

/// Reads the `#[plugin]` item of `plugins/<name>` with syn and resolves its description by the
/// rule `#[plugin]` itself applies: `description = "..."`, else the first paragraph of the
/// type's doc comment, else the package description. The paragraph rule is
/// `plexichat_rules::first_paragraph`, shared with `plexichat-macros`; the binary test
/// `the_workspace_listing_describes_plugins_as_the_binary_does` checks that `cargo xtask
/// list-plugins` says what `plexichat plugins list` says.
pub fn summary(root: &Path, name: &str) -> anyhow::Result<Summary> {
    let dir = root.join("plugins");
    let src = dir.join(name).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files)?;
    files.sort();
    let mut found = None;
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        // Only the location of a syntax error is lost here (proc-macro2 tracks lines only with
        // its `span-locations` feature, which would change every proc macro's build); the
        // compiler reports it.
        let parsed = syn::parse_file(&text).map_err(|error| {
            anyhow::anyhow!(
                "{} does not parse ({error}); `cargo check -p {name}` shows where",
                file.display()
            )
        })?;
        if let Some(declared) = plugin_item(&parsed.items)
            .map(|(attribute, docs)| declared(attribute, docs))
            .transpose()
            .with_context(|| format!("{}: cannot read `#[plugin]`", file.display()))?
        {
            found = Some(declared);
            break;
        }
    }
    let declared = found.with_context(|| format!("no `#[plugin]` type in {}", src.display()))?;
    let description = match (declared.description, declared.docs) {
        (Some(description), _) | (None, Some(description)) => description,
        (None, None) => read_manifest(&dir, name)?["package"]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    Ok(Summary {
        kind: declared.kind.unwrap_or_else(|| "feature".to_string()),
        description,
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The first struct or enum carrying `#[plugin]` (or a path ending in `plugin`), searching
/// inline modules too, with its attribute and its doc comment's first paragraph.
fn plugin_item(items: &[syn::Item]) -> Option<(&syn::Attribute, Option<String>)> {
    items.iter().find_map(|item| {
        let attrs = match item {
            syn::Item::Struct(item) => &item.attrs,
            syn::Item::Enum(item) => &item.attrs,
            syn::Item::Mod(module) => {
                return module
                    .content
                    .as_ref()
                    .and_then(|(_, items)| plugin_item(items));
            }
            _ => return None,
        };
        let attribute = attrs.iter().find(|attribute| {
            attribute
                .path()
                .segments
                .last()
                .is_some_and(|segment| segment.ident == "plugin")
        })?;
        Some((attribute, doc_paragraph(attrs)))
    })
}

/// The `///` lines' first paragraph, by the rule `#[plugin]` takes its default description
/// with (`plexichat_rules::first_paragraph`).
fn doc_paragraph(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attribute| attribute.path().is_ident("doc"))
        .filter_map(|attribute| match &attribute.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) => Some(text.value()),
            _ => None,
        })
        .collect();
    plexichat_rules::first_paragraph(lines.iter().map(String::as_str))
}

/// What the `#[plugin]` attribute and its type's doc comment declare.
struct Declared {
    kind: Option<String>,
    description: Option<String>,
    docs: Option<String>,
}

/// Reads `type` and `description` from `#[plugin(key = value, ...)]`. Other keys are skipped
/// a token tree at a time, so their values (lists, `{ ... }` objects) need no grammar here;
/// the macro checks them when the crate builds.
fn declared(attribute: &syn::Attribute, docs: Option<String>) -> syn::Result<Declared> {
    use syn::ext::IdentExt;
    use syn::parse::ParseStream;

    let mut declared = Declared {
        kind: None,
        description: None,
        docs,
    };
    if let syn::Meta::Path(_) = attribute.meta {
        return Ok(declared);
    }
    attribute.parse_args_with(|input: ParseStream<'_>| {
        while !input.is_empty() {
            let key = input.call(syn::Ident::parse_any)?.unraw().to_string();
            input.parse::<syn::Token![=]>()?;
            let mut value = proc_macro2::TokenStream::new();
            while !input.is_empty() && !input.peek(syn::Token![,]) {
                value.extend([input.parse::<proc_macro2::TokenTree>()?]);
            }
            match key.as_str() {
                "description" => {
                    declared.description = Some(syn::parse2::<syn::LitStr>(value)?.value());
                }
                "type" => {
                    declared.kind = Some(match syn::parse2::<syn::LitStr>(value.clone()) {
                        Ok(text) => text.value(),
                        Err(_) => syn::parse2::<syn::Ident>(value)?.unraw().to_string(),
                    });
                }
                _ => {}
            }
            if !input.is_empty() {
                input.parse::<syn::Token![,]>()?;
            }
        }
        Ok(())
    })?;
    Ok(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Command categories are read as the macro reads them: the one given, else the
    /// plugin's name; clap's own `#[command]` on a type is not one.
    #[test]
    fn command_categories_are_read_from_the_source() {
        let src = std::env::temp_dir().join(format!("plexichat-categories-{}", std::process::id()));
        std::fs::create_dir_all(src.join("nested")).unwrap();
        std::fs::write(
            src.join("lib.rs"),
            "#[plexichat::command(category = \"things\", name = \"list\")]\nasync fn a() {}\n\
             #[plexichat::command]\nasync fn b() {}\n\
             #[derive(clap::Args)]\n#[command(about = \"x\")]\nstruct Args;\n\
             mod inner { #[plexichat::command(category = \"things\")] async fn c() {} }\n",
        )
        .unwrap();
        std::fs::write(src.join("nested/broken.rs"), "fn {").unwrap();
        assert_eq!(
            command_categories(&src, "mine").unwrap(),
            ["mine", "things"]
        );
        std::fs::remove_dir_all(&src).unwrap();
    }

    /// A copy of the checkout, run through Cargo, is the root, not where the binary was
    /// built; without Cargo's word (or with a folder that is no crate) the build-time one.
    #[test]
    fn the_root_is_the_checkout_cargo_runs_the_task_in() {
        let copy = std::env::temp_dir().join(format!("plexichat-moved-{}", std::process::id()));
        std::fs::create_dir_all(copy.join("xtask")).unwrap();
        std::fs::write(
            copy.join("xtask/Cargo.toml"),
            "[package]\nname = \"xtask\"\n",
        )
        .unwrap();
        assert_eq!(root_from(Some(copy.join("xtask"))), copy);
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert_eq!(root_from(None), built);
        assert_eq!(root_from(Some(copy.join("nowhere"))), built);
        std::fs::remove_dir_all(&copy).unwrap();
    }

    /// Writes `source` as the only file of a plugin crate `p` in a scratch workspace and
    /// checks what [`summary`] reads from it.
    fn check(package_description: Option<&str>, source: &str, expected: (&str, &str)) {
        // Tests run on parallel threads: each call gets its own directory.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root =
            std::env::temp_dir().join(format!("plexichat-summary-{}-{call}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("plugins/p/src")).unwrap();
        let description = package_description
            .map(|text| format!("description = \"{text}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            root.join("plugins/p/Cargo.toml"),
            format!("[package]\nname = \"p\"\n{description}"),
        )
        .unwrap();
        std::fs::write(root.join("plugins/p/src/lib.rs"), source).unwrap();
        let summary = summary(&root, "p");
        std::fs::remove_dir_all(&root).unwrap();
        let summary = summary.unwrap_or_else(|error| panic!("{source}: {error:#}"));
        assert_eq!(
            (summary.kind.as_str(), summary.description.as_str()),
            expected,
            "{source}"
        );
    }

    #[test]
    fn type_and_description_are_read_as_the_macro_reads_them() {
        // The doc comment's first paragraph wins over the package description.
        check(
            Some("From Cargo.toml"),
            "/// Counts\n/// things.\n///\n/// Details.\n#[plugin(type = monitoring, author = \"x\")]\npub struct P;",
            ("monitoring", "Counts things."),
        );
        // An explicit `description` wins over both; lists and objects are skipped.
        check(
            Some("From Cargo.toml"),
            "/// Docs.\n#[plugin(\n    type = \"ai_node\",\n    tags = [\"a\", \"b\"],\n    ui_pages = [{ name = \"d\", path = \"ui/d\", title = \"D\" }],\n    description = \"Explicit.\",\n)]\npub struct P;",
            ("ai_node", "Explicit."),
        );
        // Without either, the package description; a comment mentioning `type` is not read.
        check(
            Some("From Cargo.toml"),
            "#[plexichat::plugin(author = \"x\")]\npub struct P; // type = theme",
            ("feature", "From Cargo.toml"),
        );
        check(
            None,
            "mod inner {\n    /// Nested.\n    #[plugin]\n    pub enum P {}\n}",
            ("feature", "Nested."),
        );
    }

    #[test]
    fn a_crate_without_a_plugin_or_with_a_syntax_error_is_named() {
        let root = std::env::temp_dir().join(format!("plexichat-no-plugin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("plugins/p/src")).unwrap();
        std::fs::write(
            root.join("plugins/p/Cargo.toml"),
            "[package]\nname = \"p\"\n",
        )
        .unwrap();
        std::fs::write(root.join("plugins/p/src/lib.rs"), "pub struct P;").unwrap();
        let missing = summary(&root, "p").unwrap_err().to_string();
        std::fs::write(root.join("plugins/p/src/lib.rs"), "pub struct P {").unwrap();
        let broken = summary(&root, "p").unwrap_err().to_string();
        std::fs::remove_dir_all(&root).unwrap();
        assert!(missing.starts_with("no `#[plugin]` type in"), "{missing}");
        assert!(
            broken.contains("lib.rs does not parse") && broken.contains("cargo check -p p"),
            "{broken}"
        );
    }

    #[test]
    fn the_workspace_plugins_are_found_with_their_dependencies() {
        let plugins = plugins(&root()).expect("plugins readable");
        let audit = plugins
            .iter()
            .find(|plugin| plugin.name == "awesome_audit")
            .expect("awesome_audit is a workspace plugin");
        assert_eq!(audit.dependencies, ["my_awesome_plugin"]);
        assert_eq!(
            summary(&root(), "awesome_audit").unwrap().kind,
            "monitoring"
        );
    }
}
