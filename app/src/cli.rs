//! The command line: `serve`, `config`, `plugins`, `db`, `backup`, `commands`, and the
//! plugins' own commands (`commands.rs`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use plexichat::config::{self, Config, ConfigFile, Flag};
use plexichat::info::PluginInfo;
use plexichat::{PluginStatus, Registry, Runtime, server};

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

/// Runs `write` on a buffered standard output and flushes it: a listing of a thousand plugins
/// is ten thousand lines, which unbuffered (stdout is line-buffered) cost a system call each.
pub(crate) fn buffered(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock<'static>>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write(&mut out)?;
    out.flush()?;
    Ok(())
}

/// `value` as pretty JSON and a newline: what every `--json` prints.
pub(crate) fn write_json<T: plexichat::serde::Serialize + ?Sized>(
    out: &mut impl Write,
    value: &T,
) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// An error that is the user's to fix, reported with exit code 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

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
    let matches = tree.get_matches_from(argv);
    // A plugin command's output is its own: the framework's progress lines (database open,
    // migrations applied) are for `RUST_LOG=info`.
    let plugin_command = matches.subcommand_name().is_some_and(|name| {
        registry
            .as_ref()
            .is_ok_and(|registry| crate::commands::is_category(registry, name))
    });
    let default_filter = if plugin_command { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(matches, registry, enabled) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.is::<UsageError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
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
            config: config_path,
            bind,
            request_timeout,
            body_limit,
            strict,
        } => {
            // Flags beat the file and the environment, and are validated exactly like them.
            let mut flags = Vec::new();
            if let Some(bind) = bind {
                flags.push(Flag::text("--bind", "/server/bind", bind.to_string()));
            }
            if let Some(timeout) = request_timeout {
                flags.push(Flag::text(
                    "--request-timeout",
                    "/server/request_timeout",
                    timeout,
                ));
            }
            if let Some(limit) = body_limit {
                flags.push(Flag::integer(
                    "--body-limit",
                    "/server/body_limit",
                    i64::try_from(limit).unwrap_or(i64::MAX),
                ));
            }
            let file = ConfigFile::locate(config_path.as_deref());
            let config = Config::load(&file, &environment(), &flags, &registry)
                .map_err(|errors| UsageError(errors.to_string()))?;
            serve(registry, config, file, flags, strict)
        }
        Command::Config { command } => match command {
            ConfigCommand::Check { file } => {
                let located = ConfigFile::locate(file.as_deref());
                let environment = environment();
                let config = Config::load(&located, &environment, &[], &registry)
                    .map_err(|errors| UsageError(errors.to_string()))?;
                let configured: Vec<&str> = config.plugin_values.keys().copied().collect();
                let overrides: Vec<&str> = environment
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .filter(|name| {
                        name.starts_with(config::ENV_PREFIX) || *name == config::ENV_ADMIN_TOKEN
                    })
                    .collect();
                let directory = std::env::current_dir().unwrap_or_default();
                println!(
                    "{}",
                    check_report(&located, &directory, &overrides, &configured)
                );
                Ok(())
            }
            ConfigCommand::Schema => {
                let mut out = std::io::stdout().lock();
                write_json(&mut out, &config::schema(&registry))?;
                Ok(())
            }
            ConfigCommand::Example => {
                print!("{}", config::example(&registry));
                Ok(())
            }
        },
        Command::Db { command } => match command {
            DbCommand::Status { json, config } => {
                let config = load_config(&registry, config.as_deref())?;
                db_status(registry, config, json)
            }
            DbCommand::Migrate { config } => {
                let config = load_config(&registry, config.as_deref())?;
                db_migrate(registry, config)
            }
        },
        Command::Backup { command } => match command {
            BackupCommand::Create { out, config } => {
                let config = load_config(&registry, config.as_deref())?;
                backup_create(&registry, &config, out)
            }
            BackupCommand::Verify { file } => {
                let manifest =
                    plexichat::storage::backup::verify(&file, &registry).map_err(backup_error)?;
                println!(
                    "{}: a {} backup of {} entries taken {} by PlexiChat {}; every checksum matches and this binary can restore it",
                    file.display(),
                    manifest.engine,
                    manifest.entries.len(),
                    plexichat::storage::backup::format_time(manifest.created_at),
                    manifest.plexichat_version
                );
                Ok(())
            }
            BackupCommand::Restore { file, config } => {
                let config = load_config(&registry, config.as_deref())?;
                let report = block_on(async {
                    plexichat::storage::backup::restore(&file, &registry, &config)
                        .await
                        .map_err(backup_error)
                })?;
                let loaded = report.loaded.map_or(String::new(), |loaded| {
                    format!(", {} rows in {} tables", loaded.rows, loaded.tables)
                });
                println!(
                    "restored {} ({} backup, {} entries{loaded}) into {} ({}); the previous files are in {}{}",
                    file.display(),
                    report.manifest.engine,
                    report.manifest.entries.len(),
                    config.data.dir.display(),
                    config.data.database_url().redacted(),
                    report.previous.display(),
                    report
                        .previous_schema
                        .map_or(String::new(), |schema| format!(
                            " and the previous tables in schema {schema}"
                        ))
                );
                Ok(())
            }
        },
        Command::Plugins { command } => match command {
            PluginsCommand::List { json, config } => {
                let config = load_config(&registry, config.as_deref())?;
                list(&registry, &configured_states(&registry, &config), json)
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
                info(
                    &registry,
                    &configured_states(&registry, &config),
                    &name,
                    json,
                )
            }
        },
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
            let document =
                plexichat::openapi::document(&registry, config.server.metrics_bind.is_none());
            let mut out = std::io::stdout().lock();
            write_json(&mut out, &document)?;
            Ok(())
        }
    }
}

