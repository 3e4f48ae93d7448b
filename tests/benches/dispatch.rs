//! Event dispatch cost: publishing one event to 1, 10 and 100 sync handlers and to 10 async
//! handlers, against calling the same handler bodies directly through a slice of function
//! pointers. Allocations per publish are counted by a counting global allocator and written
//! to `target/bench/dispatch-allocations.json` for `cargo xtask bench`.
//!
//! Also `analytics.record` (validation, sorted dimensions as JSON, the bounded queue) against
//! a bare `try_send` of a record with the same fields on a tokio channel of the same size,
//! both drained by a thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use plexichat::Registry;
use plexichat::prelude::*;
use plexichat_kernel::runtime::Runtime;

/// Counts every allocation the benchmark process makes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The benchmark's plugin; its handlers do the same work as the direct calls.
/// It also provides analytics, answering no queries: the benchmark measures recording only.
#[plugin(name = "bench", permissions = ["analytics", "services:provide"])]
#[derive(Default)]
pub struct Bench;

struct NoQueries;

impl plexichat::analytics::AnalyticsProvider for NoQueries {
    fn query(
        &self,
        _: plexichat::analytics::AnalyticsQuery,
    ) -> plexichat::analytics::AnalyticsFuture<'_, Vec<plexichat::analytics::AnalyticsRow>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn distinct(
        &self,
        _: String,
        _: String,
        _: String,
        _: String,
        _: String,
    ) -> plexichat::analytics::AnalyticsFuture<'_, Vec<(String, i64)>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// The queue's size in both cases.
const QUEUE: usize = 65_536;

/// `analytics.record` against the bare channel send.
fn analytics(c: &mut Criterion, runtime: &Runtime) {
    let feed = PluginContext::<Bench>::new(runtime.clone())
        .provide_analytics(std::sync::Arc::new(NoQueries), QUEUE)
        .expect("the provider installs");
    let analytics = PluginContext::<Bench>::new(runtime.clone()).analytics();
    // Drained as the provider would, so the queue never fills.
    fn drain<T: Send + 'static>(mut feed: tokio::sync::mpsc::Receiver<T>) {
        std::thread::spawn(move || while feed.blocking_recv().is_some() {});
    }
    drain(feed);
    c.bench_function("analytics/record", |b| {
        b.iter(|| {
            analytics.record(
                black_box("chat.messages"),
                black_box(&[("user", "12"), ("channel", "4")]),
            )
        })
    });
    let (sender, receiver) = tokio::sync::mpsc::channel::<(i64, &str, &str, String, i64)>(QUEUE);
    drain(receiver);
    c.bench_function("analytics/bare_channel", |b| {
        b.iter(|| {
            let _ = sender.try_send((
                black_box(plexichat::storage::now_millis()),
                "bench",
                black_box("chat.messages"),
                black_box(r#"{"channel":"4","user":"12"}"#).to_owned(),
                1,
            ));
        })
    });
    println!("analytics: {:?}", analytics.stats());
}

#[event(name = "bench.one")]
/// Published to one handler.
pub struct One(u64);
#[event(name = "bench.ten")]
/// Published to ten sync handlers.
pub struct Ten(u64);
#[event(name = "bench.hundred")]
/// Published to a hundred sync handlers.
pub struct Hundred(u64);
#[event(name = "bench.ten_async")]
/// Published to ten async handlers.
pub struct TenAsync(u64);

/// The work every handler does, direct or dispatched.
#[inline(never)]
fn work(value: u64) {
    black_box(value.wrapping_mul(31));
}

macro_rules! sync_handlers {
    ($event:ident: $($name:ident)*) => { $(
        mod $name {
            use super::*;
            #[on_event]
            fn handle(event: &$event) { work(event.0) }
        }
    )* };
}

macro_rules! async_handlers {
    ($event:ident: $($name:ident)*) => { $(
        mod $name {
            use super::*;
            #[on_event]
            async fn handle(event: &$event) { work(event.0) }
        }
    )* };
}

