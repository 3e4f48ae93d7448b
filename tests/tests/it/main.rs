//! Integration tests, compiled as one binary. The binary links both workspace plugins plus
//! the `test_harness` plugin below, whose handlers record what the event bus delivers.

mod admin;
// Drives a built binary, like `binary`.
#[cfg(not(feature = "inventory"))]
mod analytics;
// Builds the app through the xtask; the backend switch does not change what it checks.
#[cfg(not(feature = "inventory"))]
mod binary;
// Drives a built binary, like `binary`.
#[cfg(not(feature = "inventory"))]
mod browser;
// Drives a built binary, like `binary`.
#[cfg(not(feature = "inventory"))]
mod chat_docs;
mod config;
mod events;
mod facade;
// Builds the desktop window and drives a built binary.
#[cfg(not(feature = "inventory"))]
mod gui;
mod health;
mod http;
mod limits;
// Drives a built binary, like `binary`.
#[cfg(not(feature = "inventory"))]
mod log_sinks;
mod metrics;
mod middleware;
mod openapi;
mod outage;
mod outbox;
mod registry;
// Drives a built binary, like `binary`.
#[cfg(not(feature = "inventory"))]
mod schemathesis;
mod selftest;
mod state;
mod storage;
mod tidy;
// Drives a built binary, like `binary`.
mod web_assets;
#[cfg(not(feature = "inventory"))]
mod webhooks;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use my_awesome_plugin::{ActionCompleted, AwesomePlugin};
use plexichat::axum::extract::State;
use plexichat::prelude::*;

/// Records event deliveries for the tests.
#[plugin(
    name = "test_harness",
    dependencies = [AwesomePlugin],
    prefix = "/test",
    permissions = ["events:publish", "plugin:read", "plugin:write", "http:client", "database", "outbox:read"],
    webhooks = [ActionCompleted],
    backup = true,
    lifecycle = true
)]
#[derive(Default)]
pub struct Harness {
    log: Mutex<Vec<String>>,
    /// Times `init` ran: once per start, once more per restart.
    pub inits: AtomicU64,
    /// Makes `harness_alive` fail while set.
    pub failing_liveness: AtomicBool,
    /// Makes `harness_backend` fail while set.
    pub failing_readiness: AtomicBool,
    /// Times `harness_flaky` ran: it fails the first time.
    pub flaky_calls: AtomicU64,
}

