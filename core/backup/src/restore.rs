//! Replacing a data directory's data with an archive's, on either engine: everything is
//! checked first, the new state is built beside the old one (a SQLite file in a folder, or
//! PostgreSQL tables inside one transaction) and only then swapped in, keeping the old data
//! (`pre-restore-<time>/`, and on PostgreSQL a `plexichat_pre_restore_<time>` schema).

use std::io::Read;
use std::path::{Path, PathBuf};

use sqlx::{Connection, Executor, Row};

use super::create::quote;
use super::load::{Loaded, Source, load};
use super::{BackupError, HANDLERS_DIR, Manifest, PLUGINS_DIR, SQLITE_ENTRY, TABLES_DIR};
use plexichat_kernel::config::Config;
use plexichat_kernel::config::database::{DatabaseUrl, Engine};
use plexichat_kernel::registry::Registry;
use plexichat_kernel::runtime::Runtime;
use plexichat_kernel::storage::database::APPLICATION_NAME;

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The archive's manifest.
    pub manifest: Manifest,
    /// Where the files it replaced were kept (the SQLite database and `plugins/`).
    pub previous: PathBuf,
    /// On PostgreSQL, the schema the replaced tables were moved into (none if there were
    /// none).
    pub previous_schema: Option<String>,
    /// Tables and rows loaded, when the rows were loaded one by one (across engines and
    /// into PostgreSQL); a SQLite snapshot restored into SQLite is moved in whole.
    pub loaded: Option<Loaded>,
}

/// Test hooks; not for use outside tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Fail after extracting this many entries, as a full disk would.
    pub fail_after_entries: Option<usize>,
    /// Fail after loading every row, just before the database transaction commits.
    pub fail_before_commit: bool,
}

/// Restores `archive` into the data directory and database of `config`'s `[data]`,
/// whichever engine each uses: a SQLite backup restores into PostgreSQL and back. Refused while a server runs
/// on that data directory (or, on PostgreSQL, is connected to the database), and for any
/// archive [`super::verify`] refuses; either way nothing changes. On success the previous
/// data is kept: files in the report's `previous` folder, PostgreSQL tables in its
/// `previous_schema`.
///
/// Plugins' backup handlers then take back what they exported, on the restored data (their
/// migrations applied first, as the next start would): on SQLite before the new database is
/// swapped in, so a failing handler leaves the data unchanged; on PostgreSQL after the
/// tables are committed, so a failing handler makes the restore [`BackupError::Incomplete`].
///
/// Its file work blocks the calling thread: call it from a command, not from a server's
/// request handler.
pub async fn restore(
    archive: &Path,
    registry: &Registry,
    config: &Config,
) -> Result<RestoreReport, BackupError> {
    restore_with(archive, registry, config, Options::default()).await
}

#[doc(hidden)]
pub async fn restore_with(
    archive: &Path,
    registry: &Registry,
    config: &Config,
    options: Options,
) -> Result<RestoreReport, BackupError> {
    let dir = &config.data.dir;
    let _lock = lock_exclusively(dir)?;
    let manifest = super::verify(archive, registry)?;
    let url = config.data.database_url();
    let sqlite_file = sqlite_file(&url)?;
    let stamp = super::new_id(plexichat_kernel::storage::database::now_millis());
    let aside = dir.join(format!(".restore-{stamp}"));
    let _ = std::fs::remove_dir_all(&aside);
    let _scratch = Scratch(&aside);
    let restore = Restore {
        archive,
        registry,
        config,
        options,
        manifest: &manifest,
        url: &url,
        stamp: &stamp,
        aside: &aside,
    };
    let result = restore.run(sqlite_file.as_deref()).await;
    result.map_err(|error| match error {
        error @ (BackupError::Refused { .. }
        | BackupError::Failed(_)
        | BackupError::Incomplete(_)
        | BackupError::DatabaseInUse { .. }) => error,
        other => BackupError::Failed(other.to_string()),
    })
}

/// The folder a restore builds aside in, removed however the restore ends: an error, or a
/// panic unwinding through it.
struct Scratch<'a>(&'a Path);

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0);
    }
}

/// Creates the data directory `dir` if needed and takes its lock exclusively, refusing while
/// a server holds it.
fn lock_exclusively(
    dir: &Path,
) -> Result<plexichat_kernel::storage::data_dir::DirLock, BackupError> {
    plexichat_kernel::storage::data_dir::create(dir)
        .map_err(|error| BackupError::Failed(error.to_string()))?;
    match plexichat_kernel::storage::data_dir::lock(dir, true) {
        Ok(Ok(lock)) => Ok(lock),
        Ok(Err(())) => Err(BackupError::ServerRunning {
            dir: dir.to_path_buf(),
        }),
        Err(error) => Err(BackupError::Failed(error.to_string())),
    }
}

