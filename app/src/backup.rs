//! `plexichat backup create | verify | restore`: one archive of the database and every
//! plugin's data folder, written while the server may run, checked, or put back.

use std::path::{Path, PathBuf};

use plexichat::Registry;
use plexichat_kernel::config::Config;
use plexichat_kernel::runtime::Runtime;

use crate::setup::{block_on, open_storage};
use crate::usage::UsageError;

/// `backup create`: writes the archive and says where.
pub(crate) fn create(
    registry: &Registry,
    config: &Config,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let out = match out {
        Some(out) => out,
        None => {
            let folder = plexichat_backup::folder(&config.data.dir);
            plexichat_kernel::storage::data_dir::create(&folder)?;
            let id = plexichat_backup::new_id(plexichat_kernel::storage::database::now_millis());
            folder.join(format!("{id}.tar"))
        }
    };
    let manifest = block_on(async {
        let storage = open_storage(config).await?;
        let database = storage.database().clone();
        // Plugins' backup handlers run on their own instances, which serve nothing here.
        let runtime = Runtime::with_storage(registry.clone(), config.clone(), None, storage);
        let manifest = plexichat_backup::create(&runtime, &out).await;
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

/// `backup verify`: checks an archive without changing anything and says what it holds.
pub(crate) fn verify(registry: &Registry, file: &Path) -> anyhow::Result<()> {
    let manifest = plexichat_backup::verify(file, registry).map_err(backup_error)?;
    println!(
        "{}: a {} backup of {} entries taken {} by PlexiChat {}; every checksum matches and this binary can restore it",
        file.display(),
        manifest.engine,
        manifest.entries.len(),
        plexichat_backup::format_time(manifest.created_at),
        manifest.plexichat_version
    );
    Ok(())
}

/// `backup restore`: replaces the data with the archive's and says where the previous data
/// went.
pub(crate) fn restore(registry: &Registry, config: &Config, file: &Path) -> anyhow::Result<()> {
    let report = block_on(async {
        plexichat_backup::restore(file, registry, config)
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

/// A refused archive is the operator's to fix (exit 2); anything else is a failure (exit 1).
fn backup_error(error: plexichat_backup::BackupError) -> anyhow::Error {
    match error {
        error @ plexichat_backup::BackupError::Refused { .. } => {
            UsageError(error.to_string()).into()
        }
        other => other.into(),
    }
}
