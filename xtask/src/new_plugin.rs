//! `cargo xtask new-plugin <name>`: a working plugin crate, wired into the app.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::codegen;

/// Feature names of the app that a plugin must not take.
const RESERVED: &[&str] = &[
    "default",
    "all",
    "inventory",
    "plexichat",
    "core",
    "std",
    "test",
];

/// Creates `plugins/<name>` and regenerates the app's wiring; returns the crate directory.
pub fn new_plugin(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = root.join("plugins").join(name);
    if dir.exists() {
        bail!("plugins/{name} already exists; pick another name");
    }
    let type_name = plexichat_rules::camel_case(name);
    let prefix = plexichat_rules::default_prefix(name);
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("Cargo.toml"), manifest(name))?;
    std::fs::write(dir.join("build.rs"), plexichat_rules::PLUGIN_BUILD_SCRIPT)?;
    std::fs::write(dir.join("src/lib.rs"), library(name, &type_name, &prefix))?;
    codegen::write(root)?;
    Ok(dir)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__");
    if !valid {
        bail!(
            "invalid plugin name `{name}`: use snake_case (lowercase letters, digits and single \
             underscores, starting with a letter), e.g. `hello_world`"
        );
    }
    if RESERVED.contains(&name) {
        bail!("`{name}` is reserved by the app's features; pick another name");
    }
    // The registry would refuse the plugin at start-up; refuse the scaffold first.
    let prefix = plexichat_rules::default_prefix(name);
    if let Some(core) = plexichat_rules::reserved_path(&prefix) {
        bail!(
            "`{name}` would mount its routes at {prefix}, which would shadow core's `{core}`; \
             pick another name"
        );
    }
    Ok(())
}

fn manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish = false

[dependencies]
plexichat.workspace = true

[dev-dependencies]
tokio.workspace = true

[lints]
workspace = true
"#
    )
}

fn library(name: &str, type_name: &str, prefix: &str) -> String {
    format!(
        r#"//! `{name}`: a PlexiChat plugin. Say here what it does and why.

use std::sync::atomic::{{AtomicU64, Ordering}};

use plexichat::prelude::*;

/// Greets visitors and counts them (this sentence is the plugin's description).
#[plugin(author = "Your Name", type = feature, permissions = ["events:publish"])]
#[derive(Default)]
pub struct {type_name} {{
    greetings: AtomicU64,
    last_greeted: AtomicU64,
}}

/// Published after every greeting, for other plugins to react to.
#[event(name = "{name}.greeted")]
#[derive(Clone, Debug)]
pub struct Greeted {{
    /// How many greetings so far, this one included.
    pub count: u64,
}}

/// `GET {prefix}/hello`
#[route(GET, "/hello")]
async fn hello(plugin: PluginState<{type_name}>, context: PluginContext<{type_name}>) -> Json<Value> {{
    let count = plugin.greetings.fetch_add(1, Ordering::Relaxed) + 1;
    context.publish(&Greeted {{ count }}).await;
    Json(json!({{ "message": "Hello from {name}!", "count": count }}))
}}

/// `GET {prefix}/last`: what the event handler saw.
#[route(GET, "/last")]
async fn last(plugin: PluginState<{type_name}>) -> Json<Value> {{
    Json(json!({{ "last_greeted": plugin.last_greeted.load(Ordering::Relaxed) }}))
}}

#[on_event]
fn on_greeted(plugin: &{type_name}, event: &Greeted) {{
    plugin.last_greeted.store(event.count, Ordering::Relaxed);
}}

/// The handler has seen every greeting counted so far: `{prefix}/last` is never behind.
/// Shipped in the binary: `plexichat tests run {name}` runs it, the Test Dashboard schedules
/// it. It only reads, so it may run on a live server.
#[plugin_test(timeout = "5s", tags = ["smoke"])]
async fn the_handler_keeps_up(context: &TestContext<{type_name}>) -> Result<(), String> {{
    let plugin = context.instance().ok_or("the plugin has no instance")?;
    let (status, body) = context.app().get("{prefix}/last").await;
    if status != StatusCode::OK {{
        return Err(format!("GET {prefix}/last answered {{status}}: {{body}}"));
    }}
    // Read after the answer: a greeting counted meanwhile only raises it.
    let counted = plugin.greetings.load(Ordering::Relaxed);
    match body["last_greeted"].as_u64() {{
        Some(seen) if seen <= counted => Ok(()),
        other => Err(format!("the handler saw {{other:?}} greetings, {{counted}} were counted")),
    }}
}}

#[cfg(test)]
mod tests {{
    use plexichat::testing::TestApp;

    use super::*;

    #[tokio::test]
    async fn hello_counts_and_the_handler_sees_the_event() {{
        let app = TestApp::linked().await;
        let (status, body) = app.get("{prefix}/hello").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["count"], 1);
        let (_, body) = app.get("{prefix}/last").await;
        assert_eq!(body["last_greeted"], 1);
    }}

    #[tokio::test]
    async fn the_tests_it_ships_pass() {{
        let app = TestApp::linked().await;
        let runs = app.plugin_tests("{name}").await;
        assert!(!runs.is_empty());
        for run in runs {{
            assert!(run.status.is_ok(), "{{run:?}}");
        }}
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["hello", "hello_world", "a1", "admins", "plugins_extra"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Hello",
            "1abc",
            "hello-world",
            "hello__world",
            "hello_",
            "all",
            "admin",
            "plugins",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scaffold_is_written_and_wired() {
        let root =
            std::env::temp_dir().join(format!("plexichat-new-plugin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("plugins")).unwrap();
        std::fs::create_dir_all(root.join("app/src")).unwrap();
        std::fs::write(
            root.join("app/Cargo.toml"),
            "[package]\nname = \"plexichat-app\"\n[features]\ndefault = []\n[dependencies]\n",
        )
        .unwrap();
        let dir = new_plugin(&root, "hello_world").unwrap();
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct HelloWorld"));
        assert!(lib.contains("/api/v1/hello-world/hello"));
        // One description, from the doc comment: the manifest holds no second one that
        // `cargo xtask list-plugins` or crates.io could show instead.
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(!manifest.contains("description"), "{manifest}");
        let summary = crate::workspace::summary(&root, "hello_world").unwrap();
        assert_eq!(
            summary.description,
            "Greets visitors and counts them (this sentence is the plugin's description)."
        );
        let app = std::fs::read_to_string(root.join("app/Cargo.toml")).unwrap();
        assert!(app.contains("hello_world = [\"dep:hello_world\"]"), "{app}");
        let wiring = std::fs::read_to_string(root.join("app/src/plugins.rs")).unwrap();
        assert!(wiring.contains("extern crate hello_world as _;"));
        assert!(
            new_plugin(&root, "hello_world").is_err(),
            "second scaffold must refuse"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
