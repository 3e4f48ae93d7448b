//! `/metrics`: request counts and latencies per route, recorded by one layer around every
//! route, and the runtime's own counters (event handlers, task and liveness restarts, plugin
//! states), rendered in the Prometheus text format.
//!
//! Recording is a hash lookup of the matched route, two clock reads and three relaxed atomic
//! additions; nothing is allocated per request. A route's per-method table is allocated the
//! first time that method reaches it.

use std::collections::HashMap;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use plexichat_kernel::runtime::Runtime;

/// The `plugin` label of the server's own routes.
pub(crate) const CORE: &str = "(core)";

/// Upper bounds of the latency histogram's buckets, in seconds (and microseconds below).
const BUCKETS: [&str; 16] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10",
];
const BUCKET_MICROS: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
];
/// Status codes 100 to 599, one counter each.
const STATUSES: usize = 500;

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// One method of one route.
struct MethodMetrics {
    statuses: [AtomicU64; STATUSES],
    /// Per bucket, not cumulative; the last counts what exceeds every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl MethodMetrics {
    fn new() -> Box<MethodMetrics> {
        Box::new(MethodMetrics {
            statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        })
    }
}

/// One route (a path pattern), with its owning plugin.
struct RouteMetrics {
    plugin: &'static str,
    route: String,
    methods: [OnceLock<Box<MethodMetrics>>; METHODS.len()],
}

