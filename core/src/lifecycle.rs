//! Plugin lifecycle hooks (`init`, `ready`, `stop`) and supervised background tasks.
//!
//! Phases, in order: configuration validated → `init` of each plugin in dependency order
//! (each within a timeout; a failure marks the plugin `failed` and stops its dependents) →
//! `startup` event → serving, with `ready` answering `/ready` → `shutdown` event → `stop` of
//! each plugin in reverse dependency order → background tasks cancelled and awaited.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::plugin::{Configurable, Plugin};
use crate::runtime::{Runtime, panic_message};

/// Any error a hook or task returns; `?` converts every `std::error::Error`, and
/// `"message".into()` makes one from text.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Lifecycle hooks of a plugin declared with `#[plugin(lifecycle = true)]`. Every method has
/// a default that does nothing, so a plugin implements only what it needs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is declared with `lifecycle = true` but does not implement `plexichat::Lifecycle`",
    label = "add `impl plexichat::Lifecycle for {Self} {{}}` and override the hooks you need"
)]
pub trait Lifecycle: Plugin + Sized {
    /// Called once at start, after every dependency's `init` succeeded. An error, a panic or
    /// a timeout marks the plugin failed: its routes answer 503 and its dependents are
    /// disabled, while the rest of the server starts. Spawn background tasks here.
    fn init(&self, context: &PluginContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = context;
        async { Ok(()) }
    }

    /// Readiness: `Err(reason)` makes `GET /ready` answer 503 naming this plugin.
    fn ready(&self, context: &PluginContext) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = context;
        async { Ok(()) }
    }

    /// Called once at shutdown, dependents first, before background tasks are cancelled.
    fn stop(&self, context: &PluginContext) -> impl Future<Output = ()> + Send {
        let _ = context;
        async {}
    }
}

pub(crate) type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The type-erased hooks of one plugin, written by `#[plugin(lifecycle = true)]`.
pub struct LifecycleHooks {
    pub(crate) init: for<'a> fn(
        &'a (dyn Any + Send + Sync),
        &'a PluginContext,
    ) -> HookFuture<'a, Result<(), String>>,
    pub(crate) ready: for<'a> fn(
        &'a (dyn Any + Send + Sync),
        &'a PluginContext,
    ) -> HookFuture<'a, Result<(), String>>,
    pub(crate) stop:
        for<'a> fn(&'a (dyn Any + Send + Sync), &'a PluginContext) -> HookFuture<'a, ()>,
}

impl std::fmt::Debug for LifecycleHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LifecycleHooks")
    }
}

/// Gives every `Lifecycle` type its hook table as a constant, so the macro can put a
/// `&'static` reference to it into the plugin's descriptor.
#[doc(hidden)]
pub trait HooksOf {
    const HOOKS: LifecycleHooks;
}

impl<P: Lifecycle> HooksOf for P {
    const HOOKS: LifecycleHooks = LifecycleHooks {
        init: |instance, context| {
            Box::pin(async move {
                let plugin = downcast::<P>(instance)?;
                plugin
                    .init(context)
                    .await
                    .map_err(|error| error.to_string())
            })
        },
        ready: |instance, context| {
            Box::pin(async move {
                let plugin = downcast::<P>(instance)?;
                plugin
                    .ready(context)
                    .await
                    .map_err(|error| error.to_string())
            })
        },
        stop: |instance, context| {
            Box::pin(async move {
                if let Ok(plugin) = downcast::<P>(instance) {
                    plugin.stop(context).await;
                }
            })
        },
    };
}

fn downcast<P: Plugin>(instance: &(dyn Any + Send + Sync)) -> Result<&P, String> {
    instance
        .downcast_ref::<P>()
        .ok_or_else(|| format!("plugin `{}` has an instance of another type", P::NAME))
}

/// What a plugin's hooks receive: its name, the runtime, its configuration, and a way to
/// spawn supervised background tasks.
#[derive(Clone, Debug)]
pub struct PluginContext {
    plugin: &'static str,
    runtime: Runtime,
}

