//! `cargo xtask bench scale --plugins N[,N…]`: how the framework grows with the number of
//! plugins. For each N it writes N synthetic plugin crates (a route, an event handler, a
//! configuration type and three CLI commands each) into a scratch workspace outside the
//! repository, wires them into a copy of the real app with the real codegen, builds it, and
//! measures build time, binary size, start-up to ready, resident memory, one route's
//! throughput, and how long `--help` takes beside `--version`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::bench_common::{self, Plan, Samples, Server};
use crate::build::{self, Flavor};
use crate::{codegen, workspace};

/// What one N measured.
#[derive(Debug)]
pub struct Point {
    /// Plugins compiled in.
    pub plugins: usize,
    /// Wall time of building the plugin crates and the app, dependencies already built.
    pub build: Duration,
    /// Size of the binary in bytes.
    pub size: u64,
    /// Exec to the first 200 on `/ready`, in milliseconds.
    pub start: Samples,
    /// Resident set after start, idle, in KiB.
    pub rss_kib: u64,
    /// Requests per second of the last plugin's route (it publishes that plugin's event), if
    /// wrk is installed.
    pub route_rate: Option<f64>,
    /// `plexichat --version`, exec to exit, in milliseconds.
    pub version: Samples,
    /// `plexichat --help` (every command category listed).
    pub help: Samples,
    /// `plexichat <last plugin's category> stats --help` (that category built in full).
    pub command_help: Samples,
}

/// The scratch workspaces live here, outside the repository; the shared target directory
/// below it keeps the dependency builds between runs.
pub fn scratch_root() -> PathBuf {
    std::env::temp_dir().join("plexichat-bench-scale")
}

/// Builds and measures the app with each of `counts` synthetic plugins.
pub fn measure(counts: &[usize], plan: Plan, flavor: &Flavor) -> anyhow::Result<Vec<Point>> {
    let root = workspace::root();
    let scratch = scratch_root();
    let target_dir = scratch.join("target");
    let mut points = Vec::new();
    for &count in counts {
        let dir = scratch.join(format!("n{count}"));
        eprintln!("bench scale: {count} plugins in {}", dir.display());
        write_workspace(&root, &dir, count)?;
        let build_app = |features: &[&str]| {
            let args: Vec<String> = features.iter().map(|arg| arg.to_string()).collect();
            build::build_binary_in(
                &dir,
                Some(&target_dir),
                flavor,
                "plexichat-app",
                "plexichat",
                &args,
                plan.release,
            )
        };
        // Everything but the plugins and the app first, so the timed build is what N costs;
        // then mark every plugin changed, so a re-run times a full build of them too.
        build_app(&["--no-default-features"])?;
        for index in 0..count {
            let lib = dir
                .join("plugins")
                .join(crate_name(index))
                .join("src/lib.rs");
            std::fs::File::options()
                .append(true)
                .open(&lib)?
                .set_modified(std::time::SystemTime::now())?;
        }
        let started = Instant::now();
        let built = build_app(&["--features", "all"])?;
        let build_time = started.elapsed();
        let binary = scratch.join(format!("plexichat-n{count}"));
        std::fs::copy(&built, &binary)?;
        check_plugins_listed(&binary, count)?;

        // Alternating rounds, like every comparison here.
        let category = route_segment(count.saturating_sub(1));
        let (mut version, mut help, mut command_help) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..plan.start_rounds {
            version.push(run_ms(&binary, &["--version"])?);
            help.push(run_ms(&binary, &["--help"])?);
            command_help.push(run_ms(&binary, &[&category, "stats", "--help"])?);
        }

        let data = dir.join("data");
        let mut start = Vec::new();
        let mut rss_kib = 0;
        let mut route_rate = None;
        for round in 0..plan.start_rounds {
            let _ = std::fs::remove_dir_all(&data);
            std::fs::create_dir_all(&data)?;
            let (server, elapsed) = Server::start(&binary, &data, true)?;
            start.push(bench_common::ms(elapsed));
            if round == 0 {
                rss_kib = server.idle_rss_kib()?;
                if let Some(last) = count.checked_sub(1) {
                    let path = format!("/api/v1/{}/hello", route_segment(last));
                    anyhow::ensure!(
                        bench_common::get_status(server.addr, &path) == Some(200),
                        "{path} did not answer 200 with {count} plugins"
                    );
                    route_rate = bench_common::rate(server.addr, &path, plan.load_seconds)?;
                }
            }
        }
        let point = Point {
            plugins: count,
            build: build_time,
            size: std::fs::metadata(&binary)?.len(),
            start: Samples(start),
            rss_kib,
            route_rate,
            version: Samples(version),
            help: Samples(help),
            command_help: Samples(command_help),
        };
        eprintln!(
            "bench scale: {count} plugins: build {:.1} s, start-up {:.1} ms, --help {:.1} ms",
            point.build.as_secs_f64(),
            point.start.median(),
            point.help.median(),
        );
        points.push(point);
    }
    Ok(points)
}