impl RouteMetrics {
    fn new(plugin: &'static str, route: String) -> RouteMetrics {
        RouteMetrics {
            plugin,
            route,
            methods: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn record(&self, method: usize, status: u16, micros: u64) {
        let metrics = self.methods[method].get_or_init(MethodMetrics::new);
        let status = usize::from(status).saturating_sub(100).min(STATUSES - 1);
        metrics.statuses[status].fetch_add(1, Ordering::Relaxed);
        let bucket = BUCKET_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(BUCKETS.len());
        metrics.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        metrics.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The request metrics of one application, keyed by route pattern.
pub(crate) struct HttpMetrics {
    routes: HashMap<String, RouteMetrics>,
    /// Routes missing from the table (none, unless a route is added without being named
    /// here): counted, so that nothing is lost, under `route="(other)"`.
    other: RouteMetrics,
    /// Requests that matched no route (answered 404 by the fallback).
    unmatched: AtomicU64,
}

impl HttpMetrics {
    /// A table of `routes`: each path pattern with the plugin that owns it.
    pub(crate) fn new(routes: impl IntoIterator<Item = (&'static str, String)>) -> Self {
        HttpMetrics {
            routes: routes
                .into_iter()
                .map(|(plugin, path)| (path.clone(), RouteMetrics::new(plugin, path)))
                .collect(),
            other: RouteMetrics::new(CORE, "(other)".into()),
            unmatched: AtomicU64::new(0),
        }
    }

    /// Requests that matched no route so far.
    pub(crate) fn unmatched(&self) -> u64 {
        self.unmatched.load(Ordering::Relaxed)
    }

    /// Requests so far per plugin and status code (unmatched ones are not a plugin's).
    fn by_status(&self) -> std::collections::BTreeMap<(&'static str, u16), u64> {
        let mut counts = std::collections::BTreeMap::new();
        for route in self.routes.values().chain([&self.other]) {
            for metrics in route.methods.iter().filter_map(OnceLock::get) {
                for (offset, count) in metrics.statuses.iter().enumerate() {
                    let count = count.load(Ordering::Relaxed);
                    if count > 0 {
                        let status = u16::try_from(offset + 100).unwrap_or(u16::MAX);
                        *counts.entry((route.plugin, status)).or_default() += count;
                    }
                }
            }
        }
        counts
    }

    /// Each plugin's requests so far (core's routes under [`CORE`]), by plugin name.
    pub(crate) fn summary(&self) -> Vec<PluginSummary> {
        let mut by_plugin: std::collections::BTreeMap<&'static str, PluginSummary> =
            std::collections::BTreeMap::new();
        for route in self.routes.values().chain([&self.other]) {
            for metrics in route.methods.iter().filter_map(OnceLock::get) {
                let summary = by_plugin
                    .entry(route.plugin)
                    .or_insert_with(|| PluginSummary::new(route.plugin));
                for (offset, count) in metrics.statuses.iter().enumerate() {
                    let count = count.load(Ordering::Relaxed);
                    summary.requests += count;
                    match offset + 100 {
                        400..=499 => summary.client_errors += count,
                        500.. => summary.server_errors += count,
                        _ => {}
                    }
                }
                for (bucket, count) in summary.buckets.iter_mut().zip(&metrics.buckets) {
                    *bucket += count.load(Ordering::Relaxed);
                }
                summary.sum_micros += metrics.sum_micros.load(Ordering::Relaxed);
            }
        }
        by_plugin.into_values().collect()
    }

    pub(crate) fn count_unmatched(&self) {
        self.unmatched.fetch_add(1, Ordering::Relaxed);
    }

    fn route(&self, path: Option<&MatchedPath>) -> &RouteMetrics {
        path.and_then(|path| self.routes.get(path.as_str()))
            .unwrap_or(&self.other)
    }
}

/// One plugin's requests, summed over its routes and methods.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PluginSummary {
    pub(crate) plugin: &'static str,
    pub(crate) requests: u64,
    pub(crate) client_errors: u64,
    pub(crate) server_errors: u64,
    buckets: [u64; BUCKETS.len() + 1],
    sum_micros: u64,
}

impl PluginSummary {
    fn new(plugin: &'static str) -> PluginSummary {
        PluginSummary {
            plugin,
            requests: 0,
            client_errors: 0,
            server_errors: 0,
            buckets: [0; BUCKETS.len() + 1],
            sum_micros: 0,
        }
    }

    /// The mean latency in milliseconds, if it served any request.
    pub(crate) fn mean_ms(&self) -> Option<f64> {
        let count: u64 = self.buckets.iter().sum();
        (count > 0).then(|| self.sum_micros as f64 / count as f64 / 1000.0)
    }

    /// The `q` quantile of its latency in milliseconds, interpolated linearly inside the
    /// bucket it falls in (Prometheus' `histogram_quantile`); past the last bound, that bound.
    pub(crate) fn quantile_ms(&self, q: f64) -> Option<f64> {
        let count: u64 = self.buckets.iter().sum();
        if count == 0 {
            return None;
        }
        let rank = q * count as f64;
        let mut below = 0u64;
        for (index, &in_bucket) in self.buckets.iter().enumerate() {
            if in_bucket > 0 && (below + in_bucket) as f64 >= rank {
                let Some(&upper) = BUCKET_MICROS.get(index) else {
                    return Some(BUCKET_MICROS[BUCKET_MICROS.len() - 1] as f64 / 1000.0);
                };
                let lower = if index == 0 {
                    0
                } else {
                    BUCKET_MICROS[index - 1]
                };
                let within = (rank - below as f64) / in_bucket as f64;
                return Some((lower as f64 + (upper - lower) as f64 * within) / 1000.0);
            }
            below += in_bucket;
        }
        None
    }
}

/// Records every request of the routes it wraps into an [`HttpMetrics`]; applied with
/// `Router::route_layer`, outside every other layer, so a request's time includes all
/// middleware and a panic's 500 is counted.
#[derive(Clone)]
pub(crate) struct RecordLayer(pub(crate) Arc<HttpMetrics>);

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;
    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            metrics: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Record<S> {
    inner: S,
    metrics: Arc<HttpMetrics>,
}

impl<S> Service<Request> for Record<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Recording<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let key = Key {
            metrics: Arc::clone(&self.metrics),
            path: request.extensions().get::<MatchedPath>().cloned(),
            method: method_index(request.method()),
            start: Instant::now(),
        };
        Recording {
            inner: self.inner.call(request),
            key: Some(key),
        }
    }
}

/// What a request's recording needs once its response is there.
struct Key {
    metrics: Arc<HttpMetrics>,
    path: Option<MatchedPath>,
    method: usize,
    start: Instant,
}

pin_project! {
    pub(crate) struct Recording<F> {
        #[pin]
        inner: F,
        key: Option<Key>,
    }
}

impl<F, E> Future for Recording<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(key)) = (&output, this.key.take()) {
            let micros = u64::try_from(key.start.elapsed().as_micros()).unwrap_or(u64::MAX);
            key.metrics.route(key.path.as_ref()).record(
                key.method,
                response.status().as_u16(),
                micros,
            );
        }
        Poll::Ready(output)
    }
}

