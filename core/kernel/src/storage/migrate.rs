//! Applies core's and each plugin's embedded migrations, in dependency order, each in its own
//! transaction, recorded with a SHA-256 of the text that ran; and reports what is applied.
//!
//! Several replicas may start at once: on PostgreSQL the whole run holds a session advisory
//! lock (a second replica waits, then finds everything applied); on SQLite each migration
//! takes the write lock with `BEGIN IMMEDIATE` and checks again whether another process
//! applied it meanwhile.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Executor, Row};

use crate::abi::migration::Migration;
use crate::abi::plugin::PluginDescriptor;
use crate::storage::database::{Database, Engine, now_millis};

/// The name core's own migrations are recorded under.
pub const CORE: &str = "plexichat";

/// Core's own tables: the key-value store and the outbox.
pub static CORE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_key_value_store",
        sqlite: "CREATE TABLE plexichat_kv (
    plugin TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (plugin, key)
);
CREATE INDEX plexichat_kv_expiry ON plexichat_kv (expires_at) WHERE expires_at IS NOT NULL;",
        sqlite_file: "core:0001_key_value_store.sql",
        postgres: "CREATE TABLE plexichat_kv (
    plugin TEXT NOT NULL,
    key TEXT COLLATE \"C\" NOT NULL,
    value BYTEA NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (plugin, key)
);
CREATE INDEX plexichat_kv_expiry ON plexichat_kv (expires_at) WHERE expires_at IS NOT NULL;",
        postgres_file: "core:0001_key_value_store.sql",
    },
    // One row per event and consumer (a plugin with `outbox:read`), written in the
    // transaction of the change that caused the event and deleted in the consumer's
    // transaction that handles it: see `runtime::outbox`.
    Migration {
        version: 2,
        name: "0002_outbox",
        sqlite: "CREATE TABLE plexichat_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    plugin TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX plexichat_outbox_by_consumer ON plexichat_outbox (consumer, id);",
        sqlite_file: "core:0002_outbox.sql",
        postgres: "CREATE TABLE plexichat_outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    plugin TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX plexichat_outbox_by_consumer ON plexichat_outbox (consumer, id);",
        postgres_file: "core:0002_outbox.sql",
    },
];

/// The table that records applied migrations; created before anything else.
pub const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS plexichat_migrations (
    plugin TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (plugin, version)
)";

/// The PostgreSQL advisory lock key of the migration run ("plexichat" in ASCII, cut to 63
/// bits); any constant works as long as every replica uses the same.
pub const ADVISORY_LOCK: i64 = 0x706c_6578_6963_6861;

/// Why migrating stopped. Nothing after the failing migration ran; everything before it is
/// applied and recorded.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// An applied migration's text differs from the one compiled in.
    #[error(
        "migration `{file}` of plugin `{plugin}` was changed after it was applied (recorded checksum {recorded}, now {now}); restore its text and add the change as a new migration"
    )]
    Changed {
        /// The plugin.
        plugin: &'static str,
        /// The file.
        file: &'static str,
        /// The checksum recorded when it ran.
        recorded: String,
        /// The checksum of the compiled-in text.
        now: String,
    },
    /// A migration is recorded as applied but no longer compiled in.
    #[error(
        "migration `{name}` (version {version}) of plugin `{plugin}` was applied to this database but is no longer in the plugin; restore the file (a binary older than the database cannot serve it)"
    )]
    Vanished {
        /// The plugin.
        plugin: String,
        /// The version.
        version: i64,
        /// The recorded name.
        name: String,
    },
    /// A migration's SQL failed; its transaction was rolled back.
    #[error("migration `{file}` of plugin `{plugin}` failed and was rolled back: {error}")]
    Failed {
        /// The plugin.
        plugin: &'static str,
        /// The file.
        file: &'static str,
        /// The database's message.
        error: String,
    },
    /// The database could not be used.
    #[error("cannot migrate the database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where one migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Applied, with the same text.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the compiled-in text differs.
    Changed,
    /// Applied, but no longer compiled in.
    Vanished,
}

/// One migration in a status report.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    /// The version.
    pub version: i64,
    /// The name (file name without `.sql`).
    pub name: String,
    /// The file this engine runs, relative to the plugin crate (empty when vanished).
    pub file: &'static str,
    /// Where it stands.
    pub state: MigrationState,
    /// SHA-256 of the text, as recorded when applied, or of the compiled-in text.
    pub checksum: String,
    /// When it was applied, in milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<i64>,
}

