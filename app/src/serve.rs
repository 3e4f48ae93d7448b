//! `plexichat serve`: the compiled-in plugins served over HTTP until SIGINT or SIGTERM, the
//! configuration reloaded on SIGHUP.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use plexichat::Registry;
use plexichat_kernel::config::{Config, ConfigFile, Flag};
use plexichat_kernel::runtime::Runtime;
use plexichat_web as server;

use crate::setup::{environment, open_storage};
use crate::usage::UsageError;

/// Loads the configuration with the command-line flags applied last, then serves.
pub(crate) fn run(
    registry: Registry,
    config_path: Option<&Path>,
    bind: Option<SocketAddr>,
    request_timeout: Option<String>,
    body_limit: Option<u64>,
    strict: bool,
) -> anyhow::Result<()> {
    let flags = flags(bind, request_timeout, body_limit);
    let file = ConfigFile::locate(config_path);
    let config = Config::load(&file, &environment(), &flags, &registry)
        .map_err(|errors| UsageError(errors.to_string()))?;
    serve(registry, config, file, flags, strict)
}

/// The configuration values set on the command line. Flags beat the file and the
/// environment, and are validated exactly like them.
fn flags(
    bind: Option<SocketAddr>,
    request_timeout: Option<String>,
    body_limit: Option<u64>,
) -> Vec<Flag> {
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
    flags
}

/// On embedded SQLite, the data folder's serving lock, held until this process exits (it
/// lives in `serve`'s frame, which returns after the drain and every `stop`): one server per
/// database file. On PostgreSQL several servers may share the database (and folder).
fn serve_alone_on_sqlite(
    config: &Config,
) -> anyhow::Result<Option<plexichat_kernel::storage::data_dir::DirLock>> {
    if config.data.database_url().engine() != plexichat_kernel::storage::Engine::Sqlite {
        return Ok(None);
    }
    let lock = plexichat_kernel::storage::data_dir::serving_lock(&config.data.dir)?;
    lock.map(Some).map_err(|()| {
        anyhow::anyhow!(
            "another server is serving from {} (or still draining and stopping); a data folder \
             with embedded SQLite serves one server at a time: stop that one first, or give this \
             one its own `[data] dir`",
            config.data.dir.display()
        )
    })
}

fn serve(
    registry: Registry,
    config: Config,
    file: ConfigFile,
    flags: Vec<Flag>,
    strict: bool,
) -> anyhow::Result<()> {
    // Shared with other servers on this folder, exclusive for a restore: a server never
    // starts on data being replaced.
    let _lock = crate::setup::share_data(&config, "start the server")?;
    let _serving = serve_alone_on_sqlite(&config)?;
    let options = options(&config, strict)?;
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
        tracing::info!(
            target: crate::LOG_TARGET,
            plugins = ?names,
            backend = plexichat_kernel::registry::BACKEND,
            "starting"
        );
        // A reload reads the file chosen at start again, with the environment as it is then
        // and the same flags; a file that went missing or empty is refused.
        let source: plexichat_kernel::runtime::ConfigSource =
            std::sync::Arc::new(move |registry| {
                Config::reload(&file, &environment(), &flags, registry)
            });
        let storage = open_storage(&config).await?;
        let runtime = Runtime::with_storage(registry, config, Some(source), storage);
        // Every migration before any `init`: a changed or vanished one stops the start here.
        let report = runtime.migrate().await.context("refusing to start")?;
        if !report.applied.is_empty() {
            tracing::info!(
                target: crate::LOG_TARGET,
                applied = report.applied.len(),
                "database migrated"
            );
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

/// The server's options: `[server]` and `--strict`, with the admin token of the data
/// directory (generated there on first use) when the configuration names none.
fn options(config: &Config, strict: bool) -> anyhow::Result<server::ServerOptions> {
    let mut options = server::ServerOptions::from(&config.server);
    options.strict = strict;
    if options.admin_token.is_none() {
        // Log where the token is, never the token itself.
        let (token, path, created) =
            plexichat_kernel::storage::data_dir::ensure_token(&config.data.dir)?;
        let what = if created {
            "generated an admin token"
        } else {
            "using the admin token in the data directory"
        };
        tracing::info!(target: crate::LOG_TARGET, path = %path.display(), "{what}");
        options.admin_token = Some(token);
    }
    Ok(options)
}

/// After the first SIGINT or SIGTERM has started a graceful shutdown, a second one exits at
/// once: the operator has decided not to wait.
fn exit_on_second_signal() {
    tokio::spawn(async {
        server::shutdown_signal().await;
        tracing::warn!(
            target: crate::LOG_TARGET,
            "second signal received; exiting without finishing the shutdown"
        );
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
                tracing::error!(
                    target: crate::LOG_TARGET,
                    %error,
                    "cannot listen for SIGHUP; reload with the admin API"
                );
                return;
            }
        };
        while hangups.recv().await.is_some() {
            tracing::info!(
                target: crate::LOG_TARGET,
                "SIGHUP received, reloading the configuration"
            );
            if let Err(error) = runtime.reload().await {
                tracing::error!(
                    target: crate::LOG_TARGET,
                    %error,
                    "reload failed; the previous configuration stays in effect"
                );
            }
        }
    });
}
