//! Reading an archive back: every entry's path, type, size and SHA-256 against the manifest,
//! and the manifest against this binary (plugins, migrations, version). Nothing here writes
//! outside the folder a caller extracts into.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use sha2::Digest;

use super::{
    BackupError, FORMAT, HANDLERS_DIR, Hashing, MANIFEST, Manifest, PLUGINS_DIR, SQLITE_ENTRY,
    TABLES_DIR, hex,
};
use crate::ArchivedMigration;
use plexichat_kernel::registry::Registry;

/// Checks `archive` whole without changing anything and returns its manifest: every entry
/// against its checksum, and what it holds against this binary's plugins and migrations.
pub fn verify(archive: &Path, registry: &Registry) -> Result<Manifest, BackupError> {
    // A SQLite snapshot is kept aside while scanning, so that it can be opened and checked:
    // checksums only prove the bytes are the ones the manifest lists, and a manifest can be
    // recomputed over any file.
    let snapshot = Scratch::new()?;
    let manifest = scan(archive, |path, reader| {
        if path == SQLITE_ENTRY {
            let mut file = std::fs::File::create(snapshot.path())?;
            std::io::copy(reader, &mut file).map(drop)
        } else {
            std::io::copy(reader, &mut std::io::sink()).map(drop)
        }
    })?;
    compatible(archive, &manifest, registry)?;
    if snapshot.path().exists() {
        check_snapshot(archive, snapshot.path(), &manifest)?;
    }
    Ok(manifest)
}

/// A file in the system's temporary folder, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, BackupError> {
        let name = format!(
            "plexichat-verify-{}-{}.sqlite",
            std::process::id(),
            crate::new_id(plexichat_kernel::storage::database::now_millis())
        );
        Ok(Scratch(std::env::temp_dir().join(name)))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Opens the SQLite snapshot at `path` and checks that it is the database the manifest
/// describes: SQLite's own `PRAGMA integrity_check` passes, and its table of applied
/// migrations holds exactly the manifest's (so every table those migrations made is there,
/// as this binary's migrations will expect). Runs on a thread of its own, so it can be
/// called from async code and from a plain command alike.
fn check_snapshot(archive: &Path, path: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let outcome: Result<(Vec<String>, Vec<ArchivedMigration>), String> =
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|error| error.to_string())?;
                    runtime.block_on(async {
                        use sqlx::Connection as _;
                        plexichat_kernel::storage::database::install_drivers();
                        let mut connection = sqlx::AnyConnection::connect(&url)
                            .await
                            .map_err(|error| error.to_string())?;
                        let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
                            .fetch_all(&mut connection)
                            .await
                            .map_err(|error| error.to_string())?;
                        let migrations = crate::create::applied_migrations(&mut connection)
                            .await
                            .map_err(|error| error.to_string())?;
                        let _ = connection.close().await;
                        Ok((integrity, migrations))
                    })
                })
                .join()
                .unwrap_or_else(|_| Err("the check panicked".to_string()))
        });
    let (integrity, migrations) = outcome.map_err(|error| {
        refused(
            archive,
            format!("the database snapshot cannot be read as a SQLite database: {error}"),
        )
    })?;
    if integrity != ["ok"] {
        let found: Vec<&str> = integrity.iter().take(3).map(String::as_str).collect();
        return Err(refused(
            archive,
            format!(
                "the database snapshot fails SQLite's integrity check: {}",
                found.join("; ")
            ),
        ));
    }
    if migrations != manifest.migrations {
        return Err(refused(
            archive,
            format!(
                "the database snapshot records {} applied migrations where the manifest lists {}: it is not the database this backup was made from",
                migrations.len(),
                manifest.migrations.len()
            ),
        ));
    }
    Ok(())
}

fn refused(archive: &Path, reason: impl Into<String>) -> BackupError {
    BackupError::Refused {
        archive: archive.to_path_buf(),
        reason: reason.into(),
    }
}

