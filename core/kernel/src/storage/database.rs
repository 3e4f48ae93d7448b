//! The one database of a server: a pool on embedded SQLite (WAL, created on first open) or
//! PostgreSQL, both through sqlx's `Any` driver so that one SQL text serves both.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use crate::config::database::{DatabaseUrl, Engine};

/// Why the database cannot be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL is wrong: the operator's to fix (exit status 2).
    #[error("invalid database URL `{url}`: {problem}")]
    InvalidUrl {
        /// The URL without its password.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// The server refused or could not be reached, or the file cannot be created.
    #[error("cannot open the database `{url}`: {}", describe(.error))]
    Unreachable {
        /// The URL without its password.
        url: String,
        /// The driver's error.
        error: sqlx::Error,
    },
}

/// A pool on the server's database; cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct Database {
    /// Made on first use: sqlx spawns the pool's maintenance task when it makes a pool, which
    /// needs a tokio runtime, and a `Runtime` may be built before one exists.
    pool: Arc<OnceLock<AnyPool>>,
    make: Arc<dyn Fn() -> AnyPool + Send + Sync>,
    engine: Engine,
    url: DatabaseUrl,
    /// Serialises the writes core makes on SQLite (see [`Database::writer`]).
    writes: Arc<tokio::sync::Mutex<()>>,
    /// Whether the server answers, as far as this process knows.
    health: Arc<Health>,
    /// Counts commits that wrote to the outbox, for its consumers in this process to wake on.
    outbox_written: Arc<tokio::sync::watch::Sender<u64>>,
}

/// Whether a PostgreSQL server answers: marked down when a check cannot reach it, up again
/// when the probe that runs meanwhile reaches it. Routes of plugins that use storage answer
/// 503 at once while it is down, and `/ready` says not ready, instead of every request
/// waiting out the pool's acquire timeout.
#[derive(Debug, Default)]
pub struct Health {
    down: AtomicBool,
    /// A check or the probe is running; one at a time.
    probing: AtomicBool,
    /// The last check by [`Database::answers`]: when, and whether it was reached.
    checked: Mutex<Option<(Instant, bool)>>,
}

impl Health {
    /// Whether the last check found the database unreachable: one atomic load.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }
}

/// How long a check waits for the database: a connection and `SELECT 1`.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a database marked down is probed, and how often a serving process checks a
/// PostgreSQL server it believes up (see [`Database::watch`]).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Whether `error` says the database could not be reached (as opposed to a query it refused):
/// an I/O or TLS failure, no connection within the acquire timeout (which is what a refused
/// connection becomes: the pool retries it until then), a closed pool, or a PostgreSQL
/// connection exception (`08…`) or shutdown (`57P01`–`57P03`).
pub fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("engine", &self.engine)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The `application_name` of PlexiChat's PostgreSQL sessions, unless the URL sets one.
pub const APPLICATION_NAME: &str = "plexichat";