/// What `config check` prints for a valid configuration: what it checked (the file, or the
/// built-in defaults and where it looked for a file), the environment variables that
/// overrode it, and the plugins with settings.
fn check_report(
    file: &ConfigFile,
    directory: &Path,
    overrides: &[&str],
    configured: &[&str],
) -> String {
    let overridden = if overrides.is_empty() {
        String::new()
    } else {
        format!(" (with overrides from {})", overrides.join(", "))
    };
    let checked = match file {
        ConfigFile::Given(path) | ConfigFile::Found(path) => {
            format!("{} is valid{overridden}", path.display())
        }
        ConfigFile::None => format!(
            "the built-in defaults are valid{overridden}; no file was given and there is no {}",
            directory.join(config::DEFAULT_FILE).display()
        ),
    };
    let configured = if configured.is_empty() {
        "none".to_string()
    } else {
        configured.join(", ")
    };
    format!("ok: {checked}; configured plugins: {configured}")
}

/// Reads `path` (or `plexichat.toml` if present, or nothing), applies the environment, and
/// validates. Any problem is the user's to fix, so it exits 2 with every issue listed.
pub(crate) fn load_config(registry: &Registry, path: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(&ConfigFile::locate(path), &environment(), &[], registry)
        .map_err(|errors| UsageError(errors.to_string()).into())
}

/// The process environment; variables that are not UTF-8 cannot be overrides and are skipped
/// rather than panicking.
fn environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

fn serve(
    registry: Registry,
    config: Config,
    file: ConfigFile,
    flags: Vec<Flag>,
    strict: bool,
) -> anyhow::Result<()> {
    plexichat::data_dir::create(&config.data.dir)?;
    // Shared with other servers on this folder, exclusive for a restore: a server never
    // starts on data being replaced.
    let _lock = plexichat::data_dir::lock(&config.data.dir, false)?.map_err(|()| {
        anyhow::anyhow!(
            "a restore is replacing the data in {}; start the server when it is done",
            config.data.dir.display()
        )
    })?;
    let mut options = server::ServerOptions::from(&config.server);
    options.strict = strict;
    if options.admin_token.is_none() {
        // Log where the token is, never the token itself.
        let (token, path, created) = plexichat::data_dir::ensure_token(&config.data.dir)?;
        let what = if created {
            "generated an admin token"
        } else {
            "using the admin token in the data directory"
        };
        tracing::info!(path = %path.display(), "{what}");
        options.admin_token = Some(token);
    }
    let bind = config.server.bind;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let names: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
        tracing::info!(plugins = ?names, backend = plexichat::registry::BACKEND, "starting");
        // A reload reads the file chosen at start again, with the environment as it is then
        // and the same flags; a file that went missing or empty is refused.
        let source: plexichat::runtime::ConfigSource = std::sync::Arc::new(move |registry| {
            Config::reload(&file, &environment(), &flags, registry)
        });
        let storage = open_storage(&config).await?;
        let runtime = Runtime::with_storage(registry, config, Some(source), storage);
        // Every migration before any `init`: a changed or vanished one stops the start here.
        let report = runtime.migrate().await.context("refusing to start")?;
        if !report.applied.is_empty() {
            tracing::info!(applied = report.applied.len(), "database migrated");
        }
        // Plugin tests run on this server reach its routes with its admin token.
        plexichat::tests::Runner::of(&runtime).set_server_options(&options);
        reload_on_sighup(runtime.clone());
        let shutdown = async {
            server::shutdown_signal().await;
            exit_on_second_signal();
        };
        server::serve(listener, runtime, options, shutdown)
            .await
            .context("server failed")
    })
}