/// `/metrics`' answer: [`render`] with the text format's content type.
pub(crate) fn exposition(http: &HttpMetrics, runtime: &Runtime) -> Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(http, runtime),
    )
        .into_response()
}

/// The router of `[server] metrics_bind`: `/metrics` alone, without authentication (the
/// operator chose who can reach that address).
pub(crate) fn router(http: Arc<HttpMetrics>, runtime: Runtime) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move { exposition(&http, &runtime) }),
    )
}

/// The Prometheus text exposition (format 0.0.4) of `http` and `runtime`.
pub(crate) fn render(http: &HttpMetrics, runtime: &Runtime) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let mut routes: Vec<&RouteMetrics> = http.routes.values().collect();
    routes.sort_by(|a, b| (a.plugin, &a.route).cmp(&(b.plugin, &b.route)));
    routes.push(&http.other);

    header(
        &mut out,
        "plexichat_http_requests_total",
        "counter",
        "Requests answered, by owning plugin, route pattern, method and status.",
    );
    for_each_method(&routes, |labels, metrics| {
        for (offset, count) in metrics.statuses.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                let _ = writeln!(
                    out,
                    "plexichat_http_requests_total{{{labels},status=\"{}\"}} {count}",
                    offset + 100
                );
            }
        }
    });
    header(
        &mut out,
        "plexichat_http_request_duration_seconds",
        "histogram",
        "Time from a request reaching its route to its response head, all middleware included.",
    );
    for_each_method(&routes, |labels, metrics| {
        let mut cumulative = 0;
        for (index, bound) in BUCKETS.iter().chain(&["+Inf"]).enumerate() {
            cumulative += metrics.buckets[index].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "plexichat_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let sum = metrics.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "plexichat_http_request_duration_seconds_sum{{{labels}}} {sum}\nplexichat_http_request_duration_seconds_count{{{labels}}} {cumulative}"
        );
    });
    header(
        &mut out,
        "plexichat_http_unmatched_requests_total",
        "counter",
        "Requests that matched no route (404).",
    );
    let _ = writeln!(
        out,
        "plexichat_http_unmatched_requests_total {}",
        http.unmatched.load(Ordering::Relaxed)
    );
    render_runtime(&mut out, runtime);
    out
}

/// Calls `each` with the label set and table of every method a route has served.
fn for_each_method(routes: &[&RouteMetrics], mut each: impl FnMut(&str, &MethodMetrics)) {
    for route in routes {
        for (index, metrics) in route.methods.iter().enumerate() {
            if let Some(metrics) = metrics.get() {
                let labels = format!(
                    "plugin=\"{}\",route=\"{}\",method=\"{}\"",
                    escape(route.plugin),
                    escape(&route.route),
                    METHODS[index]
                );
                each(&labels, metrics);
            }
        }
    }
}