/// The SQLite file `url` names, or none on PostgreSQL; a SQLite URL that names no file (an
/// in-memory database) cannot be restored into.
fn sqlite_file(url: &DatabaseUrl) -> Result<Option<PathBuf>, BackupError> {
    match url.engine() {
        Engine::Sqlite => Ok(Some(
            plexichat_kernel::storage::database::sqlite_path(url.expose()).ok_or_else(|| {
                BackupError::Failed(format!(
                    "the database `{}` is not a file to restore into",
                    url.redacted()
                ))
            })?,
        )),
        Engine::Postgres => Ok(None),
    }
}

/// One restore once its archive is verified and the data directory locked: what each of its
/// steps needs.
struct Restore<'a> {
    archive: &'a Path,
    registry: &'a Registry,
    config: &'a Config,
    options: Options,
    manifest: &'a Manifest,
    /// The database restored into.
    url: &'a DatabaseUrl,
    /// The time-based id naming the folders and the schema the previous data is kept in.
    stamp: &'a str,
    /// The folder the new state is built in, beside the data it replaces.
    aside: &'a Path,
}

impl Restore<'_> {
    /// Builds the new state aside and swaps it in: the database (into `sqlite_file`, or the
    /// PostgreSQL database when it is none), then the plugins' folders, then on PostgreSQL what
    /// the plugins' backup handlers exported.
    async fn run(&self, sqlite_file: Option<&Path>) -> Result<RestoreReport, BackupError> {
        build_aside(self.archive, self.manifest, self.aside, self.options)?;
        let source = if self.manifest.engine == Engine::Sqlite {
            Source::Sqlite(self.aside.join(SOURCE_SQLITE))
        } else {
            Source::Tables(self.aside.join(SOURCE_TABLES))
        };
        let dir = &self.config.data.dir;
        let previous = dir.join(format!("pre-restore-{}", self.stamp));
        let (previous_schema, loaded) = match sqlite_file {
            Some(database) => (
                None,
                self.replace_sqlite_database(source, &previous, database)
                    .await?,
            ),
            None => {
                let (schema, loaded) = into_postgres(
                    self.url,
                    self.registry,
                    self.manifest,
                    source,
                    self.stamp,
                    self.options,
                )
                .await?;
                (schema, Some(loaded))
            }
        };
        swap_plugins(self.aside, &previous, dir).map_err(|error| {
            BackupError::Incomplete(format!(
                "the database was restored but the plugins' folders were not ({error}); {}",
                kept(&previous, &previous_schema)
            ))
        })?;
        if sqlite_file.is_none() && has_handlers(self.manifest) {
            import_handlers(self.aside, self.url, dir, self.registry, self.config, self.manifest)
                .await
                .map_err(|error| {
                    BackupError::Incomplete(format!(
                        "the database and the plugins' folders were restored but not everything the plugins' backup handlers keep ({error}); {}",
                        kept(&previous, &previous_schema)
                    ))
                })?;
        }
        Ok(RestoreReport {
            manifest: self.manifest.clone(),
            previous,
            previous_schema,
            loaded,
        })
    }

    /// Builds the new SQLite database aside from `source`, lets the backup handlers take
    /// back their parts on it, and swaps it in for `database`, keeping the old one in
    /// `previous`. Returns what was loaded row by row, if anything was.
    async fn replace_sqlite_database(
        &self,
        source: Source,
        previous: &Path,
        database: &Path,
    ) -> Result<Option<Loaded>, BackupError> {
        let new_database = self.aside.join("plexichat.db");
        let loaded = match source {
            // The snapshot is already the database: moved in whole.
            Source::Sqlite(snapshot) => {
                std::fs::rename(&snapshot, &new_database).map_err(BackupError::io(&snapshot))?;
                None
            }
            source => Some(
                into_sqlite(
                    &new_database,
                    self.registry,
                    self.manifest,
                    source,
                    self.options,
                )
                .await?,
            ),
        };
        if has_handlers(self.manifest) {
            // The folders built aside are the ones the handlers see.
            let url = DatabaseUrl::sqlite_file(&new_database);
            import_handlers(
                self.aside,
                &url,
                self.aside,
                self.registry,
                self.config,
                self.manifest,
            )
            .await?;
        }
        swap_database(&new_database, previous, database)?;
        Ok(loaded)
    }
}

/// Where a partly done restore kept the previous data, for its message.
fn kept(previous: &Path, previous_schema: &Option<String>) -> String {
    let tables = previous_schema
        .as_ref()
        .map_or(String::new(), |schema| format!(" and schema {schema}"));
    format!("the previous data is in {}{tables}", previous.display())
}

/// Whether plugins' backup handlers exported anything into the archive.
fn has_handlers(manifest: &Manifest) -> bool {
    manifest
        .entries
        .iter()
        .any(|entry| entry.path.starts_with(HANDLERS_DIR))
}

