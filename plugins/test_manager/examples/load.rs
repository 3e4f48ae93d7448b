//! Load measurements of the test manager, reported and never asserted: `cargo xtask bench
//! tests` runs this with `--release` and writes its section of `docs/BENCHMARKS.md`.
//!
//! 1. Runner throughput: a trivial `async` test run through the runner (queue, worker pool,
//!    time limit, result) against calling the same function in a loop, in the same run.
//! 2. Schedules: N schedules of 100 trivial tests, all due at the same instant, on a served
//!    binary with SQLite; the time from due to each run's start (a schedule whose test is
//!    already queued or running joins that run, so there are fewer runs than schedules).
//! 3. Live updates: C clients connected to `/tests/live-updates` over loopback sockets; the
//!    time from one run's `finished` being published to each client reading it.
//!
//! `--quick` measures small sizes on whatever build it is (CI runs it to keep it working);
//! `--out FILE` writes the Markdown section there as well as to standard output.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plexichat::prelude::*;
use plexichat::tests::{RunRequest, Runner, RunnerEvent};
use plexichat::{Registry, Secret};
use plexichat_kernel::config::Config;
use plexichat_kernel::runtime::Runtime;
use plexichat_kernel::storage::Storage;
use plexichat_web::ServerOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

// The plugin under test is linked, and this example declares the trivial tests' plugin.
use test_manager as _;

/// A hundred trivial tests for the load (`bench_load`, only in this example).
#[plugin(name = "bench_load", prefix = "/bench-load")]
#[derive(Default)]
pub struct BenchLoad;