/// Why `path` may not be an entry's path, if it may not: only the layout this module writes
/// is accepted, and nothing that could resolve outside the folder it is extracted into.
pub(crate) fn path_problem(path: &str) -> Option<String> {
    if path.is_empty() || path.starts_with('/') || path.contains(['\\', '\0']) {
        return Some(format!("entry `{path}` is not a relative path"));
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Some(format!(
            "entry `{path}` has an empty, `.` or `..` component"
        ));
    }
    let allowed = path == MANIFEST
        || path == SQLITE_ENTRY
        || path.strip_prefix(TABLES_DIR).is_some_and(|table| {
            table.strip_suffix(".jsonl").is_some_and(|name| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
        })
        || path
            .strip_prefix(PLUGINS_DIR)
            .is_some_and(|rest| rest.split('/').count() >= 2)
        || path
            .strip_prefix(HANDLERS_DIR)
            .and_then(|rest| rest.strip_suffix(".bin"))
            .is_some_and(|name| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
    (!allowed).then(|| format!("entry `{path}` is not part of a PlexiChat backup"))
}

/// Reads every entry of `archive`, handing each (after its path is checked) to `sink`, which
/// reads it; checks that the last entry is a manifest listing exactly the entries before it
/// with their sizes and checksums. An archive cut short, or with anything unexpected, is
/// refused with the exact reason.
pub(crate) fn scan(
    archive: &Path,
    mut sink: impl FnMut(&str, &mut dyn Read) -> std::io::Result<()>,
) -> Result<Manifest, BackupError> {
    let file = std::fs::File::open(archive).map_err(BackupError::io(archive))?;
    let mut tar = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, file));
    let mut seen = Vec::new();
    let mut paths = BTreeSet::new();
    let mut manifest: Option<Manifest> = None;
    for entry in tar.entries().map_err(|error| damaged(archive, error))? {
        let mut entry = entry.map_err(|error| damaged(archive, error))?;
        let path = admitted_path(archive, &entry, manifest.is_some(), &mut paths)?;
        if path == MANIFEST {
            manifest = Some(read_manifest(archive, &mut entry)?);
            continue;
        }
        seen.push(read_entry(archive, path, &mut entry, &mut sink)?);
    }
    let Some(manifest) = manifest else {
        return Err(refused(
            archive,
            "no manifest: the archive is incomplete (cut short) or not a PlexiChat backup",
        ));
    };
    if manifest.format != FORMAT {
        return Err(refused(
            archive,
            format!(
                "archive format {} is not the one this binary reads ({FORMAT})",
                manifest.format
            ),
        ));
    }
    match_manifest(archive, &manifest, &seen)?;
    Ok(manifest)
}

/// An entry read by [`scan`]: its path, its size and its SHA-256 as hex.
type Seen = (String, u64, String);

/// The refusal of an archive whose tar structure cannot be read to the end.
fn damaged(archive: &Path, error: std::io::Error) -> BackupError {
    refused(
        archive,
        format!("the archive is truncated or damaged ({error})"),
    )
}

/// The path of `entry`, once it is known to be an allowed path, not after the manifest, a
/// regular file and not already in `paths` (to which it is added).
fn admitted_path<R: Read>(
    archive: &Path,
    entry: &tar::Entry<'_, R>,
    after_manifest: bool,
    paths: &mut BTreeSet<String>,
) -> Result<String, BackupError> {
    let path = String::from_utf8(entry.path_bytes().into_owned())
        .map_err(|_| refused(archive, "an entry's path is not UTF-8"))?;
    if let Some(problem) = path_problem(&path) {
        return Err(refused(archive, problem));
    }
    if after_manifest {
        return Err(refused(
            archive,
            format!("entry `{path}` follows the manifest, which must come last"),
        ));
    }
    if entry.header().entry_type() != tar::EntryType::Regular {
        return Err(refused(
            archive,
            format!("entry `{path}` is not a regular file (links are never restored)"),
        ));
    }
    if !paths.insert(path.clone()) {
        return Err(refused(archive, format!("entry `{path}` appears twice")));
    }
    Ok(path)
}

/// The manifest entry parsed, read up to 16 MiB so that a hostile one cannot exhaust memory.
fn read_manifest(archive: &Path, entry: &mut impl Read) -> Result<Manifest, BackupError> {
    let mut text = Vec::new();
    entry
        .by_ref()
        .take(16 << 20)
        .read_to_end(&mut text)
        .map_err(|error| damaged(archive, error))?;
    serde_json::from_slice(&text)
        .map_err(|error| refused(archive, format!("the manifest is not valid: {error}")))
}

/// Hands `entry` to `sink` while hashing it, reads whatever `sink` left, and returns what
/// the manifest is checked against; an entry shorter than its header says is refused.
fn read_entry<R: Read>(
    archive: &Path,
    path: String,
    entry: &mut tar::Entry<'_, R>,
    sink: &mut impl FnMut(&str, &mut dyn Read) -> std::io::Result<()>,
) -> Result<Seen, BackupError> {
    let size = entry.size();
    let mut hashing = Hashing::new(entry);
    sink(&path, &mut hashing).map_err(|error| {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            damaged(archive, error)
        } else {
            BackupError::Failed(format!("{path}: {error}"))
        }
    })?;
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|error| damaged(archive, error))?;
    if hashing.read != size {
        return Err(refused(
            archive,
            format!(
                "entry `{path}` is truncated: {} of {size} bytes",
                hashing.read
            ),
        ));
    }
    let sha256 = hex(&hashing.hasher.finalize());
    Ok((path, size, sha256))
}