/// Opens the configured database: a bad URL is the operator's to fix (exit 2), a server that
/// refuses is not (exit 1); both name the URL without its password.
pub(crate) async fn open_storage(config: &Config) -> anyhow::Result<plexichat::storage::Storage> {
    plexichat::data_dir::create(&config.data.dir)?;
    match plexichat::storage::Storage::open(&config.data).await {
        Ok(storage) => {
            tracing::info!(
                engine = %storage.database().engine(),
                url = %storage.database().url(),
                "database open"
            );
            Ok(storage)
        }
        Err(error @ plexichat::storage::DatabaseError::InvalidUrl { .. }) => {
            Err(UsageError(format!("{error}; fix `[data] database`")).into())
        }
        Err(error) => Err(error.into()),
    }
}

/// A single-threaded async runtime for a command that talks to the database.
pub(crate) fn block_on<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}

/// `db status`: a table (or JSON) of every migration's state.
fn db_status(registry: Registry, config: Config, json: bool) -> anyhow::Result<()> {
    use plexichat::storage::migrate::MigrationState;
    let report = block_on(async {
        let storage = open_storage(&config).await?;
        let url = storage.database().url().to_string();
        let engine = storage.database().engine();
        let runtime = Runtime::with_storage(registry, config, None, storage);
        Ok((runtime.migration_status().await?, url, engine))
    })?;
    let (report, url, engine) = report;
    let broken = report.iter().any(|plugin| {
        plugin.count(MigrationState::Changed) + plugin.count(MigrationState::Vanished) > 0
    });
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({ "database": url, "engine": engine, "plugins": report });
        write_json(&mut out, &value)?;
    } else {
        writeln!(out, "database: {url} ({engine})")?;
        for plugin in &report {
            let counts = [
                MigrationState::Applied,
                MigrationState::Pending,
                MigrationState::Changed,
                MigrationState::Vanished,
            ]
            .map(|state| plugin.count(state));
            writeln!(
                out,
                "{}: {} applied, {} pending{}{}",
                plugin.plugin,
                counts[0],
                counts[1],
                if counts[2] > 0 {
                    format!(", {} CHANGED", counts[2])
                } else {
                    String::new()
                },
                if counts[3] > 0 {
                    format!(", {} VANISHED", counts[3])
                } else {
                    String::new()
                },
            )?;
            for migration in &plugin.migrations {
                let state = serde_json::to_value(migration.state)?;
                writeln!(
                    out,
                    "  {:<8} {} {}",
                    state.as_str().unwrap_or_default(),
                    migration.name,
                    &migration.checksum[..12.min(migration.checksum.len())]
                )?;
            }
        }
    }
    if broken {
        anyhow::bail!("some applied migrations were changed or removed since; see above");
    }
    Ok(())
}

/// A refused archive is the operator's to fix (exit 2); anything else is a failure (exit 1).
fn backup_error(error: plexichat::storage::backup::BackupError) -> anyhow::Error {
    match error {
        error @ plexichat::storage::backup::BackupError::Refused { .. } => {
            UsageError(error.to_string()).into()
        }
        other => other.into(),
    }
}

