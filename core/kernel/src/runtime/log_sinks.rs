//! Log sinks at run time: [`LogSinkLayer`], a `tracing` layer the binary installs, turns each
//! event that some `#[log_sink]` wants into a [`LogRecord`] and puts it in that sink's bounded
//! queue (a full queue drops and counts, so a slow sink never slows the code that logged);
//! [`start`] gives each sink a task that hands it batches, in order.
//!
//! A record's plugin is the `plugin` field of the event or of its nearest span that has one
//! (`context.span()`), else the plugin whose crate the event's target is in; core's records
//! have none. A sink never receives its own plugin's records, nor this module's, so a sink
//! that logs cannot feed itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Instrument, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::abi::log_sink::{LogLevel, LogRecord, LogSinkDescriptor};
use crate::runtime::Runtime;
use crate::runtime::state::PluginStatus;
use crate::storage::database::now_millis;

/// How core's records are named in a sink's `plugins` list.
pub const CORE: &str = "plexichat";
/// The most records handed to a sink at once.
const BATCH: usize = 256;
/// How long one call of a sink may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One running sink's queue.
struct Queue {
    descriptor: &'static LogSinkDescriptor,
    plugin: &'static str,
    sender: mpsc::Sender<LogRecord>,
    dropped: Arc<AtomicU64>,
}

/// What the layer dispatches to while a server runs.
struct Installed {
    queues: Vec<Queue>,
    /// Plugins by crate name, to attribute an event by its target.
    by_crate: HashMap<&'static str, &'static str>,
    /// Plugin names, to turn a field's text into the registry's `&'static str`.
    names: HashMap<&'static str, &'static str>,
    /// The least severe level any sink takes.
    least: LogLevel,
}

static ACTIVE: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    /// The plugin whose sink is being called: whatever is logged during the call (by the
    /// sink, or by a library it calls) is that plugin's, so its own sink skips it even when
    /// `RUST_LOG` disables the span that would say so.
    static CALLING: &'static str;
}
static INSTALLED: RwLock<Option<Arc<Installed>>> = RwLock::new(None);

fn installed() -> Option<Arc<Installed>> {
    if !ACTIVE.load(Ordering::Acquire) {
        return None;
    }
    INSTALLED
        .read()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone()
}

/// The running sinks' tasks; [`LogSinks::stop`] flushes them.
pub struct LogSinks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts a task per `#[log_sink]` of `runtime`'s registry and routes records to them. One
/// set of sinks runs per process: starting another replaces it.
pub fn start(runtime: &Runtime) -> LogSinks {
    let registry = runtime.registry();
    let mut queues = Vec::new();
    let mut tasks = Vec::new();
    for sink in registry.log_sinks() {
        let (sender, receiver) = mpsc::channel(sink.descriptor.capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        tasks.push(tokio::spawn(run(
            runtime.clone(),
            sink.descriptor,
            sink.plugin,
            receiver,
            Arc::clone(&dropped),
        )));
        queues.push(Queue {
            descriptor: sink.descriptor,
            plugin: sink.plugin,
            sender,
            dropped,
        });
    }
    let plugins = registry.plugins();
    let installed = Installed {
        least: queues
            .iter()
            .map(|queue| queue.descriptor.level)
            .min()
            .unwrap_or(LogLevel::Error),
        by_crate: plugins
            .iter()
            .map(|plugin| (plugin.crate_name, plugin.name))
            .collect(),
        names: plugins
            .iter()
            .map(|plugin| (plugin.name, plugin.name))
            .collect(),
        queues,
    };
    let any = !installed.queues.is_empty();
    *INSTALLED
        .write()
        .unwrap_or_else(|poison| poison.into_inner()) = Some(Arc::new(installed));
    ACTIVE.store(any, Ordering::Release);
    LogSinks { tasks }
}

impl LogSinks {
    /// Stops routing records, lets each sink write what is queued, and waits for them, up to
    /// `deadline` in all.
    pub async fn stop(self, deadline: Duration) {
        ACTIVE.store(false, Ordering::Release);
        // Dropping the senders ends each task once its queue is empty.
        *INSTALLED
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = None;
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("log sinks did not finish writing within {deadline:?}");
        }
    }
}

