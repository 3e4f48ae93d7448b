//! The typed event bus: handlers grouped per event type in dispatch order, delivered to
//! running plugins, failures contained and reported, and an optional deadline for the
//! lifecycle events so that a handler that never returns cannot hold start-up or shutdown;
//! and proposals of vetoable events, which pre-handlers may modify or reject first.

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use serde::Serialize;
use tokio::time::Instant;

use super::{Entry, Runtime, panic_message};
use crate::abi::event::{Event, EventHandlerDescriptor, HandlerFn, Vetoable};
use crate::config::PreHandlerFailure;
use crate::registry::Registry;
use crate::runtime::Host;
use crate::runtime::state::Slot;

/// One handler, with the state of its plugin and its counters.
pub(crate) struct Subscriber {
    plugin: &'static str,
    /// A handler of a plugin that is not running is skipped.
    slot: Arc<Slot>,
    descriptor: &'static EventHandlerDescriptor,
    /// Times it was called; for a post-handler, those outside its run's completed passes
    /// (see [`RunCount`]).
    calls: AtomicU64,
    failures: AtomicU64,
    /// Proposals this pre-handler rejected.
    rejections: AtomicU64,
    /// Times this pre-handler ran past `[events] pre_handler_timeout`.
    timeouts: AtomicU64,
}

/// Consecutive post-handlers of one plugin: entered once per publish (one in-flight count,
/// one call count), which spares each handler its own atomic updates.
pub(crate) struct Run {
    plugin: &'static str,
    slot: Arc<Slot>,
    /// Publishes that called every handler of this run.
    completed: AtomicU64,
    handlers: Box<[Subscriber]>,
}

/// Counts the calls of one pass through a [`Run`] when the pass ends, however it ends (the
/// publish's future may be dropped mid-run): once for the whole run when every handler was
/// called, else once for each handler that was. A handler is counted only after it was
/// called, and counts only go up.
struct RunCount<'a> {
    run: &'a Run,
    /// Handlers called so far, all of them from the first (while nothing was passed over).
    called: usize,
    /// A handler was passed over: each call since is counted on its own handler.
    gaps: bool,
}