/// Whether the entries `seen` are exactly those `manifest` lists, with its sizes and
/// checksums; the first difference is the reason given.
fn match_manifest(archive: &Path, manifest: &Manifest, seen: &[Seen]) -> Result<(), BackupError> {
    for entry in &manifest.entries {
        match seen.iter().find(|(path, _, _)| *path == entry.path) {
            None => {
                return Err(refused(
                    archive,
                    format!(
                        "entry `{}` is listed in the manifest but missing",
                        entry.path
                    ),
                ));
            }
            Some((_, size, _)) if *size != entry.size => {
                return Err(refused(
                    archive,
                    format!(
                        "entry `{}` has {size} bytes, the manifest says {}",
                        entry.path, entry.size
                    ),
                ));
            }
            Some((_, _, sha256)) if *sha256 != entry.sha256 => {
                return Err(refused(
                    archive,
                    format!(
                        "entry `{}` fails its checksum: SHA-256 {sha256}, the manifest says {}",
                        entry.path, entry.sha256
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some((path, _, _)) = seen
        .iter()
        .find(|(path, _, _)| !manifest.entries.iter().any(|e| e.path == *path))
    {
        return Err(refused(
            archive,
            format!("entry `{path}` is not listed in the manifest"),
        ));
    }
    Ok(())
}

/// Whether this binary can take `manifest`'s data: written by this version of PlexiChat or
/// an older one, every plugin that has data is compiled in at the same or a newer version,
/// and every applied migration is compiled in with the same text.
fn compatible(archive: &Path, manifest: &Manifest, registry: &Registry) -> Result<(), BackupError> {
    let ours = plexichat_kernel::abi::expansion::VERSION;
    if super::compare_versions(&manifest.plexichat_version, ours).is_gt() {
        return Err(refused(
            archive,
            format!(
                "it was written by PlexiChat {}, newer than this binary ({ours})",
                manifest.plexichat_version
            ),
        ));
    }
    let with_data = plugins_with_data(archive, manifest, registry)?;
    plugins_compiled_in(archive, manifest, registry, with_data)?;
    migrations_compiled_in(archive, manifest, registry)
}

/// The plugins `manifest` holds data of (migrations, files or a backup handler's export);
/// an export whose plugin is compiled in without a backup handler is refused.
fn plugins_with_data<'manifest>(
    archive: &Path,
    manifest: &'manifest Manifest,
    registry: &Registry,
) -> Result<BTreeSet<&'manifest str>, BackupError> {
    let mut with_data: BTreeSet<&str> = manifest
        .migrations
        .iter()
        .map(|m| m.plugin.as_str())
        .collect();
    with_data.extend(manifest.entries.iter().filter_map(|e| {
        e.path
            .strip_prefix(PLUGINS_DIR)
            .and_then(|rest| rest.split('/').next())
    }));
    for handled in manifest
        .entries
        .iter()
        .filter_map(|e| e.path.strip_prefix(HANDLERS_DIR)?.strip_suffix(".bin"))
    {
        if registry
            .plugin(handled)
            .is_some_and(|compiled| compiled.backup.is_none())
        {
            return Err(refused(
                archive,
                format!(
                    "it holds what plugin `{handled}`'s backup handler exported, and this binary's `{handled}` has no backup handler to take it back"
                ),
            ));
        }
        with_data.insert(handled);
    }
    Ok(with_data)
}

/// Whether every plugin in `with_data` (but the core) is compiled in, at the version in
/// `manifest` or a newer one.
fn plugins_compiled_in(
    archive: &Path,
    manifest: &Manifest,
    registry: &Registry,
    with_data: BTreeSet<&str>,
) -> Result<(), BackupError> {
    for plugin in with_data {
        if plugin == plexichat_kernel::storage::migrate::CORE {
            continue;
        }
        let Some(compiled) = registry.plugin(plugin) else {
            return Err(refused(
                archive,
                format!("it holds data of plugin `{plugin}`, which this binary does not contain"),
            ));
        };
        if let Some(archived) = manifest.plugins.iter().find(|p| p.name == plugin)
            && super::compare_versions(&archived.version, compiled.version).is_gt()
        {
            return Err(refused(
                archive,
                format!(
                    "plugin `{plugin}` is at version {} in the archive, newer than this binary's {}",
                    archived.version, compiled.version
                ),
            ));
        }
    }
    Ok(())
}

/// Whether every migration `manifest` records as applied is compiled in with the same text
/// for the archive's engine.
fn migrations_compiled_in(
    archive: &Path,
    manifest: &Manifest,
    registry: &Registry,
) -> Result<(), BackupError> {
    for applied in &manifest.migrations {
        let migrations = if applied.plugin == plexichat_kernel::storage::migrate::CORE {
            plexichat_kernel::storage::migrate::CORE_MIGRATIONS
        } else {
            registry
                .plugin(&applied.plugin)
                .map(|p| p.migrations)
                .unwrap_or_default()
        };
        let Some(migration) = migrations
            .iter()
            .find(|m| i64::from(m.version) == applied.version)
        else {
            return Err(refused(
                archive,
                format!(
                    "migration {} `{}` of `{}` is newer than this binary, which does not have it",
                    applied.version, applied.name, applied.plugin
                ),
            ));
        };
        let text = match manifest.engine {
            plexichat_kernel::config::database::Engine::Sqlite => migration.sqlite,
            plexichat_kernel::config::database::Engine::Postgres => migration.postgres,
        };
        if plexichat_kernel::storage::migrate::checksum(text) != applied.checksum {
            return Err(refused(
                archive,
                format!(
                    "migration {} `{}` of `{}` differs from this binary's",
                    applied.version, applied.name, applied.plugin
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of `database` as its SQLite snapshot, with a manifest recomputed over it
    /// (as anyone can write one) listing `migrations`.
    fn archive_of(
        name: &str,
        database: &[u8],
        migrations: Vec<ArchivedMigration>,
    ) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "plexichat-archive-test-{name}-{}.tar",
            std::process::id()
        ));
        let manifest = Manifest {
            format: crate::FORMAT,
            plexichat_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: 0,
            engine: plexichat_kernel::storage::Engine::Sqlite,
            plugins: Vec::new(),
            migrations,
            entries: vec![crate::ArchivedEntry {
                path: SQLITE_ENTRY.to_string(),
                size: database.len() as u64,
                sha256: crate::hex(&sha2::Sha256::digest(database)),
            }],
        };
        let mut tar = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let mut append = |entry: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o600);
            tar.append_data(&mut header, entry, bytes).unwrap();
        };
        append(SQLITE_ENTRY, database);
        append(MANIFEST, &serde_json::to_vec(&manifest).unwrap());
        tar.finish().unwrap();
        path
    }

    /// Checksums prove only that the bytes are the ones the manifest lists: `verify` opens
    /// the snapshot, so a garbage file or another database with a recomputed manifest is
    /// refused before a restore would swap it in.
    #[test]
    fn verify_opens_the_snapshot_and_refuses_what_is_not_the_listed_database() {
        let registry = Registry::from_parts(Vec::new(), Vec::new(), Vec::new()).unwrap();
        let garbage = archive_of("garbage", &[0x5a; 8192], Vec::new());
        let error = verify(&garbage, &registry).unwrap_err().to_string();
        assert!(
            error.contains("cannot be read as a SQLite database"),
            "{error}"
        );

        // A real database, but not the one the manifest describes: it records a migration
        // the manifest does not list.
        let file = std::env::temp_dir().join(format!(
            "plexichat-archive-test-other-{}.sqlite",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&file);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        use sqlx::Connection as _;
                        plexichat_kernel::storage::database::install_drivers();
                        let url = format!("sqlite://{}?mode=rwc", file.display());
                        let mut connection = sqlx::AnyConnection::connect(&url).await.unwrap();
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            "{}; INSERT INTO plexichat_migrations (plugin, version, name, checksum, applied_at) VALUES ('plexichat', 1, 'x', 'y', 0)",
                            plexichat_kernel::storage::migrate::BOOTSTRAP
                        )))
                        .execute(&mut connection)
                        .await
                        .unwrap();
                        connection.close().await.unwrap();
                    });
            });
        });
        let other = archive_of("other", &std::fs::read(&file).unwrap(), Vec::new());
        let error = verify(&other, &registry).unwrap_err().to_string();
        assert!(
            error.contains("records 1 applied migrations where the manifest lists 0"),
            "{error}"
        );
        // Nothing is left in the temporary folder.
        let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&format!("plexichat-verify-{}-", std::process::id())))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        for path in [garbage, other, file] {
            let _ = std::fs::remove_file(path);
        }
    }

    #[test]
    fn only_the_backup_layout_is_accepted() {
        for good in [
            "manifest.json",
            "database/plexichat.sqlite",
            "database/tables/plexichat_kv.jsonl",
            "plugins/audit/notes/a.txt",
        ] {
            assert_eq!(path_problem(good), None, "{good}");
        }
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "plugins/audit/../../x",
            "plugins/audit/./x",
            "plugins//x",
            "plugins/audit",
            "database/tables/../x.jsonl",
            "database/tables/Bad.jsonl",
            "other.txt",
            "plugins\\audit\\x",
            "plugins/a/b\0c",
        ] {
            assert!(path_problem(bad).is_some(), "{bad}");
        }
    }
}