/// Runs `binary args…` to its exit, which must be a success; returns the wall time in
/// milliseconds.
fn run_ms(binary: &Path, args: &[&str]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        status.success(),
        "{} {args:?} failed: {status}",
        binary.display()
    );
    Ok(bench_common::ms(elapsed))
}

/// `plugins list --json` must show exactly `count` plugins, or the build dropped some.
fn check_plugins_listed(binary: &Path, count: usize) -> anyhow::Result<()> {
    let output = Command::new(binary)
        .args(["plugins", "list", "--json"])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    anyhow::ensure!(output.status.success(), "plugins list failed");
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let found = listed.as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        found == count,
        "the binary lists {found} plugins, {count} were generated"
    );
    Ok(())
}

fn crate_name(index: usize) -> String {
    format!("scale_{index:04}")
}

fn route_segment(index: usize) -> String {
    crate_name(index).replace('_', "-")
}

/// Writes (or refreshes) a workspace at `dir`: the repository's manifest with paths pointing
/// back into the repository, a copy of the app, `count` plugin crates, and the codegen output.
/// Files are only rewritten when their contents change, so cargo's fingerprints survive.
fn write_workspace(root: &Path, dir: &Path, count: usize) -> anyhow::Result<()> {
    let plugins = dir.join("plugins");
    if plugins.exists() {
        // Plugins left over from a run with another N would be compiled in too.
        for entry in std::fs::read_dir(&plugins)? {
            let entry = entry?;
            let keep = entry
                .file_name()
                .to_str()
                .and_then(|name| name.strip_prefix("scale_"))
                .and_then(|index| index.parse::<usize>().ok())
                .is_some_and(|index| index < count);
            if !keep {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
    }
    std::fs::create_dir_all(&plugins)?;
    write_if_changed(&dir.join("Cargo.toml"), &workspace_manifest(root)?)?;
    if !dir.join("Cargo.lock").exists() {
        // The repository's lock file, so the same dependency versions are measured.
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    }
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("src"))?;
    // Every source file of the app but the plugin wiring, which codegen writes below.
    for entry in std::fs::read_dir(root.join("app/src"))? {
        let entry = entry?;
        let file = entry.file_name();
        if file == "plugins.rs" || !entry.file_type()?.is_file() {
            continue;
        }
        write_if_changed(
            &app.join("src").join(&file),
            &std::fs::read_to_string(entry.path())?,
        )?;
    }
    let mut manifest: toml_edit::DocumentMut =
        std::fs::read_to_string(root.join("app/Cargo.toml"))?.parse()?;
    // The operator's default names the repository's plugins, which are not here.
    manifest["features"]["default"] = toml_edit::value(toml_edit::Array::new());
    for index in 0..count {
        let name = crate_name(index);
        let crate_dir = plugins.join(&name);
        std::fs::create_dir_all(crate_dir.join("src"))?;
        write_if_changed(&crate_dir.join("Cargo.toml"), &plugin_manifest(&name))?;
        write_if_changed(&crate_dir.join("src/lib.rs"), &plugin_library(index, count))?;
    }
    // The app's manifest may hold another N's wiring: start from the repository's copy.
    std::fs::write(app.join("Cargo.toml"), manifest.to_string())?;
    codegen::write(dir)?;
    Ok(())
}

fn write_if_changed(path: &Path, contents: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The repository's workspace manifest, with members limited to the app and the plugins and
/// every relative path made to point back into the repository.
fn workspace_manifest(root: &Path) -> anyhow::Result<String> {
    let mut manifest: toml_edit::DocumentMut =
        std::fs::read_to_string(root.join("Cargo.toml"))?.parse()?;
    let workspace = manifest["workspace"]
        .as_table_mut()
        .context("Cargo.toml has no [workspace]")?;
    workspace.insert(
        "members",
        toml_edit::value(toml_edit::Array::from_iter(["app", "plugins/*"])),
    );
    workspace.remove("default-members");
    let dependencies = workspace["dependencies"]
        .as_table_like_mut()
        .context("Cargo.toml has no [workspace.dependencies]")?;
    for (_, dependency) in dependencies.iter_mut() {
        // `get`, not `get_mut`: the latter inserts the key it does not find.
        let Some(relative) = dependency.get("path").and_then(toml_edit::Item::as_str) else {
            continue;
        };
        let absolute = root.join(relative);
        dependency["path"] = toml_edit::value(absolute.to_str().context("a non-UTF-8 path")?);
    }
    Ok(manifest.to_string())
}

fn plugin_manifest(name: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\ndescription = \"Synthetic plugin for cargo xtask bench \
         scale\"\nversion.workspace = true\nedition.workspace = true\npublish = false\n\n\
         [dependencies]\nplexichat.workspace = true\n"
    )
}

/// One synthetic plugin: a configuration section, an event of its own with one handler, and a
/// route that reads the configuration and publishes the event.
fn plugin_library(index: usize, count: usize) -> String {
    let name = crate_name(index);
    let type_name = format!("Scale{index:04}");
    let category = route_segment(index);
    format!(
        r#"//! Synthetic plugin {index} of {count}, written by `cargo xtask bench scale`.

use std::sync::atomic::{{AtomicU64, Ordering}};

use plexichat::prelude::*;

/// Synthetic plugin {index}.
#[plugin(author = "cargo xtask bench scale", config = Settings, permissions = ["events:publish"])]
#[derive(Default)]
pub struct {type_name} {{
    hits: AtomicU64,
    seen: AtomicU64,
}}

/// The `[plugins.{name}]` section.
#[config]
#[derive(Clone, Debug)]
pub struct Settings {{
    /// What the route answers with.
    pub greeting: String,
    /// A bounded number, so the schema has a constraint to check.
    #[schemars(range(min = 1, max = 100))]
    pub weight: u32,
}}

impl Default for Settings {{
    fn default() -> Self {{
        Settings {{
            greeting: "hello from {name}".to_string(),
            weight: 1,
        }}
    }}
}}

/// Published by the route, handled by this plugin.
#[event(name = "{name}.hit")]
#[derive(Clone, Debug)]
pub struct Hit {{
    /// Hits so far.
    pub count: u64,
}}

#[route(GET, "/hello")]
async fn hello(
    plugin: PluginState<{type_name}>,
    settings: PluginConfig<{type_name}>,
    context: PluginContext<{type_name}>,
) -> Json<Value> {{
    let count = plugin.hits.fetch_add(1, Ordering::Relaxed) + 1;
    context.publish(&Hit {{ count }}).await;
    Json(json!({{ "greeting": settings.greeting, "weight": settings.weight, "count": count }}))
}}

#[on_event]
fn on_hit(plugin: &{type_name}, event: &Hit) {{
    plugin.seen.store(event.count, Ordering::Relaxed);
}}

/// Options of `plexichat {category} stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {{
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// How many entries to show.
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
}}

/// Shows this plugin's configuration.
///
/// Synthetic command of plugin {index}.
#[plexichat::command(category = "{category}")]
async fn stats(context: CommandContext<{type_name}>, args: StatsArgs) -> Result<(), BoxError> {{
    let settings = context.config::<{type_name}>().ok_or("no configuration")?;
    println!("{{}} (json: {{}}, limit: {{}})", settings.greeting, args.json, args.limit);
    Ok(())
}}

/// Does nothing, after asking.
#[plexichat::command(category = "{category}", dangerous = true)]
async fn reset(context: CommandContext<{type_name}>) -> Result<(), BoxError> {{
    let _ = context;
    Ok(())
}}

/// Answers pong.
#[plexichat::command(category = "{category}")]
async fn ping(context: CommandContext<{type_name}>) {{
    let _ = context;
    println!("pong");
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_manifest_points_back_into_the_repository() {
        let root = workspace::root();
        let manifest = workspace_manifest(&root).unwrap();
        let parsed: toml_edit::DocumentMut = manifest.parse().unwrap();
        let plexichat = parsed["workspace"]["dependencies"]["plexichat"]["path"]
            .as_str()
            .unwrap();
        assert_eq!(Path::new(plexichat), root.join("core"));
        let members: Vec<_> = parsed["workspace"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|member| member.as_str())
            .collect();
        assert_eq!(members, ["app", "plugins/*"]);
    }

    #[test]
    fn plugins_are_named_in_order() {
        assert_eq!(crate_name(7), "scale_0007");
        assert_eq!(route_segment(999), "scale-0999");
        let library = plugin_library(7, 10);
        assert!(library.contains("pub struct Scale0007"));
        assert!(library.contains("#[event(name = \"scale_0007.hit\")]"));
    }
}
