//! `cargo xtask`: build, run, scaffold and test PlexiChat. See `cargo xtask --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use xtask::bench::{Plan, Scope};
use xtask::build::{self, Selection};
use xtask::{codegen, new_plugin, test, workspace};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "PlexiChat project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Choice {
    /// Comma-separated plugins to compile in (their dependencies come with them).
    #[arg(long, value_delimiter = ',', conflicts_with = "all")]
    plugins: Option<Vec<String>>,
    /// Compile in every workspace plugin.
    #[arg(long)]
    all: bool,
    /// Optimised build.
    #[arg(long)]
    release: bool,
    /// Link dynamically against the host's C library instead of statically.
    #[arg(long)]
    dynamic: bool,
    /// A plugin from outside this repository: `name=path/to/crate` or `name@version` (from
    /// crates.io); repeatable. Built in a generated copy of the app under `target/with/`.
    #[arg(long = "with", value_name = "NAME=PATH|NAME@VERSION")]
    with: Vec<String>,
}

impl Choice {
    fn selection(&self) -> Selection {
        match (&self.plugins, self.all) {
            (_, true) => Selection::All,
            (Some(names), false) => Selection::Only(
                names
                    .iter()
                    .map(|name| name.trim().to_string())
                    .filter(|name| !name.is_empty())
                    .collect(),
            ),
            (None, false) => Selection::Default,
        }
    }

