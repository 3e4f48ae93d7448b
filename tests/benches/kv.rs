//! Key-value store cost: `set` and `get` through the plugin API (the `Kv<P>` a plugin's
//! context hands out) against sqlx running the same statements directly on the same pool, on
//! SQLite (a file, WAL) and on PostgreSQL (`PLEXICHAT_TEST_POSTGRES`; `cargo xtask bench`
//! starts one). Rounds alternate between the two so that drift hits both; throughput is the
//! median round, p99 is over every operation. Writes `target/bench/kv.json` for
//! `cargo xtask bench`; `--quick` does fewer operations.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use plexichat::Registry;
use plexichat::prelude::*;
use plexichat::sqlx;
use plexichat_kernel::runtime::Runtime;
use plexichat_kernel::storage::Storage;
use plexichat_kernel::storage::database::{Database, DatabaseUrl, now_millis};
use serde_json::Map;

/// The benchmark's plugin: its `init` hands its context out, as a plugin's code holds it.
#[plugin(name = "kvbench", permissions = ["plugin:read", "plugin:write"], lifecycle = true)]
#[derive(Default)]
pub struct KvBench;

/// The context of the latest runtime's `init`.
static CONTEXT: Mutex<Option<PluginContext<KvBench>>> = Mutex::new(None);

impl plexichat::Lifecycle for KvBench {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        *CONTEXT.lock().unwrap() = Some(context.clone());
        Ok(())
    }
}

const KEYS: usize = 1000;
const ROUNDS: usize = 3;

/// Throughput of the median round and p99 latency of one way of doing an operation.
struct Measured {
    per_second: f64,
    p99_us: f64,
}

fn summarise(rounds: &[f64], latencies: &mut [Duration]) -> Measured {
    let mut rounds = rounds.to_vec();
    rounds.sort_by(f64::total_cmp);
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Measured {
        per_second: rounds[rounds.len() / 2],
        p99_us: p99.as_secs_f64() * 1e6,
    }
}

fn keys() -> Vec<String> {
    (0..KEYS).map(|n| format!("bench:key:{n:04}")).collect()
}

async fn measure(database: Database, ops: usize) -> Map<String, Value> {
    let dir = plexichat::testing::fresh_dir("kv-bench");
    let registry = Registry::linked().expect("registry");
    let config = plexichat_kernel::config::Config::defaults(&registry);
    let runtime =
        Runtime::with_storage(registry, config, None, Storage::new(database.clone(), dir));
    runtime.migrate().await.expect("migrations");
    let failures = runtime.start().await;
    assert!(failures.is_empty(), "{failures:?}");
    let kv = CONTEXT
        .lock()
        .unwrap()
        .take()
        .expect("the plugin's init ran")
        .kv();
    let keys = keys();
    let value = vec![7u8; 100];
    let pool = database.pool().clone();

    // The statements `KvStore` runs, with the same binds.
    let direct_set = |key: String| {
        let (pool, value) = (pool.clone(), value.clone());
        async move {
            sqlx::query(
                "INSERT INTO plexichat_kv (plugin, key, value, expires_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            )
            .bind("kvbench")
            .bind(key)
            .bind(value)
            .bind(None::<i64>)
            .execute(&pool)
            .await
            .map(drop)
        }
    };
    let direct_get = |key: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "SELECT value FROM plexichat_kv WHERE plugin = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)",
            )
            .bind("kvbench")
            .bind(key)
            .bind(now_millis())
            .fetch_optional(&pool)
            .await
            .map(|row| {
                use sqlx::Row;
                row.map(|row| row.get::<Vec<u8>, _>(0))
            })
        }
    };

    let mut out = Map::new();
    for operation in ["set", "get"] {
        let (mut api_rounds, mut direct_rounds) = (Vec::new(), Vec::new());
        let (mut api_latencies, mut direct_latencies) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            for through_api in [true, false] {
                let started = Instant::now();
                for n in 0..ops {
                    let key = &keys[n % KEYS];
                    let one = Instant::now();
                    match (operation, through_api) {
                        ("set", true) => kv.set(key, &value).await.expect("set"),
                        ("set", false) => direct_set(key.clone()).await.expect("set"),
                        (_, true) => drop(std::hint::black_box(kv.get(key).await.expect("get"))),
                        (_, false) => drop(std::hint::black_box(
                            direct_get(key.clone()).await.expect("get"),
                        )),
                    }
                    let elapsed = one.elapsed();
                    if through_api {
                        api_latencies.push(elapsed);
                    } else {
                        direct_latencies.push(elapsed);
                    }
                }
                let rate = ops as f64 / started.elapsed().as_secs_f64();
                if through_api {
                    api_rounds.push(rate);
                } else {
                    direct_rounds.push(rate);
                }
            }
        }
        let api = summarise(&api_rounds, &mut api_latencies);
        let direct = summarise(&direct_rounds, &mut direct_latencies);
        out.insert(
            operation.to_string(),
            json!({
                "api_per_second": api.per_second,
                "api_p99_us": api.p99_us,
                "direct_per_second": direct.per_second,
                "direct_p99_us": direct.p99_us,
                "ratio": api.per_second / direct.per_second,
            }),
        );
    }
    runtime.shutdown().await;
    out
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let ops = if quick { 500 } else { 10_000 };
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let report = tokio.block_on(async {
        let mut report = Map::new();
        let file = plexichat::testing::fresh_dir("kv-bench-db").join("plexichat.db");
        let sqlite = Database::open(&DatabaseUrl::sqlite_file(&file))
            .await
            .expect("SQLite");
        report.insert("sqlite".into(), Value::Object(measure(sqlite, ops).await));
        // Without a server the PostgreSQL figures are missing, and the report says so.
        if std::env::var(plexichat::testing::POSTGRES_VAR).is_ok() {
            let postgres = plexichat::testing::fresh_postgres_database().await;
            report.insert(
                "postgres".into(),
                Value::Object(measure(postgres, ops).await),
            );
        }
        report
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let text = serde_json::to_string_pretty(&Value::Object(report)).expect("JSON");
    std::fs::write(out.join("kv.json"), &text).expect("kv.json");
    println!("{text}");
}
