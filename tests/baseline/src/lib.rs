//! What both baselines of `cargo xtask bench` share: `my_awesome_plugin`'s answer to
//! `GET /api/v1/awesome/status`, field for field, so both do the same work to build it
//! (convert to JSON, serialise) and answer the same number of bytes; and how they serve.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The plugin's statistics, field for field.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Actions so far.
    pub actions_performed: u64,
    /// When the last one was.
    pub last_action: Option<String>,
    /// Errors so far.
    pub errors: u64,
    /// When the plugin started.
    pub started_at: Option<String>,
    /// Rounds of the background task.
    pub background_runs: u64,
    /// When the last round was.
    pub last_background_run: Option<String>,
}

impl Stats {
    /// What the plugin's start-up records: its start and its background task's first round.
    pub fn at_start() -> Stats {
        let now = timestamp();
        Stats {
            started_at: Some(now.clone()),
            background_runs: 1,
            last_background_run: Some(now),
            ..Stats::default()
        }
    }
}

/// The plugin's configuration with its defaults.
#[derive(Clone, Debug, Serialize)]
struct Config {
    enabled: bool,
    interval: u32,
}

const CONFIG: Config = Config {
    enabled: true,
    interval: 60,
};

/// A timestamp as long as the plugin's RFC 3339 ones (24 bytes), so both answers are the
/// same size; the baseline has no date library to format a real one.
fn timestamp() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    format!("unix:{seconds:0>19}")
}

/// The status answer for `stats`.
pub fn answer(stats: Stats) -> Json<Value> {
    Json(json!({
        "status": "awesome",
        "enabled": CONFIG.enabled,
        "stats": stats,
        "config": CONFIG,
    }))
}

/// Serves `status` at the plugin's path and `/ready` on the address after `--bind`, printing
/// the `serving address=` line the benchmark reads, until Ctrl-C.
pub async fn serve(status: Router) {
    let bind = std::env::args()
        .skip_while(|arg| arg != "--bind")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let router = status.route("/ready", get(|| async { Json(json!({ "ready": true })) }));
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {bind}: {error}"));
    eprintln!("serving address={}", listener.local_addr().expect("bound"));
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
}