/// Hands each plugin's exported part (extracted under `aside`) to its import handler, on the
/// database at `url` with plugin folders under `data_dir`, after applying pending
/// migrations: a handler runs against the schema its code expects.
async fn import_handlers(
    aside: &Path,
    url: &DatabaseUrl,
    data_dir: &Path,
    registry: &Registry,
    config: &Config,
    manifest: &Manifest,
) -> Result<(), BackupError> {
    let database = plexichat_kernel::storage::database::Database::open(url)
        .await
        .map_err(|error| BackupError::Failed(error.to_string()))?;
    let storage = plexichat_kernel::storage::Storage::new(database.clone(), data_dir);
    let runtime = Runtime::with_storage(registry.clone(), config.clone(), None, storage);
    let result = async {
        runtime
            .migrate()
            .await
            .map_err(|error| BackupError::Failed(error.to_string()))?;
        for entry in &manifest.entries {
            let Some(plugin) = entry
                .path
                .strip_prefix(HANDLERS_DIR)
                .and_then(|rest| rest.strip_suffix(".bin"))
            else {
                continue;
            };
            let file = aside.join(HANDLERS_SUBDIR).join(format!("{plugin}.bin"));
            let data = std::fs::read(&file).map_err(BackupError::io(&file))?;
            runtime.import_backup(plugin, data).await?;
        }
        Ok(())
    }
    .await;
    // On SQLite the log goes into the file, which is then complete on its own when moved.
    database.shut_down().await;
    database.close().await;
    result
}

/// Where the extracted handlers' parts go in the folder built aside.
const HANDLERS_SUBDIR: &str = "handlers";
/// Where the extracted SQLite snapshot goes in the folder built aside.
const SOURCE_SQLITE: &str = "source.sqlite";
/// Where the extracted table exports go in the folder built aside.
const SOURCE_TABLES: &str = "tables";

/// Builds a new SQLite database at `path` from a source of rows, in one transaction.
async fn into_sqlite(
    path: &Path,
    registry: &Registry,
    manifest: &Manifest,
    source: Source,
    options: Options,
) -> Result<Loaded, BackupError> {
    plexichat_kernel::storage::database::create_file(path).map_err(BackupError::io(path))?;
    let url = format!("sqlite://{}?mode=rw", path.to_string_lossy());
    plexichat_kernel::storage::database::install_drivers();
    let mut connection = sqlx::AnyConnection::connect(&url).await?;
    connection.execute("PRAGMA journal_mode = WAL").await?;
    connection.execute("BEGIN").await?;
    let loaded = load(&mut connection, Engine::Sqlite, registry, manifest, source).await;
    let result = match loaded {
        Ok(_) if options.fail_before_commit => Err(BackupError::Failed(
            "injected failure before commit".to_string(),
        )),
        Ok(loaded) => connection
            .execute("COMMIT")
            .await
            .map(|_| loaded)
            .map_err(Into::into),
        Err(error) => Err(error),
    };
    if result.is_err() {
        let _ = connection.execute("ROLLBACK").await;
    }
    // Closing checkpoints the log into the file, which is then complete on its own.
    connection.close().await?;
    result
}

/// Replaces PlexiChat's tables on a PostgreSQL database in one transaction: the current
/// ones move into a schema of their own, the archived schema is built and filled. Returns
/// that schema's name, if anything was moved.
async fn into_postgres(
    url: &plexichat_kernel::config::database::DatabaseUrl,
    registry: &Registry,
    manifest: &Manifest,
    source: Source,
    stamp: &str,
    options: Options,
) -> Result<(Option<String>, Loaded), BackupError> {
    // One direct connection under a name of its own: a pool's would count as a server's in
    // the check below (its probe connection may linger in `pg_stat_activity`).
    let mut connection =
        plexichat_kernel::storage::database::connect_one(url, RESTORE_APPLICATION_NAME)
            .await
            .map_err(|error| BackupError::Failed(error.to_string()))?;
    connection.execute("BEGIN").await?;
    let result = async {
        // A replica starting meanwhile waits here before it migrates.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(plexichat_kernel::storage::migrate::ADVISORY_LOCK)
            .execute(&mut connection)
            .await?;
        refuse_if_connected(&mut connection, url).await?;
        let schema = move_tables_aside(&mut connection, registry, manifest, stamp).await?;
        let loaded = load(
            &mut connection,
            Engine::Postgres,
            registry,
            manifest,
            source,
        )
        .await?;
        if options.fail_before_commit {
            return Err(BackupError::Failed(
                "injected failure before commit".to_string(),
            ));
        }
        Ok((schema, loaded))
    }
    .await;
    let result = match result {
        Ok(done) => connection
            .execute("COMMIT")
            .await
            .map(|_| done)
            .map_err(Into::into),
        Err(error) => {
            let _ = connection.execute("ROLLBACK").await;
            Err(error)
        }
    };
    let _ = connection.close().await;
    result
}