/// Hands `receiver`'s records to the sink in batches while its plugin runs.
async fn run(
    runtime: Runtime,
    descriptor: &'static LogSinkDescriptor,
    plugin: &'static str,
    mut receiver: mpsc::Receiver<LogRecord>,
    dropped: Arc<AtomicU64>,
) {
    let host = crate::runtime::behind::host(runtime.clone());
    let span = tracing::info_span!("plugin", plugin);
    let mut reported = 0;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        // Records logged while the server starts wait for the sink's plugin (the queue bounds
        // them); a disabled or failed sink's are dropped, not kept for later.
        while matches!(
            runtime.status(plugin),
            Some(PluginStatus::Stopped | PluginStatus::Starting)
        ) && !receiver.is_closed()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if runtime.status(plugin) == Some(PluginStatus::Running) {
            let call = (descriptor.call)(&host, &batch).instrument(span.clone());
            match tokio::time::timeout(CALL_TIMEOUT, CALLING.scope(plugin, call)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(
                    plugin,
                    sink = descriptor.name,
                    %error,
                    "a log sink failed to write {} records",
                    batch.len()
                ),
                Err(_) => tracing::warn!(
                    plugin,
                    sink = descriptor.name,
                    "a log sink took longer than {CALL_TIMEOUT:?}; its records are lost"
                ),
            }
        }
        batch.clear();
        let now = dropped.load(Ordering::Relaxed);
        if now > reported {
            tracing::warn!(
                plugin,
                sink = descriptor.name,
                "a log sink fell behind: {} records dropped (raise its capacity, or make it faster)",
                now - reported
            );
            reported = now;
        }
    }
}

/// The `tracing` layer that feeds the sinks; the binary adds it to its subscriber. Costs an
/// atomic load per event while no sink runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogSinkLayer;

/// A span's `plugin` field, kept in its extensions.
struct SpanPlugin(String);

impl<S> tracing_subscriber::Layer<S> for LogSinkLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        context: Context<'_, S>,
    ) {
        if attributes.metadata().fields().field("plugin").is_none() {
            return;
        }
        let mut visitor = PluginField(None);
        attributes.record(&mut visitor);
        if let (Some(plugin), Some(span)) = (visitor.0, context.span(id)) {
            span.extensions_mut().insert(SpanPlugin(plugin));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, context: Context<'_, S>) {
        let Some(installed) = installed() else {
            return;
        };
        let metadata = event.metadata();
        let level = level_of(*metadata.level());
        if level < installed.least || metadata.target().starts_with(module_path!()) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let plugin = CALLING
            .try_with(|plugin| (*plugin).to_owned())
            .ok()
            .or_else(|| fields.plugin.take())
            .or_else(|| {
                context.event_scope(event).and_then(|scope| {
                    scope.from_root().fold(None, |found, span| {
                        span.extensions()
                            .get::<SpanPlugin>()
                            .map(|plugin| plugin.0.clone())
                            .or(found)
                    })
                })
            })
            .and_then(|name| installed.names.get(name.as_str()).copied())
            .or_else(|| {
                let krate = metadata.target().split("::").next().unwrap_or_default();
                installed.by_crate.get(krate).copied()
            });
        let mut record = None;
        for queue in &installed.queues {
            if Some(queue.plugin) == plugin || !queue.descriptor.wants(plugin, level) {
                continue;
            }
            let record = record
                .get_or_insert_with(|| LogRecord {
                    at: now_millis(),
                    level,
                    plugin,
                    target: metadata.target().to_owned(),
                    message: std::mem::take(&mut fields.message),
                    fields: std::mem::take(&mut fields.fields),
                })
                .clone();
            if queue.sender.try_send(record).is_err() {
                queue.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn level_of(level: tracing::Level) -> LogLevel {
    match level {
        tracing::Level::TRACE => LogLevel::Trace,
        tracing::Level::DEBUG => LogLevel::Debug,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::WARN => LogLevel::Warn,
        tracing::Level::ERROR => LogLevel::Error,
    }
}

/// Finds a `plugin` field.
struct PluginField(Option<String>);

impl Visit for PluginField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "plugin" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "plugin" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

/// An event's message, `plugin` and other fields.
#[derive(Default)]
struct Fields {
    message: String,
    plugin: Option<String>,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        match (field.name(), value) {
            ("message", serde_json::Value::String(text)) => self.message = text,
            ("plugin", serde_json::Value::String(text)) => self.plugin = Some(text),
            (name, value) => {
                self.fields.insert(name.to_owned(), value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}
