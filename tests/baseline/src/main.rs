//! `baseline-axum`: the same `GET /api/v1/awesome/status` JSON as `my_awesome_plugin`, from a
//! bare axum program with no framework, so `cargo xtask bench` can report PlexiChat's cost as
//! a ratio measured in the same run. It prints the same `serving address=` line and answers
//! `/ready`, so start-up is measured the same way for both.

use std::sync::Mutex;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The statistics the plugin keeps, behind the same kind of lock.
static STATS: Mutex<(u64, Option<String>)> = Mutex::new((0, None));

async fn status() -> Json<Value> {
    let stats = STATS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    Json(json!({
        "status": "awesome",
        "enabled": true,
        "stats": {
            "actions_performed": stats.0,
            "last_action": stats.1,
            "errors": 0,
            "started_at": null,
            "background_runs": 0,
            "last_background_run": null,
        },
        "config": { "enabled": true, "interval": 60 },
    }))
}

#[tokio::main]
async fn main() {
    let bind = std::env::args()
        .skip_while(|arg| arg != "--bind")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
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