/// Moves the tables the restore replaces into a new `plexichat_pre_restore_<stamp>` schema,
/// inside the caller's transaction, and returns that schema's name; none when there is no
/// such table.
async fn move_tables_aside(
    connection: &mut sqlx::AnyConnection,
    registry: &Registry,
    manifest: &Manifest,
    stamp: &str,
) -> Result<Option<String>, BackupError> {
    let existing = super::load::existing_tables(&mut *connection, registry, manifest).await?;
    let schema = (!existing.is_empty()).then(|| {
        format!(
            "plexichat_pre_restore_{}",
            stamp
                .trim_start_matches("plexichat-")
                .to_ascii_lowercase()
                .replace('-', "_")
        )
    });
    if let Some(schema) = &schema {
        connection
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA {}",
                quote(schema)
            )))
            .await?;
        for table in &existing {
            // Indexes, constraints and owned sequences move with the table.
            connection
                .execute(sqlx::AssertSqlSafe(format!(
                    "ALTER TABLE {} SET SCHEMA {}",
                    quote(table),
                    quote(schema)
                )))
                .await?;
        }
    }
    Ok(schema)
}

/// The `application_name` of a restore's own PostgreSQL session.
const RESTORE_APPLICATION_NAME: &str = "plexichat-restore";

/// Refuses when a PlexiChat server is connected to the database: servers' sessions carry
/// the URL's `application_name`, [`APPLICATION_NAME`] unless it sets one.
async fn refuse_if_connected(
    connection: &mut sqlx::AnyConnection,
    url: &plexichat_kernel::config::database::DatabaseUrl,
) -> Result<(), BackupError> {
    let name = url::Url::parse(url.expose())
        .ok()
        .and_then(|parsed| {
            parsed
                .query_pairs()
                .find(|(key, _)| key == "application_name")
                .map(|(_, value)| value.into_owned())
        })
        .unwrap_or_else(|| APPLICATION_NAME.to_string());
    let row = sqlx::query(
        "SELECT COUNT(*), COALESCE(string_agg(DISTINCT COALESCE(host(client_addr), 'a local socket'), ', '), '') \
         FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .fetch_one(&mut *connection)
    .await?;
    let sessions: i64 = row.try_get(0)?;
    if sessions > 0 {
        return Err(BackupError::DatabaseInUse {
            sessions,
            clients: row.try_get(1)?,
        });
    }
    Ok(())
}

/// Extracts the archive into `aside` (the database entries, `plugins/` and `handlers/`), checking every
/// entry's checksum again as it is written: the file may have changed since it was verified.
fn build_aside(
    archive: &Path,
    manifest: &Manifest,
    aside: &Path,
    options: Options,
) -> Result<(), BackupError> {
    plexichat_kernel::storage::data_dir::create(aside)
        .map_err(|error| BackupError::Failed(error.to_string()))?;
    let mut written = 0usize;
    let again = super::archive::scan(archive, |path, reader| {
        if options.fail_after_entries == Some(written) {
            return Err(std::io::Error::other("injected failure"));
        }
        // `scan` has refused `..`, `.`, empty and absolute components already.
        let target = if path == SQLITE_ENTRY {
            aside.join(SOURCE_SQLITE)
        } else if let Some(table) = path.strip_prefix(TABLES_DIR) {
            aside.join(SOURCE_TABLES).join(table)
        } else if let Some(rest) = path.strip_prefix(PLUGINS_DIR) {
            aside.join("plugins").join(rest)
        } else if let Some(file) = path.strip_prefix(HANDLERS_DIR) {
            aside.join(HANDLERS_SUBDIR).join(file)
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

/// Moves the current SQLite database into `previous` and `new_database` into its place, by
/// one rename. Its write-ahead log is moved out first, as SQLite would otherwise apply the
/// old log to the new file.
fn swap_database(new_database: &Path, previous: &Path, database: &Path) -> Result<(), BackupError> {
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
    let mut moved = Vec::new();
    let result = (|| {
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", database.display()));
            if side.exists() {
                let kept = previous.join(format!("{name}{suffix}"));
                std::fs::rename(&side, &kept).map_err(BackupError::io(&side))?;
                moved.push((side, kept));
            }
        }
        std::fs::rename(new_database, database).map_err(BackupError::io(database))
    })();
    if result.is_err() {
        // The old database goes on with its own log: it may hold committed transactions.
        for (side, kept) in moved {
            let _ = std::fs::rename(kept, side);
        }
    }
    result
}

/// Moves the current `plugins/` into `previous` and the one built aside into its place.
fn swap_plugins(aside: &Path, previous: &Path, dir: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(previous).map_err(BackupError::io(previous))?;
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