/// One plugin's (or core's) migrations.
#[derive(Debug, Clone, Serialize)]
pub struct PluginMigrations {
    /// The plugin, or `plexichat` for core.
    pub plugin: &'static str,
    /// Its migrations, by version.
    pub migrations: Vec<MigrationStatus>,
}

impl PluginMigrations {
    /// How many are in `state`.
    pub fn count(&self, state: MigrationState) -> usize {
        self.migrations.iter().filter(|m| m.state == state).count()
    }
}

/// What one run applied.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateReport {
    /// `(plugin, migration name)` in the order they ran.
    pub applied: Vec<(&'static str, &'static str)>,
}

/// The migrations to consider: core's, then each plugin's, in the order given (the
/// registry's start order).
pub fn owners(plugins: &[&'static PluginDescriptor]) -> Vec<(&'static str, &'static [Migration])> {
    std::iter::once((CORE, CORE_MIGRATIONS))
        .chain(plugins.iter().map(|p| (p.name, p.migrations)))
        .collect()
}

/// The SHA-256 of `text`, lowercase hex.
pub fn checksum(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn text_for(migration: &Migration, engine: Engine) -> (&'static str, &'static str) {
    match engine {
        Engine::Sqlite => (migration.sqlite_file, migration.sqlite),
        Engine::Postgres => (migration.postgres_file, migration.postgres),
    }
}

/// A recorded migration.
pub struct Applied {
    /// The plugin whose migration it is (`plexichat` for core's).
    pub plugin: String,
    /// Its version.
    pub version: i64,
    /// Its name.
    pub name: String,
    /// The SHA-256 of its SQL when it was applied.
    pub checksum: String,
    /// When, in seconds since the Unix epoch.
    pub applied_at: i64,
}

/// Every recorded migration, by plugin and version.
pub async fn applied(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
) -> Result<Vec<Applied>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT plugin, version, name, checksum, applied_at FROM plexichat_migrations ORDER BY plugin, version",
    )
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Applied {
                plugin: row.try_get("plugin")?,
                version: row.try_get("version")?,
                name: row.try_get("name")?,
                checksum: row.try_get("checksum")?,
                applied_at: row.try_get("applied_at")?,
            })
        })
        .collect()
}

