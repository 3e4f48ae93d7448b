//! Writing an archive from a live server's storage: the snapshot is taken without stopping
//! anything (SQLite's `VACUUM INTO`, PostgreSQL's repeatable-read export), then assembled
//! with the data folders into a tar file that appears under its name only when complete.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use libsqlite3_sys as ffi;
use serde_json::Value;
use sha2::Digest;
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{Connection, Executor, Row, ValueRef};

use super::{
    ArchivedEntry, ArchivedMigration, ArchivedPlugin, BackupError, FORMAT, HANDLERS_DIR, Hashing,
    MANIFEST, Manifest, PLUGINS_DIR, SQLITE_ENTRY, TABLES_DIR, hex,
};
use plexichat_kernel::config::database::Engine;
use plexichat_kernel::registry::Registry;
use plexichat_kernel::runtime::Runtime;
use plexichat_kernel::storage::Storage;
use plexichat_kernel::storage::database::now_millis;

/// Backs up the runtime's storage into the archive `out` (a new file; its folder must exist)
/// and returns its manifest. The server may go on serving meanwhile: the database part is
/// one consistent snapshot. Then every plugin's backup handler exports its part, and each
/// plugin's data folder is copied as it is while the archive is written. A handler that
/// fails fails the backup, naming its plugin; no archive is left behind.
pub async fn create(runtime: &Runtime, out: &Path) -> Result<Manifest, BackupError> {
    let storage = runtime.storage();
    let registry = runtime.registry();
    let created_at = now_millis();
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".to_string());
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let scratch = parent.join(format!(".{name}.scratch"));
    let _ = std::fs::remove_dir_all(&scratch);
    plexichat_kernel::storage::data_dir::create(&scratch).map_err(|error| BackupError::Io {
        path: scratch.clone(),
        source: std::io::Error::other(error.to_string()),
    })?;
    let result = async {
        let (database, migrations) = match storage.database().engine() {
            Engine::Sqlite => sqlite_snapshot(storage, &scratch).await?,
            Engine::Postgres => postgres_export(storage, registry, &scratch).await?,
        };
        let manifest = Manifest {
            format: FORMAT,
            plexichat_version: plexichat_kernel::abi::expansion::VERSION.to_string(),
            created_at,
            engine: storage.database().engine(),
            plugins: registry
                .plugins()
                .iter()
                .map(|p| ArchivedPlugin {
                    name: p.name.to_string(),
                    version: p.version.to_string(),
                })
                .collect(),
            migrations,
            entries: Vec::new(),
        };
        let mut entries = database;
        for (plugin, data) in runtime.export_backups().await? {
            let file = scratch.join(format!("handler-{plugin}.bin"));
            tokio::fs::write(&file, data)
                .await
                .map_err(BackupError::io(&file))?;
            entries.push((format!("{HANDLERS_DIR}{plugin}.bin"), file));
        }
        let plugins_dir = storage.data_dir().join("plugins");
        let out = out.to_path_buf();
        tokio::task::spawn_blocking(move || assemble(&out, manifest, &entries, &plugins_dir))
            .await
            .map_err(|error| BackupError::Failed(error.to_string()))?
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Entries to write from files: `(path in the archive, file holding it)`.
type DatabaseEntries = Vec<(String, PathBuf)>;

async fn sqlite_snapshot(
    storage: &Storage,
    scratch: &Path,
) -> Result<(DatabaseEntries, Vec<ArchivedMigration>), BackupError> {
    let snapshot = scratch.join("snapshot.sqlite");
    match plexichat_kernel::storage::database::sqlite_path(storage.database().url().expose()) {
        Some(live) if live.is_file() => {
            let target = snapshot.clone();
            tokio::task::spawn_blocking(move || online_backup(&live, &target))
                .await
                .map_err(|error| BackupError::Failed(error.to_string()))?
                .map_err(|error| BackupError::Failed(format!("SQLite snapshot: {error}")))?;
        }
        // An in-memory database has no file to copy pages from.
        _ => {
            let quoted = snapshot.to_string_lossy().replace('\'', "''");
            // One statement, one read transaction: a consistent copy while writers go on.
            storage
                .database()
                .pool()
                .execute(sqlx::AssertSqlSafe(format!("VACUUM INTO '{quoted}'")))
                .await?;
        }
    }
    let url = format!("sqlite://{}?mode=rw", snapshot.to_string_lossy());
    plexichat_kernel::storage::database::install_drivers();
    let mut connection = sqlx::AnyConnection::connect(&url).await?;
    let migrations = applied_migrations(&mut connection).await;
    let _ = connection.close().await;
    Ok((vec![(SQLITE_ENTRY.to_string(), snapshot)], migrations?))
}

/// Copies the SQLite database `source` into the new file `target` with SQLite's online
/// backup API in one step: pages are copied as they are (`VACUUM INTO` rebuilds every table
/// and index, about 20% slower on a large database), inside one read transaction, so the
/// copy is one consistent state while other connections go on writing (WAL). The copy is
/// scratch, written without syncing: the archive it goes into is synced.
fn online_backup(source: &Path, target: &Path) -> Result<(), String> {
    // Read-write without create: a WAL database needs its shared-memory file, which a
    // read-only connection could not make if no server has made it.
    let from = SqliteHandle::open(source, ffi::SQLITE_OPEN_READWRITE)?;
    let to = SqliteHandle::open(target, ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE)?;
    to.execute(c"PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF")?;
    copy_pages(&from, &to)
}

/// A SQLite connection of [`online_backup`]'s, closed when dropped, whatever happened.
struct SqliteHandle(*mut ffi::sqlite3);

impl Drop for SqliteHandle {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `sqlite3_open_v2` (or is null, which
        // `sqlite3_close` accepts) and nothing uses it after this.
        unsafe { ffi::sqlite3_close(self.0) };
    }
}

impl SqliteHandle {
    /// Opens `path` with `flags`; the error names the file.
    fn open(path: &Path, flags: std::ffi::c_int) -> Result<SqliteHandle, String> {
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{} has a NUL byte in its name", path.display()))?;
        let mut db = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; `db` receives a handle,
        // owned by `SqliteHandle` from here on even when opening failed (it must still be
        // closed).
        let code = unsafe { ffi::sqlite3_open_v2(name.as_ptr(), &mut db, flags, std::ptr::null()) };
        let handle = SqliteHandle(db);
        if code != ffi::SQLITE_OK {
            return Err(format!("{}: {}", path.display(), handle.message()));
        }
        Ok(handle)
    }

    /// The connection's last error message.
    fn message(&self) -> String {
        // SAFETY: `sqlite3_errmsg` returns a NUL-terminated string owned by the connection,
        // valid until its next call; it is copied at once.
        unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Runs `sql`, which may hold several statements and returns no rows.
    fn execute(&self, sql: &std::ffi::CStr) -> Result<(), String> {
        // SAFETY: a valid connection and a NUL-terminated statement; no callback.
        let code = unsafe {
            ffi::sqlite3_exec(
                self.0,
                sql.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.message())
        }
    }
}

/// Copies every page of `from`'s main database into `to`'s in one backup step, waiting while
/// the source is busy.
fn copy_pages(from: &SqliteHandle, to: &SqliteHandle) -> Result<(), String> {
    // SAFETY: both connections are open and used by this thread only; the backup object is
    // finished before this returns, so before either is closed (they are dropped by the
    // caller).
    unsafe {
        let backup = ffi::sqlite3_backup_init(to.0, c"main".as_ptr(), from.0, c"main".as_ptr());
        if backup.is_null() {
            return Err(to.message());
        }
        let mut waited = 0;
        let step = loop {
            let code = ffi::sqlite3_backup_step(backup, -1);
            // Busy only while another connection recovers the log; wait up to 10 s.
            if (code == ffi::SQLITE_BUSY || code == ffi::SQLITE_LOCKED) && waited < 1000 {
                waited += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            break code;
        };
        let finished = ffi::sqlite3_backup_finish(backup);
        if step != ffi::SQLITE_DONE {
            // The step's own code: the destination's last message may not be about it.
            let reason = std::ffi::CStr::from_ptr(ffi::sqlite3_errstr(step)).to_string_lossy();
            return Err(format!("copying pages failed: {reason}"));
        }
        if finished != ffi::SQLITE_OK {
            return Err(to.message());
        }
    }
    Ok(())
}

pub(crate) async fn applied_migrations(
    connection: &mut sqlx::AnyConnection,
) -> Result<Vec<ArchivedMigration>, sqlx::Error> {
    let applied = match plexichat_kernel::storage::migrate::applied(&mut *connection).await {
        Ok(applied) => applied,
        // A database nothing ever migrated has no record table yet.
        Err(sqlx::Error::Database(error)) if error.message().contains("plexichat_migrations") => {
            return Ok(Vec::new());
        }
        Err(error) => return Err(error),
    };
    Ok(applied
        .into_iter()
        .map(|applied| ArchivedMigration {
            plugin: applied.plugin,
            version: applied.version,
            name: applied.name,
            checksum: applied.checksum,
        })
        .collect())
}

/// The tables a backup exports: core's, then each plugin's, as their migrations create them.
pub(crate) fn tables(registry: &Registry) -> Vec<String> {
    let mut tables = plexichat_kernel::abi::migration::tables(
        plexichat_kernel::storage::migrate::CORE_MIGRATIONS,
    );
    tables.push("plexichat_migrations".to_string());
    for plugin in registry.plugins() {
        tables.extend(plexichat_kernel::abi::migration::tables(plugin.migrations));
    }
    tables.dedup();
    tables
}

/// `name` quoted as an SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn postgres_export(
    storage: &Storage,
    registry: &Registry,
    scratch: &Path,
) -> Result<(DatabaseEntries, Vec<ArchivedMigration>), BackupError> {
    let mut connection = storage.database().pool().acquire().await?;
    // Every table read in one snapshot, and nothing written by mistake.
    connection
        .execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let result = async {
        let migrations = applied_migrations(&mut connection).await?;
        let mut entries = Vec::new();
        for table in tables(registry) {
            let exists: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(&table)
            .fetch_one(&mut *connection)
            .await?;
            if exists == 0 {
                continue;
            }
            let file = scratch.join(format!("{table}.jsonl"));
            export_table(&mut connection, &table, &file).await?;
            entries.push((format!("{TABLES_DIR}{table}.jsonl"), file));
        }
        Ok::<_, BackupError>((entries, migrations))
    }
    .await;
    let _ = connection.execute("ROLLBACK").await;
    result
}

/// Writes `table` as JSON lines: `{"table", "columns"}`, then one array per row. A column
/// of a type the `Any` driver cannot carry (`uuid`, `numeric`, `timestamptz`, `jsonb`…) is
/// read as its text form, which a restore casts back.
async fn export_table(
    connection: &mut sqlx::AnyConnection,
    table: &str,
    file: &Path,
) -> Result<(), BackupError> {
    use futures_util::TryStreamExt;
    let mut writer = BufWriter::new(std::fs::File::create(file).map_err(BackupError::io(file))?);
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *connection)
    .await?;
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    write_line(
        &mut writer,
        &serde_json::json!({"table": table, "columns": names}),
        file,
    )?;
    if columns.is_empty() {
        return writer.flush().map_err(BackupError::io(file));
    }
    let selected: Vec<String> = columns
        .iter()
        .map(|(name, data_type)| {
            if carried_as_is(data_type) {
                quote(name)
            } else {
                format!("CAST({0} AS TEXT) AS {0}", quote(name))
            }
        })
        .collect();
    let sql = format!("SELECT {} FROM {}", selected.join(", "), quote(table));
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *connection);
    while let Some(row) = rows.try_next().await? {
        let values = (0..columns.len())
            .map(|i| portable(&row, i))
            .collect::<Result<Vec<_>, _>>()?;
        write_line(&mut writer, &Value::Array(values), file)?;
    }
    drop(rows);
    writer.flush().map_err(BackupError::io(file))
}

/// Whether sqlx's `Any` driver reads a PostgreSQL column of `data_type` (as
/// `information_schema` names it) directly.
fn carried_as_is(data_type: &str) -> bool {
    matches!(
        data_type,
        "boolean"
            | "smallint"
            | "integer"
            | "bigint"
            | "real"
            | "double precision"
            | "text"
            | "character varying"
            | "character"
            | "bytea"
    )
}

fn write_line(writer: &mut impl Write, value: &Value, file: &Path) -> Result<(), BackupError> {
    serde_json::to_writer(&mut *writer, value)
        .map_err(|error| BackupError::io(file)(std::io::Error::other(error)))?;
    writer.write_all(b"\n").map_err(BackupError::io(file))
}

/// One value as portable JSON: null, a boolean, a number, a string, `{"base64": …}` for
/// bytes, or `{"float": …}` for a float that is not finite. A column type the `Any` driver cannot carry is an error naming the column.
pub(crate) fn portable(row: &AnyRow, index: usize) -> Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        AnyTypeInfoKind::Null => Value::Null,
        AnyTypeInfoKind::Bool => Value::Bool(row.try_get(index)?),
        AnyTypeInfoKind::SmallInt => Value::from(row.try_get::<i16, _>(index)?),
        AnyTypeInfoKind::Integer => Value::from(row.try_get::<i32, _>(index)?),
        AnyTypeInfoKind::BigInt => Value::from(row.try_get::<i64, _>(index)?),
        AnyTypeInfoKind::Real => float(f64::from(row.try_get::<f32, _>(index)?)),
        AnyTypeInfoKind::Double => float(row.try_get::<f64, _>(index)?),
        AnyTypeInfoKind::Text => Value::String(row.try_get(index)?),
        AnyTypeInfoKind::Blob => serde_json::json!({
            "base64": base64::engine::general_purpose::STANDARD.encode(row.try_get::<Vec<u8>, _>(index)?)
        }),
    })
}