impl RunCount<'_> {
    fn called(&mut self, index: usize) {
        if self.gaps {
            self.run.handlers[index]
                .calls
                .fetch_add(1, Ordering::Relaxed);
        } else {
            self.called = index + 1;
        }
    }

    fn passed_over(&mut self) {
        if !self.gaps {
            self.gaps = true;
            for handler in &self.run.handlers[..self.called] {
                handler.calls.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for RunCount<'_> {
    fn drop(&mut self) {
        if self.gaps {
            return;
        }
        if self.called == self.run.handlers.len() {
            self.run.completed.fetch_add(1, Ordering::Relaxed);
        } else {
            for handler in &self.run.handlers[..self.called] {
                handler.calls.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// An event type's handlers in dispatch order: what `publish` calls, in runs, and what
/// `propose` asks first.
pub(crate) struct Handlers {
    post: Box<[Run]>,
    pre: Box<[Subscriber]>,
}

/// Groups the registry's handlers (already in dispatch order) by event type.
pub(super) fn subscribers(
    registry: &Registry,
    entries: &HashMap<&'static str, Arc<Entry>>,
) -> super::type_map::TypeMap<Handlers> {
    // Per event type: the post-handlers' runs (a plugin and its consecutive handlers) and the
    // pre-handlers.
    type Building = (Vec<(&'static str, Vec<Subscriber>)>, Vec<Subscriber>);
    let mut grouped: HashMap<TypeId, Building> = HashMap::new();
    for handler in registry.handlers() {
        let (post, pre) = grouped
            .entry((handler.descriptor.event_type)())
            .or_default();
        let subscriber = Subscriber {
            plugin: handler.plugin,
            slot: Arc::clone(&entries[handler.plugin].slot),
            descriptor: handler.descriptor,
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
        };
        if handler.descriptor.call.is_pre() {
            pre.push(subscriber);
        } else if let Some((_, run)) = post
            .last_mut()
            .filter(|(plugin, _)| *plugin == handler.plugin)
        {
            run.push(subscriber);
        } else {
            post.push((handler.plugin, vec![subscriber]));
        }
    }
    grouped
        .into_iter()
        .map(|(event, (post, pre))| {
            let post = post
                .into_iter()
                .map(|(plugin, handlers)| Run {
                    plugin,
                    slot: Arc::clone(&entries[plugin].slot),
                    completed: AtomicU64::new(0),
                    handlers: handlers.into_boxed_slice(),
                })
                .collect();
            let handlers = Handlers {
                post,
                pre: pre.into_boxed_slice(),
            };
            (event, handlers)
        })
        .collect()
}

/// Which plugins' handlers an event reaches.
pub enum Delivery<'a> {
    /// Plugins that are running: every event but the first and last of a server's life.
    Running,
    /// Exactly these plugins: `starting` reaches the plugins about to start, `stopped` the
    /// ones that were just stopped.
    Only(&'a BTreeSet<&'static str>),
}

/// The outcome of one publish.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// Handlers that ran to completion without error.
    pub succeeded: usize,
    /// Handlers that returned an error, panicked, or ran out of time; the others still ran.
    pub failures: Vec<HandlerFailure>,
}

/// One handler that failed during a publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerFailure {
    /// The handler's plugin.
    pub plugin: &'static str,
    /// The handler function.
    pub handler: &'static str,
    /// The error it returned, its panic message, or why it was cut short.
    pub error: String,
}

/// Call counters of one event handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerStats {
    /// Event name.
    pub event: &'static str,
    /// Handler function.
    pub handler: &'static str,
    /// Whether it is a pre-handler of a vetoable event.
    pub pre: bool,
    /// Times it was called.
    pub calls: u64,
    /// Times it failed: returned an error or panicked (a post-handler), or panicked (a
    /// pre-handler, whose error is a rejection).
    pub failures: u64,
    /// Proposals it rejected (pre-handlers only).
    pub rejections: u64,
    /// Times it ran past `[events] pre_handler_timeout` (pre-handlers only).
    pub timeouts: u64,
}

/// Why a proposed event did not happen: the first pre-handler that rejected it, or could
/// not decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The event's name.
    pub event: &'static str,
    /// The plugin whose pre-handler rejected it.
    pub plugin: &'static str,
    /// The pre-handler.
    pub handler: &'static str,
    /// What the handler said, or why it could not decide.
    pub reason: String,
    /// Whether the handler decided, or panicked or ran out of time.
    pub cause: RejectionCause,
}

/// What made a pre-handler reject a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCause {
    /// It returned an error: a decision.
    Rejected,
    /// It panicked, and `[events] pre_handler_failure` is `reject`.
    Panicked,
    /// It did not decide within `[events] pre_handler_timeout`, and
    /// `[events] pre_handler_failure` is `reject`.
    TimedOut,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin `{}` rejected `{}`: {}",
            self.plugin, self.event, self.reason
        )
    }
}

impl std::error::Error for Rejection {}

/// What one pre-handler made of a proposal.
enum Verdict {
    Accepted,
    Rejected(String),
    Panicked(String),
    TimedOut,
}

impl Runtime {
    /// Delivers `event` to every handler of its type whose plugin is running, highest
    /// priority first.
    ///
    /// A handler that returns an error or panics is logged with its plugin's name, counted,
    /// and reported; the handlers after it still run. Sync handlers run inline; async
    /// handlers are awaited one after another, so priority order is also completion order.
    /// Dropping the returned future stops the dispatch where it is: route handlers publish
    /// through [`crate::PluginContext::publish`], which runs the dispatch on its own task instead.
    pub async fn publish<E: Event>(&self, event: &E) -> DispatchReport {
        self.dispatch(event, Delivery::Running, None).await
    }

