//! `baseline-axum`: the same `GET /api/v1/awesome/status` JSON as `my_awesome_plugin`, from a
//! bare axum program with no framework, so `cargo xtask bench` can report PlexiChat's size,
//! start-up and memory as ratios measured in the same run. It prints the same `serving
//! address=` line and answers `/ready`, so start-up is measured the same way for both. Its
//! statistics live in memory; `baseline-axum-kv` reads them from SQLite as the plugin does.

use std::sync::Mutex;

use axum::Router;
use axum::routing::get;
use plexichat_baseline::{Stats, answer, serve};

static STATS: Mutex<Option<Stats>> = Mutex::new(None);

#[tokio::main]
async fn main() {
    *STATS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Stats::at_start());
    let status = || async {
        let stats = STATS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .unwrap_or_default();
        answer(stats)
    };
    serve(Router::new().route("/api/v1/awesome/status", get(status))).await;
}