/// A float as JSON: a number, or for what JSON has no number for (`null` would lose it),
/// `{"float": "NaN" | "Infinity" | "-Infinity"}`.
fn float(value: f64) -> Value {
    if value.is_finite() {
        Value::from(value)
    } else if value.is_nan() {
        serde_json::json!({"float": "NaN"})
    } else if value > 0.0 {
        serde_json::json!({"float": "Infinity"})
    } else {
        serde_json::json!({"float": "-Infinity"})
    }
}

/// Writes the archive: the database and handler entries, every plugin's data folder, the
/// manifest; to a `.partial` file renamed to `out` once complete and synced.
fn assemble(
    out: &Path,
    mut manifest: Manifest,
    database: &DatabaseEntries,
    plugins_dir: &Path,
) -> Result<Manifest, BackupError> {
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let _ = std::fs::remove_file(&partial);
        options.open(&partial).map_err(BackupError::io(&partial))?
    };
    let result = (|| {
        let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
        let mtime = u64::try_from(manifest.created_at / 1000).unwrap_or(0);
        let mut add = |builder: &mut tar::Builder<_>, path: &str, source: &Path| {
            let file = std::fs::File::open(source).map_err(BackupError::io(source))?;
            let size = file.metadata().map_err(BackupError::io(source))?.len();
            let mut header = header(size, mtime);
            let mut reader = Hashing::new(file.take(size));
            builder
                .append_data(&mut header, path, &mut reader)
                .map_err(BackupError::io(source))?;
            if reader.read != size {
                return Err(BackupError::Failed(format!(
                    "{} changed size while it was archived",
                    source.display()
                )));
            }
            manifest.entries.push(ArchivedEntry {
                path: path.to_string(),
                size,
                sha256: hex(&reader.hasher.finalize()),
            });
            Ok::<_, BackupError>(())
        };
        for (path, source) in database {
            add(&mut builder, path, source)?;
        }
        for (relative, source) in data_files(plugins_dir)? {
            add(&mut builder, &format!("{PLUGINS_DIR}{relative}"), &source)?;
        }
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|error| BackupError::Failed(error.to_string()))?;
        let mut header = header(text.len() as u64, mtime);
        builder
            .append_data(&mut header, MANIFEST, text.as_slice())
            .map_err(BackupError::io(&partial))?;
        let mut writer = builder.into_inner().map_err(BackupError::io(&partial))?;
        writer.flush().map_err(BackupError::io(&partial))?;
        let file = writer
            .into_inner()
            .map_err(|error| BackupError::io(&partial)(error.into_error()))?;
        file.sync_all().map_err(BackupError::io(&partial))?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            std::fs::rename(&partial, out).map_err(BackupError::io(out))?;
            Ok(manifest)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

fn header(size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// Every regular file under `plugins_dir`, as `(<plugin>/<path>, file)`, sorted. Symbolic
/// links are left out: a plugin's folder never needs one, and following one could copy
/// files from outside it.
fn data_files(plugins_dir: &Path) -> Result<Vec<(String, PathBuf)>, BackupError> {
    let mut found = Vec::new();
    let mut pending = vec![(String::new(), plugins_dir.to_path_buf())];
    while let Some((prefix, dir)) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(BackupError::io(&dir)(error)),
        };
        for entry in entries {
            let entry = entry.map_err(BackupError::io(&dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::warn!(path = %entry.path().display(), "left out of the backup: the name is not UTF-8");
                continue;
            };
            let file_type = entry.file_type().map_err(BackupError::io(&entry.path()))?;
            let relative = format!("{prefix}{name}");
            if file_type.is_dir() {
                pending.push((format!("{relative}/"), entry.path()));
            } else if file_type.is_file() {
                found.push((relative, entry.path()));
            } else {
                tracing::warn!(path = %entry.path().display(), "left out of the backup: not a regular file");
            }
        }
    }
    found.sort();
    Ok(found)
}
