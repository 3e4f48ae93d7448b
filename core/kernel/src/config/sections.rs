//! The typed sections of `plexichat.toml` that core reads (`[server]`, `[data]`, `[events]`,
//! `[health]`), with their defaults and the durations they hold.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::database::DatabaseUrl;
use super::secret::Secret;

/// `[server]`: how the HTTP server listens, what it accepts, and how long each phase may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on: an IP address and a port.
    pub bind: SocketAddr,
    /// Bearer token for `/api/v1/admin/*`. Prefer `PLEXICHAT_ADMIN_TOKEN` over writing it
    /// here; without either, the server generates one in the data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// A request not answered within this time gets 408, e.g. `"30s"`, `"2m"`.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "30s")]
    pub request_timeout: Duration,
    /// Largest accepted request body in bytes; larger bodies get 413. This bounds bodies
    /// that stream (uploads); a JSON body is read whole and capped at 2 MiB regardless.
    #[schemars(range(min = 1))]
    pub body_limit: u64,
    /// Longest a plugin's `init` or `stop`, the handlers of a lifecycle event, or a
    /// plugin's background tasks may take to finish, e.g. `"10s"`.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "10s")]
    pub phase_timeout: Duration,
    /// A connection that has started sending a request must complete its head (request line
    /// and headers) within this time, or it is closed.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "10s")]
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no traffic for this long is closed.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "60s")]
    pub idle_timeout: Duration,
    /// Most connections served at once; further clients wait in the listen backlog until
    /// one closes. Lowered at start to what the process's file-descriptor limit allows.
    #[schemars(range(min = 1))]
    pub max_connections: u32,
    /// At shutdown, how long in-flight requests may take to finish before the remaining
    /// connections are closed.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "10s")]
    pub drain_timeout: Duration,
    /// Most long-lived connections (event streams and WebSockets) open at once, counted
    /// apart from `max_connections` so that they never take ordinary requests' capacity; one
    /// more is answered 503.
    #[schemars(range(min = 1))]
    pub max_streams: u32,
    /// Most long-lived connections (event streams and WebSockets) open at once from one
    /// client address; one more is answered 429. 0 for no cap (behind a reverse proxy every
    /// client has the proxy's address).
    pub max_streams_per_client: u32,
    /// How long one event stream lasts before the server ends it; clients reconnect
    /// (`EventSource` does by itself), so a stream cannot hold a slot forever.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "15m")]
    pub stream_lifetime: Duration,
    /// How long a readiness result (`/ready`, per-plugin health) is reused before the
    /// plugin's `ready` hook runs again.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "1s")]
    pub ready_cache: Duration,
    /// A second address that serves only `/metrics` (Prometheus), without authentication;
    /// for an address only the scraper can reach, e.g. `"127.0.0.1:9100"`. Unset, `/metrics`
    /// is served on `bind` and needs the admin token as a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_bind: Option<SocketAddr>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            admin_token: None,
            request_timeout: Duration::from_secs(30),
            body_limit: 32 * 1024 * 1024,
            phase_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            drain_timeout: Duration::from_secs(10),
            max_streams: 10_000,
            max_streams_per_client: 32,
            stream_lifetime: Duration::from_secs(15 * 60),
            ready_cache: Duration::from_secs(1),
            metrics_bind: None,
        }
    }
}

/// `[events]`: how proposals of vetoable events treat pre-handlers that cannot decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSection {
    /// Longest one pre-handler of a vetoable event may take to decide, e.g. `"2s"`. One that
    /// runs past it is logged with its plugin's name and counted (an async one is dropped).
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "2s")]
    pub pre_handler_timeout: Duration,
    /// What a pre-handler that ran out of time or panicked means for the proposal:
    /// `"reject"` (it is rejected, naming the plugin) or `"skip"` (the next handler decides).
    pub pre_handler_failure: PreHandlerFailure,
}

impl Default for EventsSection {
    fn default() -> Self {
        EventsSection {
            pre_handler_timeout: Duration::from_secs(2),
            pre_handler_failure: PreHandlerFailure::Reject,
        }
    }
}

/// `[health]`: how plugins' liveness checks are run and what repeated failures lead to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSection {
    /// How often each running plugin's liveness checks run, e.g. `"30s"`; each check has at
    /// most this long (and at most 10 s) to answer.
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "30s")]
    pub liveness_interval: Duration,
    /// Consecutive failed rounds after which the plugin is restarted (`stop`, then `init` and
    /// its tasks again), its dependents with it.
    #[schemars(range(min = 1, max = 100))]
    pub failures_before_restart: u32,
    /// Restarts allowed within `restart_window`; one more failure past them marks the plugin
    /// failed, and its dependents stop with it, until an operator enables it again.
    #[schemars(range(min = 0, max = 100))]
    pub max_restarts: u32,
    /// The window `max_restarts` counts in, e.g. `"1h"`. After each restart the next round
    /// waits twice as long as after the previous one in the window (backoff).
    #[serde(with = "duration")]
    #[schemars(with = "String", example = "1h")]
    pub restart_window: Duration,
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            liveness_interval: Duration::from_secs(30),
            failures_before_restart: 3,
            max_restarts: 3,
            restart_window: Duration::from_secs(60 * 60),
        }
    }
}

/// `[events] pre_handler_failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreHandlerFailure {
    /// The proposal is rejected: a policy that could not run is not taken as a yes.
    Reject,
    /// The handler is passed over, as if it had accepted.
    Skip,
}

/// The keys that hold a duration, as JSON pointers.
pub(super) const DURATIONS: [&str; 9] = [
    "/server/request_timeout",
    "/server/phase_timeout",
    "/server/header_read_timeout",
    "/server/idle_timeout",
    "/server/drain_timeout",
    "/server/ready_cache",
    "/events/pre_handler_timeout",
    "/health/liveness_interval",
    "/health/restart_window",
];

/// Longest duration a setting accepts.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Durations written as text (`"30s"`, `"1m 30s"`, `"500ms"`), read with humantime.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// `[data]`: where the server keeps its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// Directory for everything the server writes; created at start if missing.
    pub dir: PathBuf,
    /// The database: unset for embedded SQLite in `<dir>/plexichat.db`, or a URL,
    /// `sqlite:path/to/file.db` or `postgres://user:password@host/database`. Its password
    /// is never logged or shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseUrl>,
}

impl DataSection {
    /// The database to open: the configured URL, or `<dir>/plexichat.db`.
    pub fn database_url(&self) -> DatabaseUrl {
        self.database
            .clone()
            .unwrap_or_else(|| DatabaseUrl::sqlite_file(&self.dir.join(DEFAULT_DATABASE_FILE)))
    }
}

/// The embedded database's file name inside the data folder.
pub const DEFAULT_DATABASE_FILE: &str = "plexichat.db";

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            dir: PathBuf::from("./data"),
            database: None,
        }
    }
}