impl Lifecycle for Harness {
    async fn init(&self, _context: &PluginContext<Self>) -> Result<(), BoxError> {
        self.inits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A liveness check the tests break on purpose.
#[health_check(liveness)]
async fn harness_alive(harness: &Harness) -> Result<(), String> {
    if harness.failing_liveness.load(Ordering::SeqCst) {
        return Err("the harness is wedged on purpose".to_string());
    }
    Ok(())
}

/// A readiness check the tests break on purpose, reaching the plugin through its context.
#[health_check(readiness)]
fn harness_backend(context: &PluginContext<Harness>) -> Result<(), String> {
    match context.instance() {
        Some(harness) if harness.failing_readiness.load(Ordering::SeqCst) => {
            Err("the test backend is down".to_string())
        }
        _ => Ok(()),
    }
}

/// Passes.
#[plugin_test(tags = ["runner"])]
async fn harness_passes() {}

/// Fails with a message.
#[plugin_test(category = analytics)]
fn harness_fails() -> Result<(), String> {
    Err("expected 2, got 3".to_string())
}

/// Panics.
#[plugin_test]
async fn harness_panics() -> Result<(), String> {
    panic!("the harness test panicked on purpose")
}

/// Never ends on its own (an `async` test the runner cancels).
#[plugin_test]
async fn harness_hangs() {
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
}

/// Blocks its thread for two seconds (a synchronous test the runner abandons).
#[plugin_test(timeout = "100ms")]
fn harness_hangs_sync() {
    std::thread::sleep(std::time::Duration::from_secs(2));
}

/// Fails on its first run, passes on every later one.
#[plugin_test(retries = 1)]
fn harness_flaky(context: &TestContext<Harness>) -> Result<(), String> {
    let harness = context.instance().ok_or("no harness")?;
    match harness.flaky_calls.fetch_add(1, Ordering::SeqCst) {
        0 => Err("first call fails".to_string()),
        _ => Ok(()),
    }
}

/// Takes 300 ms: holds a worker while others queue.
#[plugin_test]
async fn harness_slow() {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

/// A synchronous test reaching the server's routes through `block_on`.
#[plugin_test]
fn harness_blocks_on_the_client(context: &TestContext<Harness>) -> Result<(), String> {
    let (status, body) = context.block_on(context.app().get("/health"));
    match status.as_u16() {
        200 => Ok(()),
        other => Err(format!("GET /health answered {other}: {body}")),
    }
}

/// Queue fillers: eight tests that pass at once.
macro_rules! fillers {
    ($($name:ident),*) => {$(
        /// Passes at once.
        #[plugin_test(tags = ["filler"])]
        async fn $name() {}
    )*};
}
fillers!(
    harness_filler_0,
    harness_filler_1,
    harness_filler_2,
    harness_filler_3,
    harness_filler_4,
    harness_filler_5,
    harness_filler_6,
    harness_filler_7
);

impl Harness {
    fn record(&self, entry: impl Into<String>) {
        self.log.lock().unwrap().push(entry.into());
    }

    /// Everything recorded so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// The log is state kept outside the database: a backup handler is how it gets into an
/// archive. A restore hands it back into the key-value store (`restored_log`), where the
/// tests read it. A log containing `fail export` or `fail import` makes that step fail.
impl Backup for Harness {
    async fn export(&self, _context: &PluginContext<Self>) -> Result<Vec<u8>, BoxError> {
        let log = self.log().join("\n");
        if log.contains("fail export") {
            return Err("the log asked the export to fail".into());
        }
        Ok(log.into_bytes())
    }

    async fn import(&self, context: &PluginContext<Self>, data: Vec<u8>) -> Result<(), BoxError> {
        if data.windows(11).any(|w| w == b"fail import") {
            return Err("the log asked the import to fail".into());
        }
        context.kv().set("restored_log", &data).await?;
        Ok(())
    }
}

/// A test event with handlers at several priorities, some of which fail.
#[event(name = "test.ping")]
pub struct Ping {
    /// Identifies the publish.
    pub id: u64,
}

#[on_event(priority = 100)]
fn ping_first(harness: &Harness, ping: &Ping) {
    harness.record(format!("first {}", ping.id));
}

#[on_event(priority = 50)]
async fn ping_async(harness: &Harness, ping: &Ping) {
    // Yield so that a bus that did not await handlers in order would show it.
    tokio::task::yield_now().await;
    harness.record(format!("async {}", ping.id));
}

#[on_event(priority = 10)]
fn ping_fails(harness: &Harness, ping: &Ping) -> Result<(), String> {
    harness.record(format!("fails {}", ping.id));
    Err("refused on purpose".to_string())
}

#[on_event(priority = 5)]
fn ping_panics(harness: &Harness, ping: &Ping) {
    harness.record(format!("panics {}", ping.id));
    panic!("handler panicked on purpose");
}

#[on_event(priority = -1)]
async fn ping_last(harness: &Harness, ping: &Ping) -> Result<(), std::fmt::Error> {
    harness.record(format!("last {}", ping.id));
    Ok(())
}

/// An event whose one handler asks, behind a type alias, for another plugin's context.
#[event(name = "test.probe")]
#[derive(Clone)]
pub struct Probe;

/// `PluginContext<AwesomePlugin>` under another name: `#[on_event]` reads types as written,
/// so only the run-time check stands between this handler and that plugin's services.
type TheirContext = PluginContext<AwesomePlugin>;

#[on_event]
fn probe_with_their_context(_context: &TheirContext, _probe: &Probe) {}

/// A vetoable test event: what its text says decides what the pre-handlers below do.
#[event(name = "test.proposal", vetoable)]
#[derive(Clone, Debug)]
pub struct Proposal {
    /// `reject`, `panic`, `slow` or `slow sync` in it trigger those pre-handlers.
    pub text: String,
}

/// Runs first and modifies the event, so that every later handler sees `[checked]`.
#[on_event(pre, priority = 30)]
fn proposal_mark(harness: &Harness, proposal: &mut Proposal) {
    harness.record(format!("pre mark {}", proposal.text));
    proposal.text.push_str(" [checked]");
}

#[on_event(pre, priority = 20)]
async fn proposal_slow(harness: &Harness, proposal: &mut Proposal) {
    harness.record(format!("pre slow {}", proposal.text));
    if proposal.text.contains("slow") && !proposal.text.contains("slow sync") {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        harness.record("slow finished");
    }
}

#[on_event(pre, priority = 15)]
fn proposal_slow_sync(proposal: &Proposal) {
    if proposal.text.contains("slow sync") {
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[on_event(pre, priority = 10)]
fn proposal_veto(harness: &Harness, proposal: &mut Proposal) -> Result<(), String> {
    harness.record(format!("pre veto {}", proposal.text));
    if proposal.text.contains("panic") {
        panic!("the veto handler panicked on purpose");
    }
    if proposal.text.contains("reject") {
        return Err("proposals that say reject are rejected".to_string());
    }
    Ok(())
}

#[on_event(pre, priority = 0)]
async fn proposal_last(harness: &Harness, proposal: &mut Proposal) {
    harness.record(format!("pre last {}", proposal.text));
}

#[on_event]
fn proposal_happened(harness: &Harness, proposal: &Proposal) {
    harness.record(format!("post {}", proposal.text));
}

/// Runs before `awesome_audit`'s handler (priority 10) of the same event in another crate.
#[on_event(priority = 20)]
fn action_seen(harness: &Harness, event: &ActionCompleted) {
    harness.record(format!("action {}", event.action_number));
}

#[on_event]
fn started(harness: &Harness, event: &Startup) {
    harness.record(format!("startup {}", event.plugins.join(",")));
}

#[on_event]
fn starting(harness: &Harness, event: &Starting) {
    harness.record(format!("starting {}", event.plugins.join(",")));
}

#[on_event]
async fn shutting_down(harness: &Harness, _event: &Shutdown) {
    harness.record("shutdown");
}

#[on_event]
fn stopped(harness: &Harness, event: &Stopped) {
    harness.record(format!("stopped, stuck: {}", event.stuck_tasks.len()));
}

/// Appends `name` to the response's `x-chain` header, so tests see the order middleware ran in.
fn mark_chain(response: &mut plexichat::response::Response, name: &str) {
    let headers = response.headers_mut();
    let chain = match headers.get("x-chain").and_then(|value| value.to_str().ok()) {
        Some(before) => format!("{before},{name}"),
        None => name.to_string(),
    };
    headers.insert("x-chain", chain.parse().expect("a header value"));
}

/// Global, further out than `chain_inner`: it appends last.
#[plexichat::middleware(scope = global, priority = 10)]
async fn chain_outer(
    request: plexichat::middleware::Request,
    next: plexichat::middleware::Next,
) -> plexichat::response::Response {
    let mut response = next.run(request).await;
    mark_chain(&mut response, "outer");
    response
}

/// Global; panics on a request that carries `x-panic-middleware`.
#[plexichat::middleware(scope = global, priority = 5)]
async fn chain_inner(
    request: plexichat::middleware::Request,
    next: plexichat::middleware::Next,
) -> plexichat::response::Response {
    if request.headers().contains_key("x-panic-middleware") {
        panic!("middleware panicked on purpose");
    }
    let mut response = next.run(request).await;
    mark_chain(&mut response, "inner");
    response
}

/// The harness's own routes only; refuses `/test/items/0` before the handler runs, using its
/// context to say which plugin refused.
#[plexichat::middleware]
async fn harness_only(
    context: PluginContext<Harness>,
    request: plexichat::middleware::Request,
    next: plexichat::middleware::Next,
) -> Result<plexichat::response::Response, ApiError> {
    if request.uri().path() == "/test/items/0" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("`{}` refuses item 0", context.name()),
        ));
    }
    let mut response = next.run(request).await;
    mark_chain(&mut response, "harness");
    Ok(response)
}

/// The harness's routes only, as a tower layer, innermost of its middleware: one counter for
/// every route it wraps (`x-layer-seen`), a mark in the chain, and a panic on `x-panic-layer`.
#[plexichat::middleware(layer, priority = -5)]
fn harness_layer(context: PluginContext<Harness>) -> SeenLayer {
    SeenLayer {
        plugin: context.name(),
        seen: std::sync::Arc::default(),
    }
}

/// Global, as a layer: marks every answer with `x-global-layer` (not in `x-chain`, so the
/// order tests stay about the functions).
#[plexichat::middleware(layer, scope = global, priority = 1)]
fn everywhere_layer() -> plexichat::middleware::MapResponseLayer<
    fn(plexichat::response::Response) -> std::future::Ready<plexichat::response::Response>,
    (),
    (),
> {
    fn mark(
        mut response: plexichat::response::Response,
    ) -> std::future::Ready<plexichat::response::Response> {
        response.headers_mut().insert(
            "x-global-layer",
            plexichat::http::HeaderValue::from_static("1"),
        );
        std::future::ready(response)
    }
    plexichat::middleware::map_response(mark as fn(_) -> _)
}

/// A hand-written tower layer, as a plugin without a tower dependency writes one.
#[derive(Clone)]
struct SeenLayer {
    plugin: &'static str,
    seen: std::sync::Arc<AtomicU64>,
}

impl<S> plexichat::middleware::Layer<S> for SeenLayer {
    type Service = Seen<S>;

    fn layer(&self, inner: S) -> Seen<S> {
        Seen {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
struct Seen<S> {
    inner: S,
    layer: SeenLayer,
}

impl<S> plexichat::middleware::Service<plexichat::middleware::Request> for Seen<S>
where
    S: plexichat::middleware::Service<
            plexichat::middleware::Request,
            Response = plexichat::response::Response,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = plexichat::response::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: plexichat::middleware::Request) -> Self::Future {
        if request.headers().contains_key("x-panic-layer") {
            panic!("layer of {} panicked on purpose", self.layer.plugin);
        }
        let seen = self.layer.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            response
                .headers_mut()
                .insert("x-layer-seen", seen.to_string().parse().expect("digits"));
            mark_chain(&mut response, "layer");
            Ok(response)
        })
    }
}

#[route(GET, "/items/{id}")]
async fn item(Path(id): Path<u32>) -> Json<Value> {
    Json(json!({ "id": id }))
}

/// A key of the harness's key-value store: what a route that reads storage answers, in a
/// database outage too.
#[route(GET, "/kv/{key}")]
async fn kv_entry(
    context: PluginContext<Harness>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let value = context.kv().get(&key).await?;
    Ok(Json(
        json!({ "key": key, "value": value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()) }),
    ))
}

/// Writes the body to a file of the harness's data folder; a path that leaves it is 400.
#[route(PUT, "/files/{*path}")]
async fn put_file(
    context: PluginContext<Harness>,
    Path(path): Path<String>,
    body: plexichat::extract::Bytes,
) -> Result<Json<Value>, ApiError> {
    let files = context.files();
    files
        .write(&path, body.to_vec())
        .await
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Ok(Json(
        json!({ "written": files.list("").await.map_err(ApiError::internal)? }),
    ))
}

/// Reads a file of the harness's data folder.
#[route(GET, "/files/{*path}")]
async fn get_file(
    context: PluginContext<Harness>,
    Path(path): Path<String>,
) -> Result<String, ApiError> {
    let bytes = context
        .files()
        .read(&path)
        .await
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What `/test/fetch` is asked to get.
#[payload]
pub struct Fetch {
    /// The URL.
    pub url: String,
    /// A request timeout of its own, in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// Fetches a URL through the harness's outbound client and reports what came back; a
/// failure (refused, timed out) is a 502 naming it.
#[route(POST, "/fetch")]
async fn fetch(
    context: PluginContext<Harness>,
    Json(fetch): Json<Fetch>,
) -> Result<Json<Value>, ApiError> {
    let mut request = context.http().get(&fetch.url);
    if let Some(ms) = fetch.timeout_ms {
        request = request.timeout(std::time::Duration::from_millis(ms));
    }
    let response = request.send().await.map_err(|error| {
        let kind = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "could not connect"
        } else {
            "failed"
        };
        ApiError::new(
            plexichat::http::StatusCode::BAD_GATEWAY,
            format!("{kind}: {error}"),
        )
    })?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(ApiError::internal)?;
    Ok(Json(json!({ "status": status, "body": body })))
}

#[route(GET, "/panic")]
async fn panics() -> Json<Value> {
    panic!("route panicked on purpose");
}

/// An event stream that never ends by itself: one event, then silence.
#[route(GET, "/events")]
async fn events() -> plexichat::response::sse::Sse<
    impl futures_util::Stream<Item = Result<plexichat::response::sse::Event, std::convert::Infallible>>,
> {
    let hello = futures_util::stream::once(async {
        Ok(plexichat::response::sse::Event::default().data("hello"))
    });
    plexichat::response::sse::Sse::new(futures_util::StreamExt::chain(
        hello,
        futures_util::stream::pending(),
    ))
}

#[route(GET, "/slow")]
async fn slow() -> Json<Value> {
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    Json(json!({ "finished": true }))
}

/// `PluginState<awesome_audit::AwesomeAudit>` under another name. Written out, it would not
/// compile: `test_harness` does not depend on `awesome_audit`. An alias hides the use from
/// the macro (the plugin guide says so), which is what lets this test show the run-time
/// backstop: the extractor knows the route's plugin and refuses.
type UndeclaredAudit = PluginState<awesome_audit::AwesomeAudit>;

/// Another plugin's context, asked for by hand from the router state and from the request's
/// own head: neither gives it (the extractor knows whose route this is).
#[route(POST, "/forged-context")]
async fn forged_context(
    State(host): State<plexichat_kernel::runtime::Host>,
    request: plexichat::extract::Request,
) -> Json<Value> {
    use plexichat::axum::extract::FromRequestParts;
    type Theirs = PluginContext<AwesomePlugin>;
    let (mut empty, ()) = plexichat::axum::http::Request::new(()).into_parts();
    let from_nothing = Theirs::from_request_parts(&mut empty, &host).await.is_ok();
    let (mut parts, _body) = request.into_parts();
    let from_the_request = Theirs::from_request_parts(&mut parts, &host).await.is_ok();
    type Ours = PluginContext<Harness>;
    let own = Ours::from_request_parts(&mut parts, &host).await.is_ok();
    Json(json!({ "from_nothing": from_nothing, "from_the_request": from_the_request, "own": own }))
}

/// Uses the state of a plugin that `test_harness` does not depend on, so that the extractor,
/// not the route's own gate, is what answers when that plugin is not running.
#[route(GET, "/audit-plugin")]
async fn audit_plugin(_audit: UndeclaredAudit) -> Json<Value> {
    Json(json!({ "audit": "running" }))
}

/// An event whose handler takes longer than a short request timeout.
#[event(name = "test.slow")]
#[derive(Clone)]
pub struct Slow;

#[on_event]
async fn slow_first(harness: &Harness, _event: &Slow) {
    harness.record("slow first");
}

#[on_event(priority = -1)]
async fn slow_second(harness: &Harness, _event: &Slow) {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    harness.record("slow second");
}

/// Publishes [`Slow`]; with a request timeout under 300 ms the client gets 408 while the
/// dispatch goes on.
#[route(POST, "/publish-slow")]
async fn publish_slow(context: PluginContext<Harness>) -> Json<Value> {
    let report = context.publish(&Slow).await;
    Json(json!({ "succeeded": report.succeeded }))
}

/// A body type as plugins write them: derived through the facade, schema included.
#[payload]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// What is ordered.
    pub items: Vec<OrderItem>,
}

/// One line of an [`Order`].
#[payload]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    /// Product name.
    pub name: String,
    /// How many, at most 255.
    pub count: u8,
}