/// How long a caller waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs sqlx's `Any` drivers, once per process: needed before any `AnyConnection`
/// connects, which opening a [`Database`] does itself (a one-shot restore connects
/// without one).
pub fn install_drivers() {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

impl Database {
    /// Opens `url` and checks that a connection works: creates a SQLite file (and its
    /// folder) if missing and puts it in WAL mode; connects to PostgreSQL.
    pub async fn open(url: &DatabaseUrl) -> Result<Database, DatabaseError> {
        if url.engine() == Engine::Sqlite
            && let Some(parent) =
                sqlite_path(url.expose()).and_then(|p| p.parent().map(ToOwned::to_owned))
            && !parent.as_os_str().is_empty()
        {
            crate::storage::data_dir::create(&parent).map_err(|error| {
                DatabaseError::Unreachable {
                    url: url.redacted(),
                    error: sqlx::Error::Io(std::io::Error::other(error.to_string())),
                }
            })?;
        }
        let (database, options) = Database::lazy(url, 16)?;
        if url.engine() == Engine::Sqlite {
            // Opening (or creating) the file is what can fail here; it costs microseconds,
            // where a throwaway connection would cost a thread and a schema read at start.
            if let Some(path) = sqlite_path(url.expose()) {
                create_file(&path).map_err(|error| DatabaseError::Unreachable {
                    url: url.redacted(),
                    error: sqlx::Error::Io(error),
                })?;
            }
            return Ok(database);
        }
        // One direct connection first: the pool would retry a refused connection until its
        // acquire timeout, and the operator should hear at once.
        let connection = AnyConnection::connect_with(&options)
            .await
            .map_err(|error| DatabaseError::Unreachable {
                url: url.redacted(),
                error,
            })?;
        let _ = connection.close().await;
        Ok(database)
    }

    /// A private in-memory SQLite database, for tests and for a runtime built without one.
    /// Nothing is opened until first use.
    pub fn memory() -> Database {
        let url = DatabaseUrl::parse("sqlite::memory:").unwrap_or_else(|_| unreachable!());
        // One connection that never closes: an in-memory database lives as long as it does.
        Database::lazy(&url, 1)
            .unwrap_or_else(|error| panic!("{error}"))
            .0
    }

    fn lazy(
        url: &DatabaseUrl,
        connections: u32,
    ) -> Result<(Database, AnyConnectOptions), DatabaseError> {
        install_drivers();
        let mut text = url.expose().to_string();
        if url.engine() == Engine::Sqlite && !text.contains(":memory:") && !text.contains("mode=") {
            text.push_str(if text.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        if url.engine() == Engine::Postgres {
            // How a restore recognises servers still connected to the database.
            text = named(url, APPLICATION_NAME);
        }
        let options =
            AnyConnectOptions::from_str(&text).map_err(|error| DatabaseError::InvalidUrl {
                url: url.redacted(),
                problem: crate::config::database::redact_url(&error.to_string()),
            })?;
        let engine = url.engine();
        let memory = text.contains(":memory:");
        let pool_options = options.clone();
        let make = move || {
            AnyPoolOptions::new()
                .max_connections(connections)
                .min_connections(u32::from(memory))
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .idle_timeout((!memory).then_some(Duration::from_secs(600)))
                .max_lifetime((!memory).then_some(Duration::from_secs(1800)))
                .after_connect(move |connection, _| {
                    Box::pin(async move {
                        if engine == Engine::Sqlite {
                            // sqlx's SQLite connections already wait 5 s for a lock and enforce
                            // foreign keys; WAL lets readers go on while one connection writes.
                            connection
                                .execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                                .await?;
                        }
                        Ok(())
                    })
                })
                .connect_lazy_with(pool_options.clone())
        };
        let database = Database {
            pool: Arc::default(),
            make: Arc::new(make),
            engine,
            url: url.clone(),
            writes: Arc::default(),
            health: Arc::default(),
            outbox_written: Arc::new(tokio::sync::watch::Sender::new(0)),
        };
        Ok((database, options))
    }

    /// The pool, for sqlx queries: `sqlx::query("…").bind(…).fetch_all(db.pool())`.
    ///
    /// The first call makes the pool, and must come from within a tokio runtime.
    pub fn pool(&self) -> &AnyPool {
        self.pool.get_or_init(|| (self.make)())
    }

    /// A turn to write, on SQLite; `None` on PostgreSQL, which has row locks.
    ///
    /// SQLite has one writer at a time, and a second writer does not queue: it sleeps in the
    /// busy handler (1 ms, 2 ms, 5 ms…) and polls again. Writers in this process wait here
    /// instead and go the moment the previous one is done. Core's own writes (the key-value
    /// store) take it, and so does a plugin's [`Db::begin_write`](crate::runtime::Db::begin_write);
    /// a plugin's other SQL through [`Database::pool`] is not routed through it.
    /// The turn is owned, so a plugin's transaction may hold it across awaits.
    pub(crate) async fn writer(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.engine {
            Engine::Sqlite => Some(Arc::clone(&self.writes).lock_owned().await),
            Engine::Postgres => None,
        }
    }

    /// What counts commits that wrote to the outbox: its consumers in this process
    /// subscribe, and a commit that wrote an event bumps it.
    pub(crate) fn outbox_written(&self) -> &Arc<tokio::sync::watch::Sender<u64>> {
        &self.outbox_written
    }

    /// Whether the server answers, as far as this process knows (always up on SQLite).
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Whether the database answers a query within [`CHECK_TIMEOUT`], checked at most once per
    /// `ttl` however many callers ask (`/ready`); always `true` on SQLite, whose file is
    /// opened at start. A failed check that [`Database::confirm`] confirms marks it down.
    pub async fn answers(&self, ttl: Duration) -> bool {
        if self.engine == Engine::Sqlite {
            return true;
        }
        if self.health.is_down() {
            return false;
        }
        let cached = *self
            .health
            .checked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((at, reached)) = cached
            && at.elapsed() < ttl
        {
            return reached;
        }
        // A failed query through the pool is confirmed before it is reported, so that routes
        // already refuse at once when `/ready` says the database is unreachable.
        let reached = self.ping().await.is_ok() || !self.confirm().await;
        *self
            .health
            .checked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((Instant::now(), reached));
        reached
    }

    /// `SELECT 1` through the pool, within [`CHECK_TIMEOUT`].
    async fn ping(&self) -> Result<(), String> {
        match tokio::time::timeout(CHECK_TIMEOUT, self.pool().execute("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(describe(&error)),
            Err(_) => Err(format!(
                "no answer within {}",
                humantime::format_duration(CHECK_TIMEOUT)
            )),
        }
    }

    /// Whether a connection of its own, outside the pool, reaches the server: what tells an
    /// unreachable server from a pool that is only busy.
    async fn reachable(&self) -> bool {
        let connect = connect_one(&self.url, APPLICATION_NAME);
        match tokio::time::timeout(CHECK_TIMEOUT, connect).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                true
            }
            _ => false,
        }
    }

    /// A request could not reach the database: have [`Database::confirm`] check, unless a
    /// check already runs. Does nothing on SQLite or outside a tokio runtime.
    pub fn suspect(&self) {
        if self.engine == Engine::Sqlite || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let database = self.clone();
        tokio::spawn(async move { database.confirm().await });
    }

    /// Checks with a connection of its own whether the server is reachable; if not, marks the
    /// database down and probes it every second, in a task of its own, until it answers again.
    /// Returns whether it is down. One check at a time: a caller arriving meanwhile gets the
    /// current state.
    async fn confirm(&self) -> bool {
        if self.health.probing.swap(true, Ordering::AcqRel) {
            return self.health.is_down();
        }
        if self.reachable().await {
            self.health.probing.store(false, Ordering::Release);
            return false;
        }
        if !self.health.down.swap(true, Ordering::AcqRel) {
            tracing::error!(
                url = %self.url.redacted(),
                "the database is unreachable: routes that use storage answer 503 and /ready says not ready until it answers again"
            );
        }
        let database = self.clone();
        tokio::spawn(async move {
            database.recover().await;
            database.health.probing.store(false, Ordering::Release);
        });
        true
    }

    /// The probe while the database is down: every second, until a connection of its own and
    /// a query through the pool both succeed (or the pool is closed).
    async fn recover(&self) {
        loop {
            tokio::time::sleep(PROBE_INTERVAL).await;
            if self.pool().is_closed() {
                return;
            }
            if self.reachable().await && self.ping().await.is_ok() {
                self.health.down.store(false, Ordering::Release);
                tracing::info!(url = %self.url.redacted(), "the database answers again");
                return;
            }
        }
    }

    /// While serving on PostgreSQL, checks every two seconds that the server answers, so that
    /// an outage is noticed (and routes answer 503 at once) without waiting for a request to
    /// time out. Ends when the pool is closed. Returns at once on SQLite.
    pub async fn watch(&self) {
        if self.engine == Engine::Sqlite {
            return;
        }
        loop {
            tokio::time::sleep(WATCH_INTERVAL).await;
            if self.pool().is_closed() {
                return;
            }
            if !self.health.is_down() && self.ping().await.is_err() {
                self.confirm().await;
            }
        }
    }

    /// Which engine serves it.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL without its password, for messages.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Closes every connection; later use fails.
    pub async fn close(&self) {
        if let Some(pool) = self.pool.get() {
            pool.close().await;
        }
    }

    /// At shutdown: on SQLite, copies the write-ahead log into the database file and empties
    /// it, so that the file alone is complete and the next start replays nothing; the log
    /// file itself stays, as a deleted one would cost the next start's first write a sync of
    /// the new file and of its folder. On PostgreSQL, closes the connections.
    pub async fn shut_down(&self) {
        let Some(pool) = self.pool.get() else {
            return;
        };
        match self.engine {
            Engine::Sqlite => {
                if let Err(error) = pool.execute("PRAGMA wal_checkpoint(TRUNCATE)").await {
                    tracing::warn!(error = %describe(&error), "cannot checkpoint the database");
                }
            }
            Engine::Postgres => pool.close().await,
        }
    }
}

/// `url`'s text with `application_name` set on PostgreSQL, unless the URL sets it.
fn named(url: &DatabaseUrl, application_name: &str) -> String {
    let mut text = url.expose().to_string();
    if url.engine() == Engine::Postgres && !text.contains("application_name=") {
        text.push_str(if text.contains('?') { "&" } else { "?" });
        text.push_str("application_name=");
        text.push_str(application_name);
    }
    text
}

/// One connection to `url` outside any pool, its PostgreSQL session named
/// `application_name` unless the URL names it.
pub async fn connect_one(
    url: &DatabaseUrl,
    application_name: &str,
) -> Result<AnyConnection, DatabaseError> {
    install_drivers();
    let text = named(url, application_name);
    let options =
        AnyConnectOptions::from_str(&text).map_err(|error| DatabaseError::InvalidUrl {
            url: url.redacted(),
            problem: crate::config::database::redact_url(&error.to_string()),
        })?;
    AnyConnection::connect_with(&options)
        .await
        .map_err(|error| DatabaseError::Unreachable {
            url: url.redacted(),
            error,
        })
}

/// Opens `path` for reading and writing, creating it readable by its owner only: the
/// database holds every plugin's data. A symbolic link is refused, as SQLite itself would.
pub fn create_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map(drop)
}

/// The driver's error in one line: sqlx repeats its source in its own message.
fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(database) => database.message().to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::PoolTimedOut => "no connection within the timeout".to_string(),
        other => crate::config::database::redact_url(&other.to_string()),
    }
}