impl PluginContext {
    pub(crate) fn new(plugin: &'static str, runtime: Runtime) -> PluginContext {
        PluginContext { plugin, runtime }
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// The runtime: other plugins' state, publishing events.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The current configuration of plugin `P`.
    pub fn config<P: Configurable>(&self) -> Option<Arc<P::Config>> {
        self.runtime.config::<P>()
    }

    /// Runs `task` in the background under a supervisor: if it returns an error or panics,
    /// the error is logged and counted and the task is started again after an exponential
    /// backoff (100 ms doubling up to 30 s). A task that returns `Ok` has finished. At
    /// shutdown every task's [`TaskContext::cancelled`] resolves and the server waits for
    /// tasks to end, up to its shutdown timeout.
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F)
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.runtime
            .tasks()
            .spawn(self.plugin, name, self.runtime.clone(), task);
    }
}

/// What a background task receives on each (re)start.
#[derive(Clone, Debug)]
pub struct TaskContext {
    token: CancellationToken,
    runtime: Runtime,
}

impl TaskContext {
    /// Resolves when the server shuts down; `select!` on it around long waits.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Waits for `duration`; returns `false` instead if the server shuts down first, so a
    /// periodic task is `while task.sleep(interval).await { ... }`.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            () = self.token.cancelled() => false,
            () = tokio::time::sleep(duration) => true,
        }
    }

    /// Whether the server is shutting down.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

/// A background task's state, as the plugin's health shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskStatus {
    /// Owning plugin.
    pub plugin: &'static str,
    /// Task name.
    pub name: &'static str,
    /// `running`, `restarting` (waiting out its backoff), `finished` or `stopped`.
    pub state: &'static str,
    /// Times the supervisor restarted it.
    pub restarts: u64,
    /// The last error or panic.
    pub last_error: Option<String>,
}

/// Every background task of a runtime, their cancellation and their tracker.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    token: CancellationToken,
    tracker: TaskTracker,
    list: Mutex<Vec<Arc<Mutex<TaskStatus>>>>,
}

/// First restart delay; doubles per consecutive failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest restart delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Tasks {
    fn spawn<F, Fut>(&self, plugin: &'static str, name: &'static str, runtime: Runtime, task: F)
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let status = Arc::new(Mutex::new(TaskStatus {
            plugin,
            name,
            state: "running",
            restarts: 0,
            last_error: None,
        }));
        lock(&self.list).push(Arc::clone(&status));
        let token = self.token.clone();
        self.tracker.spawn(async move {
            let mut consecutive_failures = 0u32;
            loop {
                lock(&status).state = "running";
                let context = TaskContext {
                    token: token.clone(),
                    runtime: runtime.clone(),
                };
                let started = Instant::now();
                let outcome = tokio::select! {
                    biased;
                    () = token.cancelled() => break,
                    outcome = AssertUnwindSafe(task(context)).catch_unwind() => outcome,
                };
                let error = match outcome {
                    // Ending because the server shuts down is being stopped, not finishing.
                    Ok(Ok(())) if token.is_cancelled() => break,
                    Ok(Ok(())) => {
                        lock(&status).state = "finished";
                        return;
                    }
                    Ok(Err(error)) => error.to_string(),
                    Err(panic) => panic_message(panic.as_ref()),
                };
                if token.is_cancelled() {
                    break;
                }
                // A task that ran well for a while before failing starts its backoff over.
                if started.elapsed() > MAX_BACKOFF {
                    consecutive_failures = 0;
                }
                consecutive_failures += 1;
                let delay = FIRST_BACKOFF
                    .saturating_mul(1 << consecutive_failures.min(16).saturating_sub(1))
                    .min(MAX_BACKOFF);
                tracing::error!(plugin, task = name, %error, ?delay, "background task failed; restarting");
                {
                    let mut status = lock(&status);
                    status.state = "restarting";
                    status.restarts += 1;
                    status.last_error = Some(error);
                }
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            lock(&status).state = "stopped";
        });
    }

    pub(crate) fn of(&self, plugin: &str) -> Vec<TaskStatus> {
        lock(&self.list)
            .iter()
            .map(|status| lock(status).clone())
            .filter(|status| status.plugin == plugin)
            .collect()
    }

    /// Cancels every task and waits for them, up to `timeout`; returns the ones still running.
    pub(crate) async fn shut_down(&self, timeout: Duration) -> Vec<TaskStatus> {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok()
        {
            return Vec::new();
        }
        lock(&self.list)
            .iter()
            .map(|status| lock(status).clone())
            .filter(|status| status.state != "stopped" && status.state != "finished")
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