/// The work each trivial test does: a few hundred nanoseconds of arithmetic.
fn work() -> u64 {
    let mut x = black_box(0x9e37_79b9_7f4a_7c15_u64);
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

macro_rules! trivial_tests {
    ($($name:ident),*) => {$(
        /// A trivial test: the load's unit of work.
        #[plugin_test]
        async fn $name() {
            black_box(work());
        }
    )*};
}
trivial_tests!(
    t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, t10, t11, t12, t13, t14, t15, t16, t17, t18,
    t19, t20, t21, t22, t23, t24, t25, t26, t27, t28, t29, t30, t31, t32, t33, t34, t35, t36, t37,
    t38, t39, t40, t41, t42, t43, t44, t45, t46, t47, t48, t49, t50, t51, t52, t53, t54, t55, t56,
    t57, t58, t59, t60, t61, t62, t63, t64, t65, t66, t67, t68, t69, t70, t71, t72, t73, t74, t75,
    t76, t77, t78, t79, t80, t81, t82, t83, t84, t85, t86, t87, t88, t89, t90, t91, t92, t93, t94,
    t95, t96, t97, t98, t99
);

const TOKEN: &str = "bench-load-token-0123456789-0123456789";

struct Sizes {
    loop_calls: u32,
    runner_rounds: u32,
    schedules: usize,
    clients: usize,
}

fn percentile(sorted: &[f64], percent: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn raise_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given; nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let out = args
        .iter()
        .position(|arg| arg == "--out")
        .and_then(|at| args.get(at + 1))
        .cloned();
    let sizes = if quick {
        Sizes {
            loop_calls: 20_000,
            runner_rounds: 5,
            schedules: 500,
            clients: 100,
        }
    } else {
        Sizes {
            loop_calls: 200_000,
            runner_rounds: 50,
            schedules: 10_000,
            clients: 1000,
        }
    };
    raise_file_limit();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let section = tokio.block_on(measure(&sizes, quick));
    print!("{section}");
    if let Some(path) = out {
        std::fs::write(&path, &section).unwrap_or_else(|error| panic!("{path}: {error}"));
    }
}

async fn measure(sizes: &Sizes, quick: bool) -> String {
    let dir = std::env::temp_dir().join(format!("plexichat-bench-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let registry = Registry::linked().unwrap_or_else(|errors| panic!("{errors}"));
    let mut config = Config::defaults(&registry);
    config.data.dir = dir.clone();
    let storage = Storage::open(&config.data).await.unwrap();
    let database = storage.database().clone();
    let runtime = Runtime::with_storage(registry, config, None, storage);
    runtime.migrate().await.unwrap();
    let options = ServerOptions {
        admin_token: Some(Secret::new(TOKEN)),
        max_connections: sizes.clients * 2 + 64,
        // Every live-update client is on the one loopback address, as behind a proxy.
        max_streams: sizes.clients + 64,
        max_streams_per_client: 0,
        ..ServerOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(plexichat_web::serve(
        listener,
        runtime.clone(),
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    wait_ready(addr).await;

    let (loop_rate, runner_rate) = throughput(&runtime, sizes).await;
    let schedules = schedules(&runtime, &database, addr, sizes.schedules).await;
    let live = live_updates(&runtime, addr, sizes.clients).await;

    let _ = stop.send(());
    let _ = served.await;
    database.close().await;
    let _ = std::fs::remove_dir_all(&dir);

    let build = if quick {
        "small sizes, whatever build; figures not for publishing"
    } else {
        "release build"
    };
    format!(
        "## Test manager\n\n\
         Written by `cargo xtask bench tests{}` ({build}), on this machine, in one run. Nothing \
         here is asserted.\n\n\
         | measurement | result |\n|---|---|\n\
         | trivial test called in a loop | {loop_rate:.0} calls/s |\n\
         | the same test through the runner (4 workers, 100 tests per round, {rounds} rounds) | {runner_rate:.0} runs/s ({ratio:.2} of the loop) |\n\
         | {n} schedules of 100 tests due at one instant: due → run started | p50 {s50:.1} ms, p99 {s99:.1} ms, max {smax:.1} ms |\n\
         | … runs started / joined an earlier run | {runs} / {joined} |\n\
         | … every schedule queued and advanced, after due | {all:.0} ms |\n\
         | one `finished` event to {c} SSE clients (loopback): publish → read | p50 {l50:.2} ms, p99 {l99:.2} ms, max {lmax:.2} ms ({got}/{c} received) |\n\n\
         The loop calls the test function itself; the runner adds queueing, a task per attempt, the \
         time limit and the result's broadcast. A due schedule waits for the scheduler to reach it \
         (a pass first claims every due schedule in one transaction, so that no other \
         process on the database runs it too, then queues their runs) and for a worker; a test already queued or running is joined, not run \
         twice, so with 100 tests most of the schedules join a run.\n",
        if quick { " --quick" } else { "" },
        rounds = sizes.runner_rounds,
        ratio = runner_rate / loop_rate,
        n = sizes.schedules,
        s50 = percentile(&schedules.latencies, 50.0),
        s99 = percentile(&schedules.latencies, 99.0),
        smax = schedules.latencies.last().copied().unwrap_or(f64::NAN),
        runs = schedules.latencies.len(),
        joined = sizes.schedules.saturating_sub(schedules.latencies.len()),
        all = schedules.all_done_ms,
        c = sizes.clients,
        l50 = percentile(&live, 50.0),
        l99 = percentile(&live, 99.0),
        lmax = live.last().copied().unwrap_or(f64::NAN),
        got = live.len(),
    )
}

async fn wait_ready(addr: SocketAddr) {
    for _ in 0..500 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
            let _ = stream
                .write_all(b"GET /ready HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                .await;
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer).await;
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server never became ready");
}

/// Calls per second of the loop, and runs per second of the runner.
async fn throughput(runtime: &Runtime, sizes: &Sizes) -> (f64, f64) {
    let start = Instant::now();
    for _ in 0..sizes.loop_calls {
        t00().await;
    }
    let loop_rate = f64::from(sizes.loop_calls) / start.elapsed().as_secs_f64();

    let runner = Runner::of(runtime);
    let tests: Vec<&'static str> = runtime
        .registry()
        .plugin_tests_of("bench_load")
        .map(|test| test.descriptor.name)
        .collect();
    let start = Instant::now();
    for _ in 0..sizes.runner_rounds {
        let tickets: Vec<_> = tests
            .iter()
            .map(|test| {
                runner
                    .submit(runtime, RunRequest::new("bench_load", *test))
                    .unwrap()
            })
            .collect();
        for ticket in tickets {
            ticket.wait().await;
        }
    }
    let runs = sizes.runner_rounds as usize * tests.len();
    (loop_rate, runs as f64 / start.elapsed().as_secs_f64())
}

struct ScheduleResult {
    /// Due → started of every run, in milliseconds, sorted.
    latencies: Vec<f64>,
    /// Due → the last schedule advanced.
    all_done_ms: f64,
}

async fn schedules(
    runtime: &Runtime,
    database: &plexichat_kernel::storage::Database,
    addr: SocketAddr,
    count: usize,
) -> ScheduleResult {
    let pool = database.pool();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    // Due two seconds from now: every row is in before any is due.
    let due_ms = now_ms() + 2000;
    let mut transaction = pool.begin().await.unwrap();
    for index in 0..count {
        plexichat::sqlx::query(
            "INSERT INTO test_manager_schedules (plugin, test, expression, timezone, priority, timeout_ms, enabled, anchor_ms, next_run_ms, last_run_ms, created_at, updated_at) \
             VALUES ('bench_load', $1, 'every_1_hours', 'UTC', 'medium', NULL, 1, $2, $3, NULL, '', '')",
        )
        .bind(format!("t{:02}", index % 100))
        .bind(due_ms - 3_600_000)
        .bind(due_ms)
        .execute(&mut *transaction)
        .await
        .unwrap();
    }
    transaction.commit().await.unwrap();
    let started: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut events = Runner::of(runtime).subscribe();
    let recorder = {
        let started = Arc::clone(&started);
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let RunnerEvent::Started { attempt: 1, .. } = event {
                    started.lock().await.push(Instant::now());
                }
            }
        })
    };
    // Wakes the scheduler, which then sleeps until the rows are due.
    http(
        addr,
        "POST",
        "/tests/schedule",
        r#"{"plugin_name": "bench_load", "schedule_expression": "daily", "enabled": false}"#,
    )
    .await;
    let due_instant = Instant::now() + Duration::from_millis((due_ms - now_ms()).max(0) as u64);
    // Every row advanced: none is due any more.
    let all_done = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let remaining: i64 = plexichat::sqlx::query_scalar(
            "SELECT COUNT(*) FROM test_manager_schedules WHERE enabled = 1 AND next_run_ms <= $1",
        )
        .bind(due_ms)
        .fetch_one(pool)
        .await
        .unwrap();
        if remaining == 0 && Instant::now() > due_instant {
            break Instant::now();
        }
    };
    // The last runs finish shortly after.
    tokio::time::sleep(Duration::from_millis(500)).await;
    recorder.abort();
    let mut latencies: Vec<f64> = started
        .lock()
        .await
        .iter()
        .map(|at| at.saturating_duration_since(due_instant).as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    ScheduleResult {
        latencies,
        all_done_ms: all_done
            .saturating_duration_since(due_instant)
            .as_secs_f64()
            * 1000.0,
    }
}

async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer
}

/// Publish → read of one `finished` event at each client, in milliseconds, sorted.
async fn live_updates(runtime: &Runtime, addr: SocketAddr, clients: usize) -> Vec<f64> {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(clients);
    let mut readers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let ready = ready_tx.clone();
        readers.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            stream
                .write_all(b"GET /tests/live-updates HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
                .await
                .ok()?;
            let mut seen = Vec::new();
            let mut buffer = [0u8; 4096];
            let mut said_ready = false;
            loop {
                let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer))
                    .await
                    .ok()?
                    .ok()?;
                if read == 0 {
                    return None;
                }
                let now = Instant::now();
                seen.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&seen);
                if !said_ready && text.contains("event: hello") {
                    said_ready = true;
                    let _ = ready.send(()).await;
                }
                if text.contains("event: finished") {
                    return Some(now);
                }
            }
        }));
    }
    drop(ready_tx);
    for _ in 0..clients {
        if ready_rx.recv().await.is_none() {
            break;
        }
    }
    // The publish instant, as seen by a thread that does nothing but wait for it.
    let mut events = Runner::of(runtime).subscribe();
    let published = std::thread::spawn(move || {
        loop {
            match events.blocking_recv() {
                Ok(RunnerEvent::Finished { .. }) => return Instant::now(),
                Ok(_) => continue,
                Err(_) => return Instant::now(),
            }
        }
    });
    Runner::of(runtime)
        .submit(runtime, RunRequest::new("bench_load", "t00"))
        .unwrap()
        .wait()
        .await;
    let published = published.join().unwrap();
    let mut delays = Vec::with_capacity(clients);
    for reader in readers {
        if let Ok(Some(at)) = reader.await {
            delays.push(at.saturating_duration_since(published).as_secs_f64() * 1000.0);
        }
    }
    delays.sort_by(f64::total_cmp);
    delays
}
