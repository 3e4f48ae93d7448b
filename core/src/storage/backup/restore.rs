//! Replacing a data directory's data with an archive's: everything is checked first, the new
//! state is built in a folder beside the old one, and only then swapped in, keeping the old
//! data in `pre-restore-<time>/`.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{BackupError, Manifest, PLUGINS_DIR, SQLITE_ENTRY};
use crate::config::database::Engine;
use crate::registry::Registry;

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The archive's manifest.
    pub manifest: Manifest,
    /// Where the data it replaced was kept.
    pub previous: PathBuf,
}

/// Test hooks; not for use outside tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Fail after extracting this many entries, as a full disk would.
    pub fail_after_entries: Option<usize>,
}

/// Restores `archive` into the data directory and database of `data`. Refused while a
/// server runs on that data directory, and for any archive [`super::verify`] refuses;
/// either way nothing changes. On success the previous data is kept in the report's
/// `previous` folder.
///
/// It blocks: it reads and writes whole files.
pub fn restore(
    archive: &Path,
    registry: &Registry,
    data: &crate::config::DataSection,
) -> Result<RestoreReport, BackupError> {
    restore_with(archive, registry, data, Options::default())
}

#[doc(hidden)]
pub fn restore_with(
    archive: &Path,
    registry: &Registry,
    data: &crate::config::DataSection,
    options: Options,
) -> Result<RestoreReport, BackupError> {
    let dir = &data.dir;
    crate::storage::data_dir::create(dir)
        .map_err(|error| BackupError::Failed(error.to_string()))?;
    let _lock = match crate::storage::data_dir::lock(dir, true) {
        Ok(Ok(lock)) => lock,
        Ok(Err(())) => {
            return Err(BackupError::ServerRunning { dir: dir.clone() });
        }
        Err(error) => return Err(BackupError::Failed(error.to_string())),
    };
    let manifest = super::verify(archive, registry)?;
    let url = data.database_url();
    let database = match (manifest.engine, url.engine()) {
        (Engine::Sqlite, Engine::Sqlite) => crate::storage::database::sqlite_path(url.expose())
            .ok_or_else(|| {
                BackupError::Failed(format!(
                    "the database `{}` is not a file to restore into",
                    url.redacted()
                ))
            })?,
        (from, to) => {
            return Err(BackupError::Refused {
                archive: archive.to_path_buf(),
                reason: format!(
                    "restoring a {from} backup into {to} is not supported by this binary yet; only SQLite into SQLite is",
                    from = from.as_str(),
                    to = to.as_str()
                ),
            });
        }
    };
    let stamp = super::new_id(crate::storage::database::now_millis());
    let aside = dir.join(format!(".restore-{stamp}"));
    let _ = std::fs::remove_dir_all(&aside);
    let built = build_aside(archive, &manifest, &aside, options);
    if let Err(error) = built {
        let _ = std::fs::remove_dir_all(&aside);
        return Err(match error {
            error @ (BackupError::Refused { .. } | BackupError::Failed(_)) => error,
            other => BackupError::Failed(other.to_string()),
        });
    }
    let previous = dir.join(format!("pre-restore-{stamp}"));
    swap(&aside, &previous, &database, dir).map_err(|error| {
        BackupError::Failed(format!(
            "{error}; the previous data is in {}",
            previous.display()
        ))
    })?;
    let _ = std::fs::remove_dir_all(&aside);
    Ok(RestoreReport { manifest, previous })
}

/// Extracts the archive into `aside` (`plexichat.db` and `plugins/`), checking every
/// entry's checksum again as it is written: the file may have changed since it was verified.
fn build_aside(
    archive: &Path,
    manifest: &Manifest,
    aside: &Path,
    options: Options,
) -> Result<(), BackupError> {
    crate::storage::data_dir::create(aside)
        .map_err(|error| BackupError::Failed(error.to_string()))?;
    let mut written = 0usize;
    let again = super::archive::scan(archive, |path, reader| {
        if options.fail_after_entries == Some(written) {
            return Err(std::io::Error::other("injected failure"));
        }
        let target = if path == SQLITE_ENTRY {
            aside.join("plexichat.db")
        } else if let Some(rest) = path.strip_prefix(PLUGINS_DIR) {
            // `scan` has refused `..`, `.`, empty and absolute components already.
            aside.join("plugins").join(rest)
        } else {
            return std::io::copy(reader, &mut std::io::sink()).map(drop);
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&target)?;
        std::io::copy(&mut reader.take(u64::MAX), &mut file)?;
        file.sync_all()?;
        written += 1;
        Ok(())
    })?;
    if again != *manifest {
        return Err(BackupError::Failed(
            "the archive changed while it was restored".to_string(),
        ));
    }
    Ok(())
}

/// Moves the current data into `previous` and the new data from `aside` into place. The
/// database is replaced by one rename; its write-ahead log is moved out first, as SQLite
/// would otherwise apply the old log to the new file.
fn swap(aside: &Path, previous: &Path, database: &Path, dir: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(previous).map_err(BackupError::io(previous))?;
    let name = database
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plexichat.db".to_string());
    if database.exists() {
        std::fs::hard_link(database, previous.join(&name))
            .or_else(|_| std::fs::copy(database, previous.join(&name)).map(drop))
            .map_err(BackupError::io(database))?;
    }
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", database.display()));
        if side.exists() {
            std::fs::rename(&side, previous.join(format!("{name}{suffix}")))
                .map_err(BackupError::io(&side))?;
        }
    }
    let new_database = aside.join("plexichat.db");
    std::fs::rename(&new_database, database).map_err(BackupError::io(database))?;
    let plugins = dir.join("plugins");
    if plugins.exists() {
        std::fs::rename(&plugins, previous.join("plugins")).map_err(BackupError::io(&plugins))?;
    }
    let new_plugins = aside.join("plugins");
    if new_plugins.exists() {
        std::fs::rename(&new_plugins, &plugins).map_err(BackupError::io(&plugins))?;
    }
    Ok(())
}
