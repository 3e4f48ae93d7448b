//! The command line: the clap tree of the core commands (`serve`, `config`, `plugins`, `db`,
//! `backup`, `commands`, `gui`, `openapi`) with the plugins' own commands grafted on
//! (`commands.rs`), and the dispatch of each to the module that carries it out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use plexichat::Registry;

use crate::describe::configured_states;
use crate::setup::load_config;
use crate::usage::exit_code;
use crate::{backup, configuration, db, describe, serve};

/// PlexiChat: an application server composed from plugins at compile time.
#[derive(Debug, Parser)]
#[command(name = "plexichat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the compiled-in plugins over HTTP until SIGINT or SIGTERM.
    Serve {
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, an IP address and port [default: `[server] bind`].
        #[arg(long)]
        bind: Option<SocketAddr>,
        /// Answer 408 to a request not finished within this time, e.g. `30s`
        /// [default: `[server] request_timeout`].
        #[arg(long)]
        request_timeout: Option<String>,
        /// Answer 413 to a request body larger than this many bytes
        /// [default: `[server] body_limit`].
        #[arg(long)]
        body_limit: Option<u64>,
        /// Exit with status 1, naming the plugins, if any plugin fails to start, instead of
        /// serving the others.
        #[arg(long)]
        strict: bool,
    },
    /// Check, describe or generate the configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Describe the compiled-in plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Inspect and migrate the database (`[data] database`, default `<data>/plexichat.db`).
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Back up the database and every plugin's data folder into one archive, check one, or
    /// restore one.
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// List the commands that plugins add (`plexichat <category> <command>`).
    Commands {
        #[command(subcommand)]
        command: CommandsCommand,
    },
    /// Open the desktop window (`plexichat-gui`, beside this binary, when built with the
    /// `gui` feature and a display is there); otherwise open the system browser at the
    /// server's pages, and say so.
    Gui {
        /// The server to show [default: `[server] bind` of the configuration].
        #[arg(long, value_name = "URL")]
        server: Option<url::Url>,
        /// Only this page, `<plugin>/<page>` (e.g. `test_manager/dashboard`).
        #[arg(long, value_name = "PLUGIN/PAGE")]
        page: Option<String>,
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI 3.1 document of every route this binary serves, as `GET
    /// /openapi.json` answers it, without starting a server.
    Openapi {
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults];
        /// with `[server] metrics_bind`, `/metrics` is not on the main address.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CommandsCommand {
    /// Every plugin command, by category and name, with its plugin, flags and one-line help.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Write a backup while the server may keep running: a consistent snapshot of the
    /// database, each plugin's data folder, and a manifest with a SHA-256 per entry.
    Create {
        /// The archive to write [default: <data>/backups/plexichat-<time>-<random>.tar,
        /// where the admin API lists it].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check an archive without changing anything: every checksum, every path, and whether
    /// this binary's plugins and migrations can take its data. Exit 0 when it can be
    /// restored, 2 when not (the reason is printed).
    Verify {
        /// The archive.
        file: PathBuf,
    },
    /// Replace the data with an archive's. Refused while a server runs on the data
    /// directory, and for any archive `backup verify` refuses; the previous data is kept in
    /// <data>/pre-restore-<time>/.
    Restore {
        /// The archive.
        file: PathBuf,
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Every migration of core and of each plugin the configuration starts: applied,
    /// pending, changed since applied, or vanished. Exit 0 when nothing is changed or
    /// vanished, 1 otherwise.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Apply every pending migration without serving; safe to run while replicas start.
    Migrate {
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration (with environment overrides applied) and report every
    /// problem; starts nothing. Exit 0 when valid, 2 when not.
    Check {
        /// The file [default: plexichat.toml if it exists, else built-in defaults].
        file: Option<PathBuf>,
    },
    /// Print the JSON Schema of the configuration for exactly this binary's plugins.
    Schema,
    /// Print a complete, commented configuration with every default.
    Example,
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Every compiled-in plugin with its version, type, the state the configuration starts
    /// it in, dependencies, routes and handlers.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run plugins' own tests (`#[plugin_test]`) in-process, every plugin started as a
    /// server starts it, on the configured database and data folder; exit 1 if any failed.
    SelfTest {
        /// Only this plugin's tests.
        name: Option<String>,
        /// Only this test of the plugin.
        test: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write a JUnit XML report to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// One plugin's manifest, state and registrations.
    Info {
        /// Plugin name, as `plugins list` shows it.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Configuration file [default: plexichat.toml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub(crate) fn main(enabled: &[&str]) -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Built before parsing: plugins' command categories are part of the command line. A
    // registry that cannot run is reported once the command line is parsed.
    let registry = Registry::linked();
    let tree = match &registry {
        Ok(registry) => crate::commands::tree(Cli::command(), registry, &argv),
        Err(_) => Ok(Cli::command()),
    };
    let tree = match tree {
        Ok(tree) => tree,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(refusal) = left_out_category(&tree, &argv, enabled) {
        eprintln!("error: {refusal}");
        return ExitCode::from(2);
    }
    let matches = tree.get_matches_from(argv);
    if matches.subcommand_name() != Some("serve") {
        end_quietly_on_a_closed_pipe();
    }
    // A plugin command's output is its own: the framework's progress lines (database open,
    // migrations applied) are for `RUST_LOG=info`.
    let plugin_command = matches.subcommand_name().is_some_and(|name| {
        registry
            .as_ref()
            .is_ok_and(|registry| crate::commands::is_category(registry, name))
    });
    let default_filter = if plugin_command { "warn" } else { "info" };
    // Standard error, and plugins' log sinks (`#[log_sink]`), both behind `RUST_LOG`'s filter.
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .with(plexichat_kernel::runtime::log_sinks::LogSinkLayer)
            .init();
    }
    match run(matches, registry, enabled) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit_code(&error)
        }
    }
}

/// When the first word is no command of this binary but a command category of a plugin it
/// was built without, what to say instead of clap's "unrecognized subcommand": which plugin
/// provides it and how to build it in.
fn left_out_category(
    tree: &clap::Command,
    argv: &[std::ffi::OsString],
    enabled: &[&str],
) -> Option<String> {
    let word = argv.get(1)?.to_str()?;
    if tree.find_subcommand(word).is_some() {
        return None;
    }
    let (_, plugin) = crate::plugins::COMMAND_CATEGORIES
        .iter()
        .find(|(category, plugin)| *category == word && !enabled.contains(plugin))?;
    let mut with: Vec<&str> = enabled.to_vec();
    with.push(plugin);
    Some(format!(
        "`plexichat {word}` is a command of plugin `{plugin}`, which this binary was built without; \
         build it in with `cargo xtask build-app --plugins {}` (or `--all`)",
        with.join(",")
    ))
}

/// Restores the default action of `SIGPIPE`, which Rust's runtime ignores: a command whose
/// reader went away (`plexichat tests list | head -1`) then ends at once and quietly, with
/// the status a shell reports for that (141), as `ls` and `cat` do, instead of panicking in
/// `println!`. Not for `serve`: a server outlives its readers. Sockets are unaffected either
/// way (the standard library sends with `MSG_NOSIGNAL`).
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with a valid signal number and `SIG_DFL` only changes this process's
    // disposition; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(
    matches: clap::ArgMatches,
    registry: Result<Registry, plexichat::RegistryErrors>,
    enabled: &[&str],
) -> anyhow::Result<()> {
    let registry = registry.context("the compiled-in plugins cannot run together")?;
    registry
        .expect_exactly(enabled)
        .context("refusing to start")?;
    if let Some((category, command)) = matches.subcommand()
        && crate::commands::is_category(&registry, category)
    {
        return crate::commands::run(registry, category, command);
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match cli.command {
        Command::Serve {
            config,
            bind,
            request_timeout,
            body_limit,
            strict,
        } => serve::run(
            registry,
            config.as_deref(),
            bind,
            request_timeout,
            body_limit,
            strict,
        ),
        Command::Config { command } => command.run(&registry),
        Command::Db { command } => command.run(registry),
        Command::Backup { command } => command.run(&registry),
        Command::Plugins { command } => command.run(registry),
        Command::Commands {
            command: CommandsCommand::List { json },
        } => crate::commands::list(&registry, json),
        Command::Gui {
            server,
            page,
            config,
        } => {
            let file = config;
            let config = load_config(&registry, file.as_deref())?;
            crate::gui::open(server, page, &config, file.as_deref())
        }
        Command::Openapi { config } => {
            let config = load_config(&registry, config.as_deref())?;
            describe::openapi(&registry, &config)
        }
    }
}

impl ConfigCommand {
    /// Runs `config check | schema | example`.
    fn run(self, registry: &Registry) -> anyhow::Result<()> {
        match self {
            ConfigCommand::Check { file } => configuration::check(registry, file.as_deref()),
            ConfigCommand::Schema => configuration::schema(registry),
            ConfigCommand::Example => configuration::example(registry),
        }
    }
}

impl DbCommand {
    /// Runs `db status | migrate`.
    fn run(self, registry: Registry) -> anyhow::Result<()> {
        match self {
            DbCommand::Status { json, config } => {
                let config = load_config(&registry, config.as_deref())?;
                db::status(registry, config, json)
            }
            DbCommand::Migrate { config } => {
                let config = load_config(&registry, config.as_deref())?;
                db::migrate(registry, config)
            }
        }
    }
}

impl BackupCommand {
    /// Runs `backup create | verify | restore`.
    fn run(self, registry: &Registry) -> anyhow::Result<()> {
        match self {
            BackupCommand::Create { out, config } => {
                let config = load_config(registry, config.as_deref())?;
                backup::create(registry, &config, out)
            }
            BackupCommand::Verify { file } => backup::verify(registry, &file),
            BackupCommand::Restore { file, config } => {
                let config = load_config(registry, config.as_deref())?;
                backup::restore(registry, &config, &file)
            }
        }
    }
}

impl PluginsCommand {
    /// Runs `plugins list | self-test | info`.
    fn run(self, registry: Registry) -> anyhow::Result<()> {
        match self {
            PluginsCommand::List { json, config } => {
                let config = load_config(&registry, config.as_deref())?;
                describe::list(&registry, &configured_states(&registry, &config), json)
            }
            PluginsCommand::SelfTest {
                name,
                test,
                json,
                junit,
                config,
            } => crate::selftest::run(
                registry,
                crate::selftest::SelfTest {
                    plugin: name,
                    test,
                    config,
                    json,
                    junit,
                },
            ),
            PluginsCommand::Info { name, json, config } => {
                let config = load_config(&registry, config.as_deref())?;
                let states = configured_states(&registry, &config);
                describe::info(&registry, &states, &name, json)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plugins may not take a core command's name as a category: the registry refuses the
    /// names in `CORE_COMMANDS`, which must therefore hold every command of this binary.
    #[test]
    fn every_core_command_is_reserved_for_plugins() {
        for command in Cli::command().get_subcommands() {
            let name = command.get_name();
            assert!(
                plexichat_kernel::registry::CORE_COMMANDS.contains(&name),
                "`{name}` is missing from CORE_COMMANDS"
            );
        }
    }
}