/// Every migration of core and `plugins` with its state; changes nothing but creating the
/// (empty) record table.
pub async fn status(
    db: &Database,
    plugins: &[&'static PluginDescriptor],
) -> Result<Vec<PluginMigrations>, MigrateError> {
    db.pool().execute(BOOTSTRAP).await?;
    let recorded = applied(db.pool()).await?;
    Ok(owners(plugins)
        .into_iter()
        .map(|(plugin, migrations)| PluginMigrations {
            plugin,
            migrations: plugin_status(plugin, migrations, &recorded, db.engine()),
        })
        .collect())
}

fn plugin_status(
    plugin: &str,
    migrations: &'static [Migration],
    recorded: &[Applied],
    engine: Engine,
) -> Vec<MigrationStatus> {
    let mine: Vec<&Applied> = recorded.iter().filter(|a| a.plugin == plugin).collect();
    let mut out: Vec<MigrationStatus> = migrations
        .iter()
        .map(|migration| {
            let (file, text) = text_for(migration, engine);
            let now = checksum(text);
            let version = i64::from(migration.version);
            match mine.iter().find(|a| a.version == version) {
                Some(applied) => MigrationStatus {
                    version,
                    name: migration.name.to_string(),
                    file,
                    state: if applied.checksum == now {
                        MigrationState::Applied
                    } else {
                        MigrationState::Changed
                    },
                    checksum: applied.checksum.clone(),
                    applied_at: Some(applied.applied_at),
                },
                None => MigrationStatus {
                    version,
                    name: migration.name.to_string(),
                    file,
                    state: MigrationState::Pending,
                    checksum: now,
                    applied_at: None,
                },
            }
        })
        .collect();
    for applied in mine {
        if !migrations
            .iter()
            .any(|m| i64::from(m.version) == applied.version)
        {
            out.push(MigrationStatus {
                version: applied.version,
                name: applied.name.clone(),
                file: "",
                state: MigrationState::Vanished,
                checksum: applied.checksum.clone(),
                applied_at: Some(applied.applied_at),
            });
        }
    }
    out.sort_by_key(|m| m.version);
    out
}

/// Applies every pending migration of core and `plugins` (in the order given), after
/// checking that every applied one is unchanged and still compiled in.
pub async fn migrate(
    db: &Database,
    plugins: &[&'static PluginDescriptor],
) -> Result<MigrateReport, MigrateError> {
    let mut connection = db.pool().acquire().await?;
    if db.engine() == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(ADVISORY_LOCK)
            .execute(&mut *connection)
            .await?;
    }
    let result = migrate_locked(&mut connection, db.engine(), plugins).await;
    if db.engine() == Engine::Postgres {
        // Closing the session would release it too; unlock so the pooled connection is clean.
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(ADVISORY_LOCK)
            .execute(&mut *connection)
            .await;
        if unlocked.is_err() {
            connection.close_on_drop();
        }
    }
    result
}

async fn migrate_locked(
    connection: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    engine: Engine,
    plugins: &[&'static PluginDescriptor],
) -> Result<MigrateReport, MigrateError> {
    connection.execute(BOOTSTRAP).await?;
    let recorded = applied(&mut **connection).await?;
    let owners = owners(plugins);
    // Every check first: a changed or vanished migration anywhere stops the run before it
    // changes anything.
    for (plugin, migrations) in &owners {
        for status in plugin_status(plugin, migrations, &recorded, engine) {
            match status.state {
                MigrationState::Changed => {
                    let migration = migrations
                        .iter()
                        .find(|m| i64::from(m.version) == status.version);
                    let (file, text) = migration.map_or(("", ""), |m| text_for(m, engine));
                    return Err(MigrateError::Changed {
                        plugin,
                        file,
                        recorded: status.checksum,
                        now: checksum(text),
                    });
                }
                MigrationState::Vanished => {
                    return Err(MigrateError::Vanished {
                        plugin: plugin.to_string(),
                        version: status.version,
                        name: status.name,
                    });
                }
                MigrationState::Applied | MigrationState::Pending => {}
            }
        }
    }
    let mut report = MigrateReport::default();
    for (plugin, migrations) in owners {
        for migration in migrations {
            let version = i64::from(migration.version);
            if recorded
                .iter()
                .any(|a| a.plugin == plugin && a.version == version)
            {
                continue;
            }
            if apply(connection, engine, plugin, migration).await? {
                report.applied.push((plugin, migration.name));
            }
        }
    }
    Ok(report)
}

/// Runs one migration in a transaction and records it; `false` if another process applied
/// it first (SQLite, where no lock spans the run).
async fn apply(
    connection: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    engine: Engine,
    plugin: &'static str,
    migration: &'static Migration,
) -> Result<bool, MigrateError> {
    let version = i64::from(migration.version);
    connection
        .execute(match engine {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        })
        .await?;
    let outcome: Result<bool, MigrateError> = async {
        let existing = sqlx::query(
            "SELECT checksum FROM plexichat_migrations WHERE plugin = $1 AND version = $2",
        )
        .bind(plugin)
        .bind(version)
        .fetch_optional(&mut **connection)
        .await?;
        if existing.is_some() {
            return Ok(false);
        }
        run_and_record(connection, engine, plugin, migration).await?;
        Ok(true)
    }
    .await;
    match outcome {
        Ok(applied) => {
            connection.execute("COMMIT").await?;
            if applied {
                tracing::info!(plugin, migration = migration.name, "applied migration");
            }
            Ok(applied)
        }
        Err(error) => {
            if connection.execute("ROLLBACK").await.is_err() {
                connection.close_on_drop();
            }
            Err(error)
        }
    }
}

/// Runs one migration's text for `engine` and records it, inside the caller's transaction.
pub async fn run_and_record(
    connection: &mut sqlx::AnyConnection,
    engine: Engine,
    plugin: &'static str,
    migration: &'static Migration,
) -> Result<(), MigrateError> {
    let (file, text) = text_for(migration, engine);
    connection
        .execute(text)
        .await
        .map_err(|error| MigrateError::Failed {
            plugin,
            file,
            error: database_message(&error),
        })?;
    sqlx::query(
        "INSERT INTO plexichat_migrations (plugin, version, name, checksum, applied_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(plugin)
    .bind(i64::from(migration.version))
    .bind(migration.name)
    .bind(checksum(text))
    .bind(now_millis())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The database's own message, without sqlx's wrapping.
fn database_message(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(database) => database.message().to_string(),
        other => other.to_string(),
    }
}
