//! `baseline-axum-kv`: `baseline-axum` with the plugin's storage work. Since the plugin keeps
//! its statistics in the key-value store, each `GET /api/v1/awesome/status` reads one row from
//! SQLite through sqlx and parses its JSON; this program does exactly that (the same table,
//! query, pool size and pragmas, in `baseline-kv.db` in the working folder), so the HTTP
//! benchmark's ratio is the framework's cost and not the query's. A database left by an
//! earlier start is kept, as PlexiChat keeps its own: that is the warm start-up the
//! start-up benchmark compares with.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use plexichat_baseline::{Stats, answer, serve};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

const FILE: &str = "baseline-kv.db";

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

async fn status(State(pool): State<AnyPool>) -> Result<axum::Json<serde_json::Value>, StatusCode> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as(
        "SELECT value FROM plexichat_kv WHERE plugin = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)",
    )
    .bind("my_awesome_plugin")
    .bind("stats")
    .bind(now_millis())
    .fetch_optional(&pool)
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let stats = match row {
        Some((value,)) => {
            serde_json::from_slice(&value).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        }
        None => Stats::default(),
    };
    Ok(answer(stats))
}

#[tokio::main]
async fn main() {
    sqlx::any::install_default_drivers();
    let options =
        AnyConnectOptions::from_str(&format!("sqlite://{FILE}?mode=rwc")).expect("a SQLite URL");
    // As the framework's pool: 16 connections, WAL, synchronous = NORMAL.
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                    .await?;
                Ok(())
            })
        })
        .connect_lazy_with(options);
    pool.execute(
        "CREATE TABLE IF NOT EXISTS plexichat_kv (plugin TEXT NOT NULL, key TEXT NOT NULL, \
         value BLOB NOT NULL, expires_at BIGINT, PRIMARY KEY (plugin, key)); \
         CREATE INDEX IF NOT EXISTS plexichat_kv_expiry ON plexichat_kv (expires_at) \
         WHERE expires_at IS NOT NULL;",
    )
    .await
    .expect("create the table");
    // What the plugin's start records, as it does on every start.
    let stats = serde_json::to_vec(&Stats::at_start()).expect("JSON");
    sqlx::query(
        "INSERT INTO plexichat_kv (plugin, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
    )
    .bind("my_awesome_plugin")
    .bind("stats")
    .bind(stats)
    .execute(&pool)
    .await
    .expect("store the statistics");
    serve(
        Router::new()
            .route("/api/v1/awesome/status", get(status))
            .with_state(pool),
    )
    .await;
}
