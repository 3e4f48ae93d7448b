//! `baseline-axum`: the same `GET /api/v1/awesome/status` JSON as `my_awesome_plugin`, from a
//! bare axum program with no framework, so `cargo xtask bench` can report PlexiChat's cost as
//! a ratio measured in the same run. It prints the same `serving address=` line and answers
//! `/ready`, so start-up is measured the same way for both.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};

/// The plugin's statistics, field for field, so the answer has the same shape and the
/// handler does the same work: lock, clone, convert to JSON, serialize.
#[derive(Clone, Debug, Default, Serialize)]
struct Stats {
    actions_performed: u64,
    last_action: Option<String>,
    errors: u64,
    started_at: Option<String>,
    background_runs: u64,
    last_background_run: Option<String>,
}

/// The plugin's configuration with its defaults.
#[derive(Clone, Debug, Serialize)]
struct Config {
    enabled: bool,
    interval: u32,
}

static STATS: Mutex<Option<Stats>> = Mutex::new(None);
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

async fn status() -> Json<Value> {
    let stats = STATS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
        .unwrap_or_default();
    Json(json!({
        "status": "awesome",
        "enabled": CONFIG.enabled,
        "stats": stats,
        "config": CONFIG,
    }))
}

#[tokio::main]
async fn main() {
    let bind = std::env::args()
        .skip_while(|arg| arg != "--bind")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    // What the plugin's start-up records: its start and its background task's first round.
    let now = timestamp();
    *STATS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Stats {
        started_at: Some(now.clone()),
        background_runs: 1,
        last_background_run: Some(now),
        ..Stats::default()
    });
    let router = Router::new()
        .route("/api/v1/awesome/status", get(status))
        .route("/ready", get(|| async { Json(json!({ "ready": true })) }));
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
