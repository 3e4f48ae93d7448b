//! What a command needs before it does its work: the configuration (file and environment),
//! the database, and an async runtime to talk to it.

use std::path::Path;

use anyhow::Context;
use plexichat::Registry;
use plexichat_kernel::config::{Config, ConfigFile};

use crate::usage::UsageError;

/// Reads `path` (or `plexichat.toml` if present, or nothing), applies the environment, and
/// validates. Any problem is the user's to fix, so it exits 2 with every issue listed.
pub(crate) fn load_config(registry: &Registry, path: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(&ConfigFile::locate(path), &environment(), &[], registry)
        .map_err(|errors| UsageError(errors.to_string()).into())
}

/// The process environment; variables that are not UTF-8 cannot be overrides and are skipped
/// rather than panicking.
pub(crate) fn environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// Opens the configured database: a bad URL is the operator's to fix (exit 2), a server that
/// refuses is not (exit 1); both name the URL without its password.
pub(crate) async fn open_storage(
    config: &Config,
) -> anyhow::Result<plexichat_kernel::storage::Storage> {
    plexichat_kernel::storage::data_dir::create(&config.data.dir)?;
    match plexichat_kernel::storage::Storage::open(&config.data).await {
        Ok(storage) => {
            tracing::info!(
                target: crate::LOG_TARGET,
                engine = %storage.database().engine(),
                url = %storage.database().url(),
                "database open"
            );
            Ok(storage)
        }
        Err(error @ plexichat_kernel::storage::DatabaseError::InvalidUrl { .. }) => {
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

/// Creates the configured data folder and takes its lock shared with servers and other
/// commands; while a restore holds it exclusively, refuses, saying to `then` when it is done.
pub(crate) fn share_data(
    config: &Config,
    then: &str,
) -> anyhow::Result<plexichat_kernel::storage::data_dir::DirLock> {
    plexichat_kernel::storage::data_dir::create(&config.data.dir)?;
    plexichat_kernel::storage::data_dir::lock(&config.data.dir, false)?.map_err(|()| {
        anyhow::anyhow!(
            "a restore is replacing the data in {}; {then} when it is done",
            config.data.dir.display()
        )
    })
}