    /// Like [`Runtime::publish`], but every async handler must finish by `deadline`: one
    /// that has not is dropped, logged by name and reported, and handlers not yet started
    /// when the deadline passes are skipped and reported. Sync handlers run inline and
    /// cannot be interrupted.
    pub async fn dispatch<E: Event>(
        &self,
        event: &E,
        delivery: Delivery<'_>,
        deadline: Option<Instant>,
    ) -> DispatchReport {
        let mut report = DispatchReport::default();
        let Some(handlers) = self.inner.handlers.get(&TypeId::of::<E>()) else {
            return report;
        };
        let erased: &(dyn Any + Send + Sync) = event;
        for run in &handlers.post {
            // A handler of a running plugin is counted in flight, so its `stop` waits for it.
            let _busy = match delivery {
                Delivery::Running => match run.slot.enter_here() {
                    Some(busy) => Some(busy),
                    None => continue,
                },
                Delivery::Only(plugins) if plugins.contains(run.plugin) => None,
                Delivery::Only(_) => continue,
            };
            let mut count = RunCount {
                run,
                called: 0,
                gaps: false,
            };
            for (index, subscriber) in run.handlers.iter().enumerate() {
                // Each handler still runs only while its plugin does: one stopping mid-run
                // has the rest of its handlers passed over.
                if index > 0 && matches!(delivery, Delivery::Running) && !run.slot.is_running() {
                    break;
                }
                let outcome = if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    count.passed_over();
                    Err(
                        "skipped: the phase's time was up before this handler could run"
                            .to_string(),
                    )
                } else {
                    let outcome = match subscriber.descriptor.call {
                        // Inline, without the async call's state machine: most handlers are
                        // sync.
                        HandlerFn::Sync(call) => self.call_sync(call, erased),
                        _ => self.call(subscriber, erased, deadline).await,
                    };
                    count.called(index);
                    outcome
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
        }
        report
    }

    /// Calls a sync handler, its panic an error.
    fn call_sync(
        &self,
        call: fn(&Host, &(dyn Any + Send + Sync)) -> Result<(), String>,
        event: &(dyn Any + Send + Sync),
    ) -> Result<(), String> {
        std::panic::catch_unwind(AssertUnwindSafe(|| call(Host::of(self), event)))
            .unwrap_or_else(|panic| Err(panic_message(panic.as_ref())))
    }

    async fn call(
        &self,
        subscriber: &Subscriber,
        event: &(dyn Any + Send + Sync),
        deadline: Option<Instant>,
    ) -> Result<(), String> {
        match subscriber.descriptor.call {
            // Pre-handlers are grouped with the others but only `decide` calls them.
            HandlerFn::PreSync(_) | HandlerFn::PreAsync(_) => Ok(()),
            HandlerFn::Sync(call) => self.call_sync(call, event),
            HandlerFn::Async(call) => {
                let guarded = AssertUnwindSafe(call(Host::of(self), event)).catch_unwind();
                let outcome = match deadline {
                    None => guarded.await,
                    Some(deadline) => match tokio::time::timeout_at(deadline, guarded).await {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            return Err("did not finish within the phase timeout and was dropped"
                                .to_string());
                        }
                    },
                };
                outcome.unwrap_or_else(|panic| Err(panic_message(panic.as_ref())))
            }
        }
    }

    /// Counters of every handler of `plugin`, sorted by event and handler.
    pub fn handler_stats(&self, plugin: &str) -> Vec<HandlerStats> {
        let stats = |subscriber: &Subscriber, calls: u64| HandlerStats {
            event: subscriber.descriptor.event,
            handler: subscriber.descriptor.handler,
            pre: subscriber.descriptor.call.is_pre(),
            calls,
            failures: subscriber.failures.load(Ordering::Relaxed),
            rejections: subscriber.rejections.load(Ordering::Relaxed),
            timeouts: subscriber.timeouts.load(Ordering::Relaxed),
        };
        let mut all: Vec<HandlerStats> = Vec::new();
        for handlers in self.inner.handlers.values() {
            for run in handlers.post.iter().filter(|run| run.plugin == plugin) {
                let completed = run.completed.load(Ordering::Relaxed);
                all.extend(run.handlers.iter().map(|subscriber| {
                    stats(
                        subscriber,
                        completed + subscriber.calls.load(Ordering::Relaxed),
                    )
                }));
            }
            all.extend(
                handlers
                    .pre
                    .iter()
                    .filter(|subscriber| subscriber.plugin == plugin)
                    .map(|subscriber| stats(subscriber, subscriber.calls.load(Ordering::Relaxed))),
            );
        }
        all.sort_by_key(|stat| (stat.event, stat.handler));
        all
    }