    fn externals(&self) -> anyhow::Result<Vec<xtask::with::External>> {
        let cwd = std::env::current_dir()?;
        self.with
            .iter()
            .map(|spec| xtask::with::parse(spec, &cwd))
            .collect()
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build one statically linked binary with the chosen plugins (default: dist/plexichat).
    BuildApp {
        #[command(flatten)]
        choice: Choice,
        /// Where to write the binary.
        #[arg(long, default_value = "dist/plexichat")]
        out: PathBuf,
    },
    /// Build, then serve: the one-command way to see it working.
    Run {
        #[command(flatten)]
        choice: Choice,
        /// Arguments for `plexichat serve`, after `--` (e.g. `-- --bind 127.0.0.1:9000`).
        #[arg(last = true)]
        serve_args: Vec<String>,
    },
    /// Scaffold a plugin crate in plugins/<name> and wire its feature into the app.
    NewPlugin {
        /// snake_case name; also the crate, feature and plugin name.
        name: String,
    },
    /// List the workspace's plugins with type and dependencies.
    ListPlugins,
    /// Regenerate the app's plugin wiring (app/Cargo.toml features, app/src/plugins.rs).
    Codegen {
        /// Fail instead of writing when something is out of date.
        #[arg(long)]
        check: bool,
    },
    /// Run every test: the workspace with the linkme backend, the facade and plugins alone
    /// (without the configuration validator), then the runtime tests again with the
    /// inventory backend; ends with one line summing all of them.
    Test,
    /// Measure the framework against bare axum and write docs/BENCHMARKS.md.
    Bench {
        /// A short smoke run on unoptimised builds, reported to
        /// target/bench/BENCHMARKS-quick.md (figures not for publishing).
        #[arg(long, global = true)]
        quick: bool,
        #[command(subcommand)]
        only: Option<BenchCommand>,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Only the HTTP route overhead against bare axum, at 64 and 256 connections.
    Http,
    /// Only start-up to ready and idle memory against bare axum.
    Startup,
    /// Only backup of a 1 GiB SQLite database against `sqlite3 .backup`.
    Backup,
    /// Only serving a 50 KiB embedded asset against nginx with `sendfile`, and the time to
    /// the first byte of `/`.
    Assets,
    /// Only the test manager: runner throughput against a loop, N schedules due at once,
    /// one live update to 1,000 SSE clients.
    Tests,
    /// Only the chat workload the peers were measured with, against Synapse on SQLite and
    /// PostgreSQL in the same run; then 10,000 idle WebSockets and a million messages.
    Chat,
    /// Only the scale benchmark: N synthetic plugins built into the app, for each N.
    Scale {
        /// Comma-separated plugin counts.
        #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
        plugins: Vec<usize>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let root = workspace::root();
    match cli.command {
        Command::BuildApp { choice, out } => {
            build::build_app(&build::Options {
                selection: choice.selection(),
                release: choice.release,
                dynamic: choice.dynamic,
                out,
                with: choice.externals()?,
            })?;
        }
        Command::Run { choice, serve_args } => {
            let binary = build::build_app(&build::Options {
                selection: choice.selection(),
                release: choice.release,
                dynamic: choice.dynamic,
                out: "dist/plexichat".into(),
                with: choice.externals()?,
            })?;
            let status = std::process::Command::new(&binary)
                .arg("serve")
                .args(&serve_args)
                .status()
                .with_context(|| format!("cannot run {}", binary.display()))?;
            anyhow::ensure!(status.success(), "plexichat exited with {status}");
        }
        Command::NewPlugin { name } => {
            let dir = new_plugin::new_plugin(&root, &name)?;
            eprintln!(
                "created {}\nnext: cargo test -p {name}\n      cargo xtask run --plugins {name}\n      \
                 curl http://127.0.0.1:8000/api/v1/{}/hello",
                dir.display(),
                name.replace('_', "-")
            );
        }
        Command::ListPlugins => {
            let plugins = workspace::plugins(&root)?;
            let width = plugins
                .iter()
                .map(|p| p.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            println!(
                "{:<width$}  {:<13}  {:<30}  DESCRIPTION",
                "NAME", "TYPE", "DEPENDENCIES"
            );
            for plugin in plugins {
                let dependencies = if plugin.dependencies.is_empty() {
                    "-".to_string()
                } else {
                    plugin.dependencies.join(", ")
                };
                // One plugin whose source does not parse is shown as such; the others are
                // still listed.
                let (kind, description) = match workspace::summary(&root, &plugin.name) {
                    Ok(summary) => (summary.kind, summary.description),
                    Err(error) => ("?".to_string(), format!("(cannot read: {error:#})")),
                };
                println!(
                    "{:<width$}  {kind:<13}  {dependencies:<30}  {description}",
                    plugin.name
                );
            }
        }
        Command::Codegen { check } => {
            if check {
                let stale = codegen::stale(&root)?;
                anyhow::ensure!(
                    stale.is_empty(),
                    "{} out of date: run `cargo xtask codegen` and commit the result",
                    stale.join(", ")
                );
            } else {
                for path in codegen::write(&root)? {
                    eprintln!("updated {path}");
                }
            }
        }
        Command::Bench { quick, only } => {
            let plan = if quick { Plan::QUICK } else { Plan::FULL };
            let (scope, mut command) = match only {
                None => (Scope::Everything, "cargo xtask bench".to_string()),
                Some(BenchCommand::Http) => (Scope::Http, "cargo xtask bench http".to_string()),
                Some(BenchCommand::Startup) => {
                    (Scope::StartUp, "cargo xtask bench startup".to_string())
                }
                Some(BenchCommand::Backup) => {
                    (Scope::Backup, "cargo xtask bench backup".to_string())
                }
                Some(BenchCommand::Assets) => {
                    (Scope::Assets, "cargo xtask bench assets".to_string())
                }
                Some(BenchCommand::Tests) => (Scope::Tests, "cargo xtask bench tests".to_string()),
                Some(BenchCommand::Chat) => (Scope::Chat, "cargo xtask bench chat".to_string()),
                Some(BenchCommand::Scale { plugins }) => {
                    let list = plugins.iter().map(usize::to_string).collect::<Vec<_>>();
                    let command = format!("cargo xtask bench scale --plugins {}", list.join(","));
                    (Scope::Scale(plugins), command)
                }
            };
            if quick {
                command.push_str(" --quick");
            }
            let report = xtask::bench::run(plan, scope, &command)?;
            eprintln!("wrote {}", report.display());
        }
        Command::Test => test::run(&root)?,
    }
    Ok(())
}
