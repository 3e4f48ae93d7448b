//! Backups: one tar archive holding a consistent snapshot of the database, every plugin's
//! data folder and a manifest with a SHA-256 per entry; checked whole before a restore
//! changes anything.
//!
//! - `create`: writing an archive from a live server's storage.
//! - `archive`: reading one back, with every check a restore relies on.
//! - `load`: building the archived schema on either engine and filling it row by row.
//! - `restore`: replacing the data with an archive's, built aside and swapped in.
//!
//! The archive's entries, in order: `database/plexichat.sqlite` (SQLite: an online-backup
//! snapshot, a complete database file) or `database/tables/<table>.jsonl` (PostgreSQL: each
//! table exported portably inside one read-only repeatable-read transaction), then
//! `handlers/<name>.bin` (what each plugin's backup handler exported, after the database
//! snapshot), then `plugins/<name>/…`, then `manifest.json`. The manifest comes last because it lists the
//! checksums of everything before it; an archive cut short has none and is refused.

mod archive;
mod create;
mod load;
mod restore;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use archive::verify;
pub use create::create;
pub use load::Loaded;
pub use restore::{Options as RestoreOptions, RestoreReport, restore, restore_with};

use plexichat_kernel::config::database::Engine;

/// The archive layout this binary writes and reads.
pub const FORMAT: u32 = 1;
/// The last entry: the [`Manifest`].
pub const MANIFEST: &str = "manifest.json";
/// The SQLite snapshot's entry.
pub const SQLITE_ENTRY: &str = "database/plexichat.sqlite";
/// The folder of PostgreSQL's per-table exports.
pub const TABLES_DIR: &str = "database/tables/";
/// The folder of the plugins' data folders.
pub const PLUGINS_DIR: &str = "plugins/";
/// The folder of what plugins' backup handlers exported, one `<plugin>.bin` each.
pub const HANDLERS_DIR: &str = "handlers/";

/// What an archive holds, written as its last entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The version of the PlexiChat that wrote it.
    pub plexichat_version: String,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub created_at: i64,
    /// The engine the data came from.
    pub engine: Engine,
    /// The plugins compiled into the binary that wrote it.
    pub plugins: Vec<ArchivedPlugin>,
    /// Every migration applied in the snapshot, core's included.
    pub migrations: Vec<ArchivedMigration>,
    /// Every other entry, in archive order.
    pub entries: Vec<ArchivedEntry>,
}

/// A plugin in a [`Manifest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArchivedPlugin {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// An applied migration in a [`Manifest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArchivedMigration {
    /// The plugin, or `plexichat` for core.
    pub plugin: String,
    /// Its version.
    pub version: i64,
    /// Its name.
    pub name: String,
    /// SHA-256 of the text that ran.
    pub checksum: String,
}

/// An entry in a [`Manifest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArchivedEntry {
    /// Its path in the archive.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its content, lowercase hex.
    pub sha256: String,
}

/// Why a backup or a restore did not happen. Every variant names what to look at.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A plugin's backup handler failed, panicked or did not finish in time.
    #[error(transparent)]
    PluginHandler(#[from] plexichat_kernel::runtime::HandlerError),
    /// The archive is not one this binary may restore; nothing was changed.
    #[error("refusing {archive}: {reason}")]
    Refused {
        /// The archive.
        archive: PathBuf,
        /// Exactly why.
        reason: String,
    },
    /// A server is using the data directory.
    #[error(
        "a server is running on {dir} (it holds server.lock); stop it before restoring, so that nothing writes while the data is replaced"
    )]
    ServerRunning {
        /// The data directory.
        dir: PathBuf,
    },
    /// PlexiChat servers are connected to the PostgreSQL database being restored into.
    #[error(
        "{sessions} PlexiChat session(s) from {clients} are connected to the database; stop every server using it before restoring, so that nothing writes while the data is replaced"
    )]
    DatabaseInUse {
        /// How many sessions.
        sessions: i64,
        /// Their client addresses.
        clients: String,
    },
    /// The database was restored but the plugins' folders could not be swapped in; the
    /// message says where everything is.
    #[error("restore incomplete: {0}")]
    Incomplete(String),
    /// A restore failed after its checks; the data was left as it was.
    #[error("restore failed, the data is unchanged: {0}")]
    Failed(String),
}

impl BackupError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
        move |source| BackupError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The backups folder of a data directory, where the admin API keeps what it creates.
pub fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

/// `millis` since the Unix epoch as an RFC 3339 time in seconds, UTC.
pub fn format_time(millis: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(millis).unwrap_or(0)),
    )
    .to_string()
}

/// A new backup's identifier: its creation time and four random bytes, safe as a file name.
pub fn new_id(created_at: i64) -> String {
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    let time = format_time(created_at).replace([':', '-'], "");
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("plexichat-{time}-{hex}")
}

/// Whether `id` could name a backup in the folder: letters, digits and `-` only, so that
/// it can never leave it.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A backup the admin API lists.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// Its identifier (the file name without `.tar`).
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
    /// When its file was last written, in milliseconds since the Unix epoch.
    pub modified_at: i64,
}

/// The backups in `data_dir`'s backups folder, newest first.
pub fn list(data_dir: &Path) -> Result<Vec<Listed>, BackupError> {
    let folder = folder(data_dir);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(BackupError::io(&folder)(error)),
    };
    let mut listed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".tar")) else {
            continue;
        };
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if !valid_id(id) || !metadata.is_file() {
            continue;
        }
        let modified_at = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        listed.push(Listed {
            id: id.to_string(),
            size: metadata.len(),
            modified_at,
        });
    }
    listed.sort_by(|a, b| b.modified_at.cmp(&a.modified_at).then(b.id.cmp(&a.id)));
    Ok(listed)
}

/// `a` compared with `b` as dotted version numbers (`1.10.0` > `1.9.2`); a part that is not
/// a number (a pre-release suffix) counts as 0.
pub(crate) fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u64> {
        v.split(['.', '-', '+'])
            .take(3)
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let (mut a, mut b) = (parts(a), parts(b));
    a.resize(3, 0);
    b.resize(3, 0);
    a.cmp(&b)
}

/// A reader that hashes and counts what passes through it: how entries are checksummed
/// when written and when read back.
pub(crate) struct Hashing<R> {
    inner: R,
    pub(crate) hasher: sha2::Sha256,
    pub(crate) read: u64,
}

impl<R> Hashing<R> {
    pub(crate) fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hasher: sha2::Digest::new(),
            read: 0,
        }
    }
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// SHA-256 as lowercase hex.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_file_names_that_cannot_leave_the_folder() {
        let id = new_id(1_700_000_000_000);
        assert!(valid_id(&id), "{id}");
        assert!(id.starts_with("plexichat-20231114T221320Z-"), "{id}");
        for bad in ["", "../x", "a/b", "a.tar", "a b", "%2e%2e"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn versions_compare_by_number() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("1.10.0", "1.9.2"), Greater);
        assert_eq!(compare_versions("0.1.0", "0.1.0"), Equal);
        assert_eq!(compare_versions("0.1", "0.1.1"), Less);
        assert_eq!(compare_versions("2.0.0-beta", "2.0.0"), Equal);
    }
}