/// `backup create`: writes the archive and says where.
fn backup_create(registry: &Registry, config: &Config, out: Option<PathBuf>) -> anyhow::Result<()> {
    let out = match out {
        Some(out) => out,
        None => {
            let folder = plexichat::storage::backup::folder(&config.data.dir);
            plexichat::data_dir::create(&folder)?;
            let id = plexichat::storage::backup::new_id(plexichat::storage::database::now_millis());
            folder.join(format!("{id}.tar"))
        }
    };
    let manifest = block_on(async {
        let storage = open_storage(config).await?;
        let database = storage.database().clone();
        // Plugins' backup handlers run on their own instances, which serve nothing here.
        let runtime = Runtime::with_storage(registry.clone(), config.clone(), None, storage);
        let manifest = plexichat::storage::backup::create(&runtime, &out).await;
        database.close().await;
        Ok(manifest?)
    })?;
    let size = std::fs::metadata(&out).map_or(0, |m| m.len());
    println!(
        "wrote {} ({size} bytes, {} entries, {} database)",
        out.display(),
        manifest.entries.len() + 1,
        manifest.engine
    );
    Ok(())
}

/// `db migrate`: applies what is pending and says what ran.
fn db_migrate(registry: Registry, config: Config) -> anyhow::Result<()> {
    let report = block_on(async {
        let storage = open_storage(&config).await?;
        let url = storage.database().url().to_string();
        let runtime = Runtime::with_storage(registry, config, None, storage);
        let report = runtime.migrate().await?;
        Ok((report, url))
    })?;
    let (report, url) = report;
    if report.applied.is_empty() {
        println!("{url}: nothing to apply; every migration is applied");
    } else {
        println!("{url}: applied {} migrations:", report.applied.len());
        for (plugin, name) in &report.applied {
            println!("  {plugin}: {name}");
        }
    }
    Ok(())
}

/// After the first SIGINT or SIGTERM has started a graceful shutdown, a second one exits at
/// once: the operator has decided not to wait.
fn exit_on_second_signal() {
    tokio::spawn(async {
        server::shutdown_signal().await;
        tracing::warn!("second signal received; exiting without finishing the shutdown");
        std::process::exit(130);
    });
}

/// Reloads the configuration on every SIGHUP, logging what changed or why nothing did.
fn reload_on_sighup(runtime: Runtime) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP; reload with the admin API");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received, reloading the configuration");
            if let Err(error) = runtime.reload().await {
                tracing::error!(%error, "reload failed; the previous configuration stays in effect");
            }
        }
    });
}

type States = std::collections::BTreeMap<&'static str, PluginStatus>;

/// The state each plugin would start in under `config` (the server is not started).
fn configured_states(registry: &Registry, config: &Config) -> States {
    plexichat::state::configured(registry, config)
}

/// A plugin's description in its configured state, the same object the HTTP API serves.
fn describe(registry: &Registry, states: &States, name: &str) -> Option<PluginInfo> {
    let plugin = registry.plugin(name)?;
    let status = states.get(name).copied().unwrap_or(PluginStatus::Stopped);
    Some(PluginInfo::new(registry, plugin, status))
}

fn list(registry: &Registry, states: &States, json: bool) -> anyhow::Result<()> {
    buffered(|out| write_list(out, registry, states, json))
}

fn write_list(
    out: &mut impl Write,
    registry: &Registry,
    states: &States,
    json: bool,
) -> anyhow::Result<()> {
    let infos: Vec<PluginInfo> = registry
        .plugins()
        .iter()
        .filter_map(|plugin| describe(registry, states, plugin.name))
        .collect();
    if json {
        write_json(out, &infos)?;
        return Ok(());
    }
    if infos.is_empty() {
        writeln!(out, "no plugins compiled in")?;
        return Ok(());
    }
    let width = infos
        .iter()
        .map(|info| info.manifest.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:<width$}  {:<8}  {:<13}  {:<27}  DEPENDENCIES",
        "NAME", "VERSION", "TYPE", "STATE"
    )?;
    for info in &infos {
        let manifest = info.manifest;
        let dependencies = if manifest.dependencies.is_empty() {
            "-".to_string()
        } else {
            manifest.dependencies.join(", ")
        };
        writeln!(
            out,
            "{:<width$}  {:<8}  {:<13}  {:<27}  {dependencies}",
            manifest.name,
            manifest.version,
            manifest.kind.as_str(),
            info.status.name()
        )?;
        if !manifest.description.is_empty() {
            writeln!(out, "    {}", manifest.description)?;
        }
        write_registrations(out, info, "    ")?;
    }
    write_chain(out, registry)
}

