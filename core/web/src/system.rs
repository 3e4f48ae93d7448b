//! The seed's v1 system areas, for operators (behind the admin guard: the admin token, or an
//! admin person's token a plugin vouches for): `/api/v1/system/info` (what is running),
//! `/api/v1/performance` (what the server's own metrics say, as JSON) and `/api/v1/backup`
//! (the admin API's backups under the seed's path, with `verify`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::Hosted;
use crate::core_routes::{Access, CoreRoute, json_any};
use crate::metrics::HttpMetrics;
use plexichat_kernel::abi::route::Method;
use plexichat_kernel::error::ApiError;
use plexichat_kernel::runtime::Runtime;

pub(crate) const INFO: &str = "/api/v1/system/info";
pub(crate) const PERFORMANCE: &str = "/api/v1/performance";
pub(crate) const BACKUPS: &str = "/api/v1/backup";
pub(crate) const BACKUP: &str = "/api/v1/backup/{id}";
pub(crate) const VERIFY: &str = "/api/v1/backup/{id}/verify";

/// When the application was built, for uptimes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started {
    at: Instant,
    unix_ms: i64,
}

impl Started {
    pub(crate) fn now() -> Started {
        Started {
            at: Instant::now(),
            unix_ms: plexichat_kernel::storage::database::now_millis(),
        }
    }

    fn uptime_seconds(&self) -> f64 {
        self.at.elapsed().as_secs_f64()
    }
}

pub(crate) const ROUTES: &[CoreRoute] = &[
    CoreRoute {
        method: Method::Get,
        path: INFO,
        id: "system.info",
        doc: "What is running: the version and build, when it started, the database engine, and every compiled-in plugin with its version and state.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |wiring| {
            let started = wiring.started;
            get(move |Hosted(runtime): Hosted| async move { axum::Json(info(&runtime, started)) })
        },
    },
    CoreRoute {
        method: Method::Get,
        path: PERFORMANCE,
        id: "system.performance",
        doc: "The server's own metrics as JSON: requests, errors and latency percentiles per plugin since start, the process's memory and open files.\n\nThe same counters as `/metrics`; percentiles are estimated from its histogram buckets, as Prometheus' `histogram_quantile` does.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |wiring| {
            let (metrics, started) = (Arc::clone(&wiring.metrics), wiring.started);
            get(move || async move { axum::Json(performance(&metrics, started)) })
        },
    },
    CoreRoute {
        method: Method::Get,
        path: BACKUPS,
        id: "system.backups",
        doc: "The backups in the data folder, newest first (as `GET /api/v1/admin/backups`).",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| get(crate::admin::backups),
    },
    CoreRoute {
        method: Method::Post,
        path: BACKUPS,
        id: "system.create_backup",
        doc: "Writes a backup while the server keeps serving (as `POST /api/v1/admin/backups`).",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: crate::admin::created_backup,
        handler: |_| post(crate::admin::create_backup),
    },
    CoreRoute {
        method: Method::Get,
        path: BACKUP,
        id: "system.download_backup",
        doc: "One backup archive, streamed (as `GET /api/v1/admin/backups/{id}`).",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: crate::admin::backup_archive,
        handler: |_| get(crate::admin::download_backup),
    },
    CoreRoute {
        method: Method::Post,
        path: VERIFY,
        id: "system.verify_backup",
        doc: "Checks a backup without restoring it: every file's SHA-256 against the manifest, and that this binary can restore it (its plugins and migrations).\n\n200 with `valid: true` and the manifest; 422 `backup_invalid` naming what is wrong.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| post(verify),
    },
];

/// `GET /api/v1/system/info`.
fn info(runtime: &Runtime, started: Started) -> Value {
    let plugins: Vec<Value> = runtime
        .registry()
        .plugins()
        .iter()
        .map(|plugin| {
            json!({
                "name": plugin.name,
                "version": plugin.version,
                "type": plugin.kind.as_str(),
                "state": runtime.status(plugin.name).map(|status| status.name()),
            })
        })
        .collect();
    json!({
        "name": "plexichat",
        "version": plexichat_kernel::abi::expansion::VERSION,
        "build": {
            "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        },
        "started_at": plexichat_kernel::storage::database::rfc3339_millis(started.unix_ms),
        "uptime_seconds": started.uptime_seconds(),
        "database": { "engine": runtime.engine().to_string() },
        "pid": std::process::id(),
        "plugins": plugins,
    })
}

/// `GET /api/v1/performance`.
fn performance(metrics: &HttpMetrics, started: Started) -> Value {
    let uptime = started.uptime_seconds().max(f64::EPSILON);
    let plugins = metrics.summary();
    let total: u64 = plugins.iter().map(|plugin| plugin.requests).sum();
    let errors: u64 = plugins.iter().map(|plugin| plugin.server_errors).sum();
    let status = proc_status();
    json!({
        "uptime_seconds": uptime,
        "requests": {
            "total": total,
            "per_second": total as f64 / uptime,
            "server_errors": errors,
            "unmatched": metrics.unmatched(),
        },
        "plugins": plugins.iter().map(|plugin| json!({
            "plugin": plugin.plugin,
            "requests": plugin.requests,
            "per_second": plugin.requests as f64 / uptime,
            "client_errors": plugin.client_errors,
            "server_errors": plugin.server_errors,
            "latency_ms": {
                "mean": plugin.mean_ms(),
                "p50": plugin.quantile_ms(0.5),
                "p95": plugin.quantile_ms(0.95),
                "p99": plugin.quantile_ms(0.99),
            },
        })).collect::<Vec<_>>(),
        "memory": {
            "rss_bytes": status.get("VmRSS").map(|kib| kib * 1024),
            "peak_rss_bytes": status.get("VmHWM").map(|kib| kib * 1024),
        },
        "threads": status.get("Threads"),
        "open_files": std::fs::read_dir("/proc/self/fd").ok().map(|entries| entries.count()),
    })
}

/// `/proc/self/status`'s numeric fields (kB values in KiB), where there is one.
fn proc_status() -> std::collections::HashMap<String, u64> {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            let number = value.split_whitespace().next()?.parse().ok()?;
            Some((key.to_string(), number))
        })
        .collect()
}

/// `POST /api/v1/backup/{id}/verify`.
async fn verify(
    Hosted(runtime): Hosted,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    use plexichat_backup as backup;
    let path = backup::folder(runtime.storage().data_dir()).join(format!("{id}.tar"));
    if !backup::valid_id(&id) || !path.exists() {
        return Err(ApiError::not_found(format!(
            "no backup `{id}`; `GET /api/v1/backup` lists them"
        ))
        .with_code("backup_not_found"));
    }
    let checked = tokio::task::spawn_blocking(move || backup::verify(&path, runtime.registry()))
        .await
        .map_err(ApiError::internal)?;
    match checked {
        Ok(manifest) => Ok(axum::Json(
            json!({ "id": id, "valid": true, "manifest": manifest }),
        )),
        Err(error) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("backup `{id}` would not restore: {error}"),
        )
        .with_code("backup_invalid")),
    }
}