/// What `/orders` answers.
#[payload(response)]
pub struct OrderSummary {
    /// Total number of items.
    pub total: u32,
    /// Always `"accepted"`.
    pub status: &'static str,
}

#[route(POST, "/orders")]
async fn order(Json(order): Json<Order>) -> Json<OrderSummary> {
    let total = order.items.iter().map(|item| u32::from(item.count)).sum();
    Json(OrderSummary {
        total,
        status: "accepted",
    })
}

/// Echoes text messages until the client closes.
#[route(GET, "/ws/echo")]
async fn websocket_echo(
    upgrade: plexichat::extract::ws::WebSocketUpgrade,
) -> plexichat::response::Response {
    use plexichat::extract::ws::Message;
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message
                && socket.send(Message::Text(text)).await.is_err()
            {
                break;
            }
        }
    })
}

#[route(POST, "/echo")]
async fn echo(body: plexichat::axum::body::Bytes) -> Json<Value> {
    Json(json!({ "length": body.len() }))
}

/// Refuses one configuration, to prove that a veto keeps the old one everywhere.
#[on_event]
fn veto_unlucky_interval(_harness: &Harness, change: &ConfigChanging) -> Result<(), String> {
    match change.config_of::<AwesomePlugin>() {
        Some(config) if config.interval == 13 => Err("interval 13 is unlucky".to_string()),
        _ => Ok(()),
    }
}

#[on_event]
fn config_changed(harness: &Harness, change: &ConfigChanged) {
    harness.record(format!("config changed {}", change.plugins.join(",")));
}