fn info(registry: &Registry, states: &States, name: &str, json: bool) -> anyhow::Result<()> {
    buffered(|out| write_info(out, registry, states, name, json))
}

fn write_info(
    out: &mut impl Write,
    registry: &Registry,
    states: &States,
    name: &str,
    json: bool,
) -> anyhow::Result<()> {
    let Some(info) = describe(registry, states, name) else {
        let known: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
        return Err(UsageError(format!(
            "unknown plugin `{name}`; compiled-in plugins: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
        .into());
    };
    if json {
        write_json(out, &info)?;
        return Ok(());
    }
    let manifest = info.manifest;
    writeln!(out, "{} {}", manifest.name, manifest.version)?;
    writeln!(out, "  {}", manifest.description)?;
    let state = info
        .status
        .reason(manifest.name)
        .unwrap_or_else(|| info.status.name().to_string());
    let fields = [
        ("state", state),
        ("type", manifest.kind.as_str().to_string()),
        ("author", manifest.author.to_string()),
        ("dependencies", manifest.dependencies.join(", ")),
        ("permissions", manifest.permissions.join(", ")),
        ("prefix", manifest.prefix.to_string()),
        ("category", manifest.category.to_string()),
        ("tags", manifest.tags.join(", ")),
        ("license", manifest.license.unwrap_or("").to_string()),
        ("webhooks", manifest.webhooks.join(", ")),
    ];
    for (label, value) in fields {
        if !value.is_empty() {
            writeln!(out, "  {label}: {value}")?;
        }
    }
    for grant in &info.grants {
        writeln!(out, "  permission {}: {}", grant.permission, grant.grants)?;
    }
    for migration in manifest.migrations {
        let files = if migration.sqlite_file == migration.postgres_file {
            migration.sqlite_file.to_string()
        } else {
            format!(
                "{} (SQLite), {} (PostgreSQL)",
                migration.sqlite_file, migration.postgres_file
            )
        };
        writeln!(out, "  migration {}: {files}", migration.name)?;
    }
    if !info.tables.is_empty() {
        writeln!(out, "  tables: {}", info.tables.join(", "))?;
    }
    for command in &info.commands {
        writeln!(
            out,
            "  command plexichat {} {}: {}",
            command.category, command.name, command.about
        )?;
    }
    for page in &info.pages {
        writeln!(out, "  page {} ({}): {}", page.name, page.title, page.url)?;
    }
    if !info.doc_files.is_empty() {
        writeln!(out, "  docs: {}", info.doc_files.join(", "))?;
    }
    if manifest.backup.is_some() {
        writeln!(
            out,
            "  backup handlers: exports its own part into backups (handlers/{}.bin) and imports it on restore",
            manifest.name
        )?;
    }
    write_registrations(out, &info, "  ")?;
    write_chain(out, registry)
}

/// The order in which a request passes every middleware of this binary, outermost first.
fn write_chain(out: &mut impl Write, registry: &Registry) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(out, "middleware chain, outermost first:")?;
    writeln!(
        out,
        "  core     JSON error bodies, body limit, request timeout (every request)"
    )?;
    for middleware in registry.middleware() {
        let scope = match middleware.descriptor.scope {
            plexichat::middleware::MiddlewareScope::Global => "every request".to_string(),
            plexichat::middleware::MiddlewareScope::PluginRoutes => {
                format!("routes of `{}` only", middleware.plugin)
            }
        };
        let form = match middleware.descriptor.call.form() {
            plexichat::middleware::MiddlewareForm::Function => "",
            plexichat::middleware::MiddlewareForm::Layer => ", a tower layer",
        };
        writeln!(
            out,
            "  {:<8} {}::{} (priority {}; {scope}{form})",
            middleware.descriptor.scope.as_str(),
            middleware.plugin,
            middleware.descriptor.name,
            middleware.descriptor.priority,
        )?;
    }
    writeln!(
        out,
        "  core     per route: plugin not running -> 503, handler panic -> 500"
    )?;
    Ok(())
}

fn write_registrations(
    out: &mut impl Write,
    info: &PluginInfo,
    indent: &str,
) -> anyhow::Result<()> {
    for check in &info.health_checks {
        writeln!(
            out,
            "{indent}health {} check {}",
            check.kind.as_str(),
            check.name
        )?;
    }
    for test in &info.tests {
        let limits = match (test.timeout_ms, test.retries) {
            (None, None) => String::new(),
            (timeout, retries) => {
                let mut parts = Vec::new();
                if let Some(ms) = timeout {
                    parts.push(format!(
                        "timeout {:?}",
                        std::time::Duration::from_millis(ms)
                    ));
                }
                if let Some(retries) = retries {
                    parts.push(format!("retries {retries}"));
                }
                format!(", {}", parts.join(", "))
            }
        };
        writeln!(
            out,
            "{indent}test   {} ({}{limits})",
            test.name,
            test.category.as_str()
        )?;
    }
    for middleware in &info.middleware {
        writeln!(
            out,
            "{indent}middleware {} ({}, priority {}, {})",
            middleware.name,
            middleware.scope.as_str(),
            middleware.priority,
            middleware.form.as_str()
        )?;
    }
    for route in &info.routes {
        writeln!(
            out,
            "{indent}route  {} {} -> {}",
            route.method, route.path, route.handler
        )?;
    }
    // The Rust type is what an author writes to subscribe; the name is what logs show.
    for event in &info.events {
        let vetoable = if event.vetoable { ", vetoable" } else { "" };
        writeln!(
            out,
            "{indent}event  {} (type {}{vetoable})",
            event.name, event.rust_type
        )?;
    }
    for handler in &info.event_handlers {
        let rust_type = handler
            .event_type
            .map(|ty| format!(" (type {ty})"))
            .unwrap_or_default();
        // A pre-handler decides before the event happens; `on` handlers see what happened.
        let (word, decides) = if handler.pre {
            ("pre   ", ", may modify or reject")
        } else {
            ("on    ", "")
        };
        writeln!(
            out,
            "{indent}{word} {}{rust_type} -> {} (priority {}{decides})",
            handler.event, handler.handler, handler.priority
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(file, overrides, report)`.
    #[test]
    fn check_reports_as_a_table() {
        let check = |file: ConfigFile, overrides: &[&str], expect: &str| {
            let report = check_report(
                &file,
                Path::new("/srv/chat"),
                overrides,
                &["my_awesome_plugin"],
            );
            assert_eq!(report, expect, "{file:?}");
        };
        check(
            ConfigFile::None,
            &[],
            "ok: the built-in defaults are valid; no file was given and there is no \
             /srv/chat/plexichat.toml; configured plugins: my_awesome_plugin",
        );
        check(
            ConfigFile::None,
            &["PLEXICHAT__SERVER__BIND"],
            "ok: the built-in defaults are valid (with overrides from PLEXICHAT__SERVER__BIND); \
             no file was given and there is no /srv/chat/plexichat.toml; configured plugins: \
             my_awesome_plugin",
        );
        check(
            ConfigFile::Found(PathBuf::from("plexichat.toml")),
            &[],
            "ok: plexichat.toml is valid; configured plugins: my_awesome_plugin",
        );
        check(
            ConfigFile::Given(PathBuf::from("/etc/plexichat.toml")),
            &["PLEXICHAT_ADMIN_TOKEN"],
            "ok: /etc/plexichat.toml is valid (with overrides from PLEXICHAT_ADMIN_TOKEN); \
             configured plugins: my_awesome_plugin",
        );
    }

    /// Plugins may not take a core command's name as a category: the registry refuses the
    /// names in `CORE_COMMANDS`, which must therefore hold every command of this binary.
    #[test]
    fn every_core_command_is_reserved_for_plugins() {
        for command in Cli::command().get_subcommands() {
            let name = command.get_name();
            assert!(
                plexichat::registry::CORE_COMMANDS.contains(&name),
                "`{name}` is missing from CORE_COMMANDS"
            );
        }
    }
}