/// The runtime's counters: per plugin, its state, route panics, event handlers, tasks and
/// liveness restarts.
fn render_runtime(out: &mut String, runtime: &Runtime) {
    let plugins: Vec<&'static str> = runtime
        .registry()
        .plugins()
        .iter()
        .map(|plugin| plugin.name)
        .collect();
    render_plugin_states(out, runtime, &plugins);
    render_panics(out, runtime, &plugins);
    render_event_handlers(out, runtime, &plugins);
    render_restarts(out, runtime, &plugins);
    render_build_info(out);
}

/// `plexichat_plugin_state`: one gauge per plugin and state, 1 for the state it is in.
fn render_plugin_states(out: &mut String, runtime: &Runtime, plugins: &[&'static str]) {
    use plexichat_kernel::runtime::state::PluginStatus;
    header(
        out,
        "plexichat_plugin_state",
        "gauge",
        "1 for the state each plugin is in, 0 for the others.",
    );
    for plugin in plugins {
        let current = runtime
            .status(plugin)
            .map(|status: PluginStatus| status.name());
        for state in PluginStatus::NAMES {
            let value = u8::from(current == Some(state));
            let _ = writeln!(
                out,
                "plexichat_plugin_state{{plugin=\"{}\",state=\"{state}\"}} {value}",
                escape(plugin)
            );
        }
    }
}

/// The panics of each plugin's route handlers, then of its middleware.
fn render_panics(out: &mut String, runtime: &Runtime, plugins: &[&'static str]) {
    header(
        out,
        "plexichat_route_panics_total",
        "counter",
        "Requests on which a plugin's route handler panicked (answered 500).",
    );
    header_values(out, plugins, "plexichat_route_panics_total", |plugin| {
        runtime.route_stats(plugin).panics
    });
    header(
        out,
        "plexichat_middleware_panics_total",
        "counter",
        "Requests on which a plugin's middleware panicked (answered 500).",
    );
    header_values(
        out,
        plugins,
        "plexichat_middleware_panics_total",
        |plugin| runtime.route_stats(plugin).middleware_panics,
    );
}

/// Each event handler's calls, failures, rejections and timeouts, one metric after another.
fn render_event_handlers(out: &mut String, runtime: &Runtime, plugins: &[&'static str]) {
    let handlers: Vec<(&str, plexichat_kernel::runtime::HandlerStats)> = plugins
        .iter()
        .flat_map(|plugin| {
            runtime
                .handler_stats(plugin)
                .into_iter()
                .map(move |stats| (*plugin, stats))
        })
        .collect();
    for (name, help, value) in [
        (
            "plexichat_event_handler_calls_total",
            "Times an event handler was called.",
            (|stats: &plexichat_kernel::runtime::HandlerStats| stats.calls) as fn(&_) -> u64,
        ),
        (
            "plexichat_event_handler_failures_total",
            "Times an event handler returned an error, panicked or ran out of time.",
            |stats| stats.failures,
        ),
        (
            "plexichat_event_handler_rejections_total",
            "Proposals a pre-handler of a vetoable event rejected.",
            |stats| stats.rejections,
        ),
        (
            "plexichat_event_handler_timeouts_total",
            "Times a pre-handler ran past its time limit.",
            |stats| stats.timeouts,
        ),
    ] {
        header(out, name, "counter", help);
        for (plugin, stats) in &handlers {
            let _ = writeln!(
                out,
                "{name}{{plugin=\"{}\",event=\"{}\",handler=\"{}\"}} {}",
                escape(plugin),
                escape(stats.event),
                escape(stats.handler),
                value(stats)
            );
        }
    }
}

/// The supervisor's restarts of background tasks, then the liveness restarts of plugins.
fn render_restarts(out: &mut String, runtime: &Runtime, plugins: &[&'static str]) {
    header(
        out,
        "plexichat_task_restarts_total",
        "counter",
        "Times the supervisor restarted a plugin's background task.",
    );
    for plugin in plugins {
        for task in runtime.task_status(plugin) {
            let _ = writeln!(
                out,
                "plexichat_task_restarts_total{{plugin=\"{}\",task=\"{}\"}} {}",
                escape(plugin),
                escape(task.name),
                task.restarts
            );
        }
    }
    header(
        out,
        "plexichat_plugin_restarts_total",
        "counter",
        "Times a plugin was restarted because its liveness checks failed.",
    );
    for plugin in plugins {
        if let Some(liveness) = runtime.liveness(plugin) {
            let _ = writeln!(
                out,
                "plexichat_plugin_restarts_total{{plugin=\"{}\"}} {}",
                escape(plugin),
                liveness.restarts
            );
        }
    }
}

/// `plexichat_build_info`: the version of this binary as a label of a constant gauge.
fn render_build_info(out: &mut String) {
    header(
        out,
        "plexichat_build_info",
        "gauge",
        "Always 1; the version of this binary.",
    );
    let _ = writeln!(
        out,
        "plexichat_build_info{{version=\"{}\"}} 1",
        escape(plexichat_kernel::abi::expansion::VERSION)
    );
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn header_values(
    out: &mut String,
    plugins: &[&'static str],
    name: &str,
    value: impl Fn(&str) -> u64,
) {
    for plugin in plugins {
        let _ = writeln!(
            out,
            "{name}{{plugin=\"{}\"}} {}",
            escape(plugin),
            value(plugin)
        );
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        value.into()
    }
}

/// How often the HTTP layer's counts go to analytics.
const FEED_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Records, every [`FEED_EVERY`], the requests answered since the last time as analytics'
/// `http.requests` of plugin `plexichat`, per `plugin` and `status`: read from the counters
/// the metrics already keep, so a request costs nothing more. Runs until aborted; skips its
/// work while no analytics provider runs.
/// When `stop` fires it sends once more and returns, so a graceful shutdown loses nothing.
pub(crate) async fn feed_analytics(
    metrics: Arc<HttpMetrics>,
    runtime: Runtime,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut sent = std::collections::BTreeMap::new();
    let mut ticks = tokio::time::interval(FEED_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = false;
    while !last {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = &mut stop => last = true,
        }
        if !plexichat_kernel::runtime::analytics::has_provider(&runtime) {
            continue;
        }
        let now = metrics.by_status();
        for (&(plugin, status), &count) in &now {
            let before = sent.get(&(plugin, status)).copied().unwrap_or(0);
            if count > before {
                plexichat_kernel::runtime::analytics::record_for_core(
                    &runtime,
                    "http.requests",
                    &[("plugin", plugin), ("status", &status.to_string())],
                    i64::try_from(count - before).unwrap_or(i64::MAX),
                );
            }
        }
        sent = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_into_the_first_bucket_that_holds_them() {
        let route = RouteMetrics::new("p", "/x".into());
        for micros in [0, 100, 101, 10_000_000, 10_000_001] {
            route.record(0, 200, micros);
        }
        let metrics = route.methods[0].get().unwrap();
        let counts: Vec<u64> = metrics
            .buckets
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 2, "0 and 100 µs are within 0.0001 s");
        assert_eq!(counts[1], 1, "101 µs is within 0.00025 s");
        assert_eq!(counts[15], 1, "10 s is within the last bound");
        assert_eq!(counts[16], 1, "beyond every bound: +Inf only");
        assert_eq!(metrics.statuses[100].load(Ordering::Relaxed), 5);
        assert!(
            route.methods[1].get().is_none(),
            "an unused method allocates nothing"
        );
    }

    #[test]
    fn out_of_range_statuses_are_clamped_not_lost() {
        let route = RouteMetrics::new("p", "/x".into());
        route.record(7, 42, 1);
        route.record(7, 999, 1);
        let metrics = route.methods[7].get().unwrap();
        assert_eq!(metrics.statuses[0].load(Ordering::Relaxed), 1);
        assert_eq!(metrics.statuses[STATUSES - 1].load(Ordering::Relaxed), 1);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("/api/v1/{name}"), "/api/v1/{name}");
    }
}