/// The file of a `sqlite:` URL, if it names one.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// Milliseconds since the Unix epoch: how times are stored (the `Any` driver carries
/// integers on both engines, not timestamps).
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// `ms` (milliseconds since the Unix epoch, as stored) as RFC 3339 in UTC with milliseconds,
/// as answers show times: `2026-12-07T10:00:00.000Z`.
pub fn rfc3339_millis(ms: i64) -> String {
    let time = match u64::try_from(ms) {
        Ok(ms) => std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        Err(_) => std::time::UNIX_EPOCH,
    };
    humantime::format_rfc3339_millis(time).to_string()
}

/// Whether `error` is a unique constraint refusing a duplicate row, on either engine: how
/// an insert learns that a name is taken without a race between a check and the write.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => {
            error.is_unique_violation()
                // The `Any` driver may not carry the kind; the engines' own texts say it.
                || error.message().contains("UNIQUE constraint failed")
                || error.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_read_as_rfc_3339_with_milliseconds() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_796_637_600_123),
            "2026-12-07T10:00:00.123Z"
        );
        assert_eq!(rfc3339_millis(-5), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite://data/x.db"), Some("data/x.db".into()));
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc"),
            Some("/tmp/x.db".into())
        );
        assert_eq!(sqlite_path("sqlite:x.db"), Some("x.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/d"), None);
    }

    /// A `Runtime` may be built before any tokio runtime exists (the dispatch benchmark
    /// does); its database must not need one until it is used.
    #[test]
    fn a_memory_database_is_made_outside_an_async_runtime_and_used_inside_one() {
        let db = Database::memory();
        let copy = db.clone();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                sqlx::query("CREATE TABLE t (x BIGINT)")
                    .execute(db.pool())
                    .await
                    .unwrap();
                // A clone shares the pool, and so the in-memory database.
                sqlx::query("INSERT INTO t VALUES (1)")
                    .execute(copy.pool())
                    .await
                    .unwrap();
            });
    }

    #[tokio::test]
    async fn a_file_database_is_created_in_wal_mode() {
        let dir = std::env::temp_dir().join(format!("plexichat-db-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = DatabaseUrl::sqlite_file(&dir.join("nested/plexichat.db"));
        let db = Database::open(&url).await.expect("open");
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert!(dir.join("nested/plexichat.db").is_file());
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Writers in one process take turns on SQLite (what `Db::begin_write` holds): the
    /// second waits for the first to finish instead of starting a transaction SQLite would
    /// make sleep in its busy handler, and both commit.
    #[tokio::test]
    async fn sqlite_writers_take_turns_and_both_commit() {
        let dir = std::env::temp_dir().join(format!("plexichat-turns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = Database::open(&DatabaseUrl::sqlite_file(&dir.join("t.db")))
            .await
            .expect("open");
        sqlx::query("CREATE TABLE t (x BIGINT)")
            .execute(db.pool())
            .await
            .unwrap();
        let first = db.writer().await.expect("a turn on SQLite");
        let mut transaction = db.pool().begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *transaction)
            .await
            .unwrap();
        let other = db.clone();
        let went = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let second_went = Arc::clone(&went);
        let second = tokio::spawn(async move {
            let _turn = other.writer().await;
            second_went.store(true, std::sync::atomic::Ordering::SeqCst);
            let mut transaction = other.pool().begin().await?;
            sqlx::query("INSERT INTO t VALUES (2)")
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await
        });
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(
            !second.is_finished(),
            "the second writer went before its turn"
        );
        transaction.commit().await.unwrap();
        drop(first);
        second.await.unwrap().expect("the second writer commits");
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(count, 2);
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_refusing_server_is_named_without_its_password() {
        // Port 1 on loopback: nothing listens there.
        let url = DatabaseUrl::parse("postgres://app:hunter2@127.0.0.1:1/chat").unwrap();
        let error = Database::open(&url).await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, DatabaseError::Unreachable { .. }), "{text}");
        assert!(
            text.contains("postgres://app:[redacted]@127.0.0.1:1/chat"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