mod one {
    use super::*;
    sync_handlers!(One: h0);
}
mod ten {
    use super::*;
    sync_handlers!(Ten: s0 s1 s2 s3 s4 s5 s6 s7 s8 s9);
}
mod hundred {
    use super::*;
    sync_handlers!(Hundred: h0 h1 h2 h3 h4 h5 h6 h7 h8 h9 h10 h11 h12 h13 h14 h15 h16 h17 h18 h19 h20 h21 h22 h23 h24 h25 h26 h27 h28 h29 h30 h31 h32 h33 h34 h35 h36 h37 h38 h39 h40 h41 h42 h43 h44 h45 h46 h47 h48 h49 h50 h51 h52 h53 h54 h55 h56 h57 h58 h59 h60 h61 h62 h63 h64 h65 h66 h67 h68 h69 h70 h71 h72 h73 h74 h75 h76 h77 h78 h79 h80 h81 h82 h83 h84 h85 h86 h87 h88 h89 h90 h91 h92 h93 h94 h95 h96 h97 h98 h99);
}
mod ten_async {
    use super::*;
    async_handlers!(TenAsync: a0 a1 a2 a3 a4 a5 a6 a7 a8 a9);
}

fn direct(handlers: &[fn(u64)], value: u64) {
    for handler in handlers {
        handler(value);
    }
}

fn allocations_per_publish(
    runtime: &Runtime,
    tokio: &tokio::runtime::Runtime,
) -> serde_json::Value {
    const ROUNDS: u64 = 1000;
    let mut result = serde_json::Map::new();
    macro_rules! measure {
        ($label:literal, $event:expr, $handlers:expr) => {{
            // A publish that reached no handler would measure nothing.
            let report = tokio.block_on(runtime.publish(&$event));
            assert_eq!(report.succeeded, $handlers, "{} handlers ran", $label);
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            tokio.block_on(async {
                for value in 0..ROUNDS {
                    let _ = value;
                    runtime.publish(&$event).await;
                }
            });
            let after = ALLOCATIONS.load(Ordering::Relaxed);
            result.insert(
                $label.into(),
                ((after - before) as f64 / ROUNDS as f64).into(),
            );
        }};
    }
    measure!("sync_1", One(1), 1);
    measure!("sync_10", Ten(1), 10);
    measure!("sync_100", Hundred(1), 100);
    measure!("async_10", TenAsync(1), 10);
    serde_json::Value::Object(result)
}

fn dispatch(c: &mut Criterion) {
    let runtime = Runtime::new(Registry::linked().expect("registry"));
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");

    // Handlers run only for plugins that are running.
    let failures = tokio.block_on(runtime.start());
    assert!(
        failures.is_empty(),
        "the benchmark's plugin starts: {failures:?}"
    );
    let allocations = allocations_per_publish(&runtime, &tokio);
    let out = plexichat_tests::workspace_root().join("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    std::fs::write(
        out.join("dispatch-allocations.json"),
        allocations.to_string(),
    )
    .expect("write");
    println!("allocations per publish: {allocations}");

    for (label, count) in [("1", 1usize), ("10", 10), ("100", 100)] {
        let handlers: Vec<fn(u64)> = vec![work; count];
        // Inside `block_on` like `publish`, so the ratio is the bus's own cost.
        c.bench_function(&format!("direct/sync_{label}"), |b| {
            b.iter(|| tokio.block_on(async { direct(black_box(&handlers), black_box(1)) }))
        });
    }
    c.bench_function("publish/sync_1", |b| {
        b.iter(|| tokio.block_on(runtime.publish(black_box(&One(1)))))
    });
    c.bench_function("publish/sync_10", |b| {
        b.iter(|| tokio.block_on(runtime.publish(black_box(&Ten(1)))))
    });
    c.bench_function("publish/sync_100", |b| {
        b.iter(|| tokio.block_on(runtime.publish(black_box(&Hundred(1)))))
    });
    c.bench_function("publish/async_10", |b| {
        b.iter(|| tokio.block_on(runtime.publish(black_box(&TenAsync(1)))))
    });
    let handlers: Vec<fn(u64)> = vec![work; 10];
    c.bench_function("direct/async_10", |b| {
        b.iter(|| tokio.block_on(async { direct(black_box(&handlers), black_box(1)) }))
    });
    analytics(c, &runtime);
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