    /// Proposes a vetoable event: its pre-handlers run in priority order, each may modify
    /// `event` or reject it, and the first rejection wins and is returned, naming its plugin
    /// (the pre-handlers after it do not run). Accepted, the final event goes to its
    /// post-handlers (the `#[on_event]` handlers without `pre`), as [`Runtime::publish`]
    /// would deliver it, and their report is returned.
    ///
    /// Each pre-handler has `[events] pre_handler_timeout` to decide. One that runs past it,
    /// or panics, is logged with its plugin's name and counted; it then rejects the proposal
    /// or is skipped, as `[events] pre_handler_failure` says (`reject` by default: a policy
    /// that could not run is not taken as a yes). An async one that ran out of time is
    /// dropped; a sync one cannot be interrupted, and its late verdict stands.
    pub async fn propose<E: Vetoable>(&self, event: &mut E) -> Result<DispatchReport, Rejection> {
        self.decide(event).await?;
        Ok(self.publish(&*event).await)
    }

    /// The pre-handler half of [`Runtime::propose`].
    pub(crate) async fn decide<E: Vetoable>(&self, event: &mut E) -> Result<(), Rejection> {
        let Some(handlers) = self.inner.handlers.get(&TypeId::of::<E>()) else {
            return Ok(());
        };
        if handlers.pre.is_empty() {
            return Ok(());
        }
        let settings = self.current_config().events.clone();
        let limit = settings.pre_handler_timeout;
        let erased: &mut (dyn Any + Send + Sync) = event;
        for subscriber in &handlers.pre {
            // A pre-handler of a plugin that is not running has no say.
            let Some(_busy) = subscriber.slot.enter_here() else {
                continue;
            };
            subscriber.calls.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let verdict = self.call_pre(subscriber, &mut *erased, limit).await;
            let (plugin, handler) = (subscriber.plugin, subscriber.descriptor.handler);
            let elapsed = started.elapsed();
            if matches!(verdict, Verdict::TimedOut) || elapsed > limit {
                subscriber.timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    plugin,
                    handler,
                    event = E::NAME,
                    elapsed_ms = elapsed.as_millis() as u64,
                    limit_ms = limit.as_millis() as u64,
                    "pre-handler ran past its time limit"
                );
            }
            let (reason, cause) = match verdict {
                Verdict::Accepted => continue,
                Verdict::Rejected(reason) => (reason, RejectionCause::Rejected),
                Verdict::Panicked(message) => {
                    subscriber.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(plugin, handler, event = E::NAME, error = %message, "pre-handler panicked");
                    (message, RejectionCause::Panicked)
                }
                Verdict::TimedOut => (
                    format!(
                        "did not decide within {} (`[events] pre_handler_timeout`)",
                        humantime::format_duration(limit)
                    ),
                    RejectionCause::TimedOut,
                ),
            };
            if cause != RejectionCause::Rejected
                && settings.pre_handler_failure == PreHandlerFailure::Skip
            {
                continue;
            }
            subscriber.rejections.fetch_add(1, Ordering::Relaxed);
            tracing::info!(plugin, handler, event = E::NAME, %reason, "proposal rejected");
            return Err(Rejection {
                event: E::NAME,
                plugin,
                handler,
                reason,
                cause,
            });
        }
        Ok(())
    }

    /// Calls one pre-handler, containing its panic and bounding an async one by `limit`.
    async fn call_pre(
        &self,
        subscriber: &Subscriber,
        event: &mut (dyn Any + Send + Sync),
        limit: std::time::Duration,
    ) -> Verdict {
        let outcome = match subscriber.descriptor.call {
            HandlerFn::PreSync(call) => {
                std::panic::catch_unwind(AssertUnwindSafe(|| call(Host::of(self), event)))
            }
            HandlerFn::PreAsync(call) => {
                let guarded = AssertUnwindSafe(call(Host::of(self), event)).catch_unwind();
                match tokio::time::timeout(limit, guarded).await {
                    Ok(outcome) => outcome,
                    Err(_) => return Verdict::TimedOut,
                }
            }
            // `decide` only calls pre-handlers.
            HandlerFn::Sync(_) | HandlerFn::Async(_) => Ok(Ok(())),
        };
        match outcome {
            Ok(Ok(())) => Verdict::Accepted,
            Ok(Err(reason)) => Verdict::Rejected(reason),
            Err(panic) => Verdict::Panicked(panic_message(panic.as_ref())),
        }
    }
}
