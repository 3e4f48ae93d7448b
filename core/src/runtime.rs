//! The running program: one instance of every plugin and the typed event bus that dispatches
//! to their handlers.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use serde::Serialize;

use std::sync::RwLock;

use crate::config::Config;
use crate::event::{Event, EventHandlerDescriptor, HandlerFn};
use crate::plugin::{Configurable, Plugin};
use crate::registry::Registry;

/// A handle to the running plugins; cheap to clone, shared by the server and every handler.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    instances: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    /// Handlers per event type, already in dispatch order, so that publishing is one hash
    /// lookup and a walk over a slice.
    handlers: HashMap<TypeId, Box<[Subscriber]>>,
    /// Per-plugin route counters, shared with the panic handler of that plugin's routes.
    routes: HashMap<&'static str, Arc<RouteCounters>>,
    /// The configuration the runtime was started with.
    config: RwLock<Config>,
}

/// Counters of one plugin's routes.
#[derive(Debug, Default)]
pub struct RouteCounters {
    /// Requests whose handler panicked (answered 500).
    pub panics: AtomicU64,
}

/// A snapshot of [`RouteCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RouteStats {
    /// Requests whose handler panicked (answered 500).
    pub panics: u64,
}

struct Subscriber {
    plugin: &'static str,
    descriptor: &'static EventHandlerDescriptor,
    calls: AtomicU64,
    failures: AtomicU64,
}

/// The outcome of one publish.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// Handlers that ran to completion without error.
    pub succeeded: usize,
    /// Handlers that returned an error or panicked; the others still ran.
    pub failures: Vec<HandlerFailure>,
}

/// One handler that failed during a publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerFailure {
    /// The handler's plugin.
    pub plugin: &'static str,
    /// The handler function.
    pub handler: &'static str,
    /// The error it returned, or its panic message.
    pub error: String,
}

/// Call counters of one event handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerStats {
    /// Event name.
    pub event: &'static str,
    /// Handler function.
    pub handler: &'static str,
    /// Times it was called.
    pub calls: u64,
    /// Times it failed.
    pub failures: u64,
}

impl Runtime {
    /// Creates every plugin's state with the default configuration.
    pub fn new(registry: Registry) -> Runtime {
        let config = Config::defaults(&registry);
        Runtime::with_config(registry, config)
    }

    /// Creates every plugin's state, in start order, with a validated configuration.
    pub fn with_config(registry: Registry, config: Config) -> Runtime {
        let instances = registry
            .plugins()
            .iter()
            .map(|plugin| ((plugin.type_id)(), (plugin.construct)()))
            .collect();
        let mut handlers: HashMap<TypeId, Vec<Subscriber>> = HashMap::new();
        // The registry already sorted handlers into dispatch order; grouping keeps it.
        for handler in registry.handlers() {
            handlers
                .entry((handler.descriptor.event_type)())
                .or_default()
                .push(Subscriber {
                    plugin: handler.plugin,
                    descriptor: handler.descriptor,
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                });
        }
        let handlers = handlers
            .into_iter()
            .map(|(event, subscribers)| (event, subscribers.into_boxed_slice()))
            .collect();
        let routes = registry
            .plugins()
            .iter()
            .map(|plugin| (plugin.name, Arc::default()))
            .collect();
        Runtime {
            inner: Arc::new(Inner {
                registry,
                instances,
                handlers,
                routes,
                config: RwLock::new(config),
            }),
        }
    }

    /// The checked registry this runtime was built from.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The running instance of plugin `P`, if it is compiled in.
    pub fn plugin<P: Plugin>(&self) -> Option<Arc<P>> {
        self.inner
            .instances
            .get(&TypeId::of::<P>())
            .cloned()
            .and_then(|instance| instance.downcast::<P>().ok())
    }

    /// Borrows the running instance of plugin `P`; used by event handler shims.
    pub fn plugin_ref<P: Plugin>(&self) -> Option<&P> {
        self.inner
            .instances
            .get(&TypeId::of::<P>())
            .and_then(|instance| instance.downcast_ref::<P>())
    }

    /// Delivers `event` to every handler of its type, highest priority first.
    ///
    /// A handler that returns an error or panics is logged with its plugin's name, counted,
    /// and reported; the handlers after it still run. Sync handlers run inline; async
    /// handlers are awaited one after another, so priority order is also completion order.
    pub async fn publish<E: Event>(&self, event: &E) -> DispatchReport {
        let mut report = DispatchReport::default();
        let Some(subscribers) = self.inner.handlers.get(&TypeId::of::<E>()) else {
            return report;
        };
        let erased: &(dyn Any + Send + Sync) = event;
        for subscriber in subscribers.iter() {
            subscriber.calls.fetch_add(1, Ordering::Relaxed);
            let outcome = match subscriber.descriptor.call {
                HandlerFn::Sync(call) => {
                    std::panic::catch_unwind(AssertUnwindSafe(|| call(self, erased)))
                        .unwrap_or_else(|panic| Err(panic_message(panic.as_ref())))
                }
                HandlerFn::Async(call) => AssertUnwindSafe(call(self, erased))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(panic_message(panic.as_ref()))),
            };
            match outcome {
                Ok(()) => report.succeeded += 1,
                Err(error) => {
                    subscriber.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        plugin = subscriber.plugin,
                        handler = subscriber.descriptor.handler,
                        event = E::NAME,
                        %error,
                        "event handler failed"
                    );
                    report.failures.push(HandlerFailure {
                        plugin: subscriber.plugin,
                        handler: subscriber.descriptor.handler,
                        error,
                    });
                }
            }
        }
        report
    }

    /// The current typed configuration of plugin `P`.
    pub fn config<P: Configurable>(&self) -> Option<Arc<P::Config>> {
        self.inner
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .plugin_config(P::NAME)
            .and_then(|config| config.downcast::<P::Config>().ok())
    }

    /// A copy of the whole current configuration.
    pub fn current_config(&self) -> Config {
        self.inner
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The route counters of `plugin`, for the server to update.
    pub(crate) fn route_counters(&self, plugin: &str) -> Option<Arc<RouteCounters>> {
        self.inner.routes.get(plugin).cloned()
    }

    /// A snapshot of `plugin`'s route counters (zero for an unknown plugin).
    pub fn route_stats(&self, plugin: &str) -> RouteStats {
        RouteStats {
            panics: self
                .inner
                .routes
                .get(plugin)
                .map_or(0, |counters| counters.panics.load(Ordering::Relaxed)),
        }
    }

    /// Counters of every handler of `plugin`.
    pub fn handler_stats(&self, plugin: &str) -> Vec<HandlerStats> {
        let mut stats: Vec<HandlerStats> = self
            .inner
            .handlers
            .values()
            .flat_map(|subscribers| subscribers.iter())
            .filter(|subscriber| subscriber.plugin == plugin)
            .map(|subscriber| HandlerStats {
                event: subscriber.descriptor.event,
                handler: subscriber.descriptor.handler,
                calls: subscriber.calls.load(Ordering::Relaxed),
                failures: subscriber.failures.load(Ordering::Relaxed),
            })
            .collect();
        stats.sort_by_key(|stat| (stat.event, stat.handler));
        stats
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("plugins", &self.inner.registry.plugins().len())
            .finish_non_exhaustive()
    }
}

/// Turns a panic payload into text; panics carry a `&str` or a `String` unless someone
/// panicked with another type on purpose.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        format!("panicked: {message}")
    } else if let Some(message) = payload.downcast_ref::<String>() {
        format!("panicked: {message}")
    } else {
        "panicked with a non-string payload".to_string()
    }
}
