//! What a plugin's code receives: [`PluginContext<P>`] (in its hooks, its event handlers that
//! ask for it, and its routes as an extractor) with the services its permissions allow, and
//! [`TaskContext<P>`], what a background task receives on each (re)start.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::abi::event::{Event, Vetoable};
use crate::abi::expansion::DependsOn;
use crate::abi::hooks::BoxError;
use crate::abi::permission;
use crate::abi::plugin::{Configurable, Plugin};
use crate::config::database::Engine;
use crate::runtime::ai::{Ai, AiProvider};
use crate::runtime::analytics::{Analytics, AnalyticsFeed, AnalyticsProvider};
use crate::runtime::http_client::HttpClient;
use crate::runtime::outbox::Outbox;
use crate::runtime::{
    Delivery, DispatchReport, HandlerFailure, Plugins, Rejection, RejectionCause, Runtime,
};
use crate::storage::database::Database;
use crate::storage::files::DataFolder;
use crate::storage::kv::Kv;

/// Plugin `P`'s handle on the server: its name, configuration and state, a tracing span,
/// supervised background tasks, and the services its `permissions` grant: the key-value
/// store and data folder (`plugin:read`, `plugin:write`), the SQL pool (`database`),
/// publishing events (`events:publish`), outbound HTTP (`http:client`), the plugin test
/// runner (`tests:run`) and a read-only view of every plugin (`plugins:read`). Using a
/// service the plugin did not declare does not compile; the error names the permission to
/// add. It never hands out the runtime: no plugin can change another's state.
pub struct PluginContext<P> {
    runtime: Runtime,
    plugin: PhantomData<fn() -> P>,
}

impl<P> Clone for PluginContext<P> {
    fn clone(&self) -> Self {
        PluginContext {
            runtime: self.runtime.clone(),
            plugin: PhantomData,
        }
    }
}

impl<P: Plugin> std::fmt::Debug for PluginContext<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginContext")
            .field("plugin", &P::NAME)
            .finish()
    }
}

impl<P: Plugin> PluginContext<P> {
    /// Plugin `P`'s context on `runtime`: what the runtime hands its hooks, and the test
    /// support crate a test. A plugin has no `Runtime` to call it with.
    pub fn new(runtime: Runtime) -> PluginContext<P> {
        PluginContext {
            runtime,
            plugin: PhantomData,
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &'static str {
        P::NAME
    }

    /// The runtime, for core's own shims and services; never handed to a plugin, whose
    /// reach is what its permissions grant (see [`Host`](crate::runtime::Host)).
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The current configuration of plugin `Q`: `P` itself or one of its declared
    /// dependencies.
    pub fn config<Q: Configurable>(&self) -> Option<Arc<Q::Config>>
    where
        P: DependsOn<Q>,
    {
        self.runtime.config::<Q>()
    }

    /// The plugin's own instance (its state), whatever its status.
    pub fn instance(&self) -> Option<Arc<P>> {
        self.runtime.plugin::<P>()
    }

    /// The instance of `Q`, one of the plugin's declared dependencies (which start before it
    /// and stop after it), whatever its status; the way to call a dependency's Rust API from
    /// a hook, a task or a handler. Another plugin's instance does not compile.
    pub fn dependency<Q: Plugin>(&self) -> Option<Arc<Q>>
    where
        P: DependsOn<Q>,
    {
        self.runtime.plugin::<Q>()
    }

    /// Every compiled-in plugin, read-only: manifests, registrations, states. Needs the
    /// `plugins:read` permission.
    pub fn plugins(&self) -> Plugins
    where
        P: permission::ReadPlugins,
    {
        Plugins::new(self.runtime.clone())
    }

    /// How long the server lets one request run (`[server] request_timeout`): a route that
    /// waits for work should give up, and answer, before it.
    pub fn request_timeout(&self) -> Duration {
        self.runtime.current_config().server.request_timeout
    }

    /// Whether this process runs scheduled jobs: true in a server, false in a one-shot
    /// process that starts the plugins only to run something and stop (`plexichat tests
    /// run`, `plugins self-test`), whose jobs are the server's to run. A plugin with periodic
    /// work starts it in `init` only when this is true.
    pub fn runs_scheduled_jobs(&self) -> bool {
        self.runtime.runs_scheduled_jobs()
    }

    /// A span carrying the plugin's name: `async { .. }.instrument(context.span())`, or
    /// `let _entered = context.span().entered();` in synchronous code.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!("plugin", plugin = P::NAME)
    }

    /// The plugin's key-value store; reading needs `plugin:read`, writing `plugin:write`.
    pub fn kv(&self) -> Kv<P> {
        Kv::new(self.runtime.storage().database().clone())
    }

    /// The plugin's data folder, `<data>/plugins/<name>/`; reading needs `plugin:read`,
    /// writing `plugin:write`.
    pub fn files(&self) -> DataFolder<P> {
        DataFolder::new(self.runtime.storage().data_dir())
    }

    /// The SQL pool, for the plugin's own tables (named `<name>_…`, created by its
    /// migrations). Needs the `database` permission.
    pub fn db(&self) -> Db<P>
    where
        P: permission::Database,
    {
        Db {
            database: self.runtime.storage().database().clone(),
            plugin: PhantomData,
        }
    }

    /// The outbound HTTP client: `context.http().get(url).send().await?`. Bounded connect
    /// and request times and a user agent naming the plugin; see [`HttpClient`]. Needs the
    /// `http:client` permission.
    pub fn http(&self) -> HttpClient<P>
    where
        P: permission::HttpClient,
    {
        HttpClient::new()
    }

    /// The AI service: chat completions, streamed or whole, and the models, from the
    /// provider plugin the binary has (the `ai` plugin); [`AiError::Unavailable`] without
    /// one. Needs the `ai` permission. See [`Ai`].
    ///
    /// [`AiError::Unavailable`]: crate::runtime::ai::AiError::Unavailable
    pub fn ai(&self) -> Ai<P>
    where
        P: permission::UseAi,
    {
        Ai::new(self.runtime.clone())
    }

    /// Analytics: `record` counts without waiting, `query` reads the daily rollups of the
    /// provider plugin (the `analytics` plugin). Needs the `analytics` permission. See
    /// [`Analytics`].
    pub fn analytics(&self) -> Analytics<P>
    where
        P: permission::UseAnalytics,
    {
        Analytics::new(&self.runtime)
    }

    /// Makes this plugin the AI service's provider: every `context.ai()` call goes to
    /// `provider` while this plugin runs. An error if another plugin provides it. Needs
    /// `services:provide`.
    pub fn provide_ai(&self, provider: std::sync::Arc<dyn AiProvider>) -> Result<(), BoxError>
    where
        P: permission::ProvideServices,
    {
        Ok(crate::runtime::ai::install(
            &self.runtime,
            P::NAME,
            provider,
        )?)
    }

    /// Makes this plugin the analytics provider: queries go to `provider`, and records come
    /// through the returned feed, which holds at most `capacity` waiting records (past that,
    /// recording counts drops). An error if another plugin provides it. Needs
    /// `services:provide`.
    pub fn provide_analytics(
        &self,
        provider: std::sync::Arc<dyn AnalyticsProvider>,
        capacity: usize,
    ) -> Result<AnalyticsFeed, BoxError>
    where
        P: permission::ProvideServices,
    {
        Ok(crate::runtime::analytics::install(
            &self.runtime,
            P::NAME,
            provider,
            capacity,
        )?)
    }

    /// The outbox: events written in the transaction of the change that caused them, for
    /// webhooks. Writing an event needs it in the manifest's `webhooks = [..]`; taking events
    /// needs the `outbox:read` permission. See [`Outbox`].
    pub fn outbox(&self) -> Outbox<P> {
        Outbox::new(self.runtime.clone())
    }

    /// Delivers `event` to every handler of its type whose plugin is running, in priority
    /// order; see [`Runtime::publish`]. Needs the `events:publish` permission.
    ///
    /// The dispatch runs on a task of its own: if the caller is dropped (a request times
    /// out, its client goes away) while handlers run, every handler still runs, in order, to
    /// the end. The event is cloned for that task. Like a lifecycle event's, the dispatch is
    /// bounded by the phase timeout, so a handler that never returns cannot pile up tasks.
    pub async fn publish<E: Event + Clone>(&self, event: &E) -> DispatchReport
    where
        P: permission::PublishEvents,
    {
        let (runtime, event) = (self.runtime.clone(), event.clone());
        let dispatch = async move {
            let deadline = tokio::time::Instant::now() + runtime.phase_timeout();
            runtime
                .dispatch(&event, Delivery::Running, Some(deadline))
                .await
        };
        match tokio::spawn(dispatch).await {
            Ok(report) => report,
            // Handler panics are caught inside; this is the async runtime shutting down.
            Err(error) => DispatchReport {
                succeeded: 0,
                failures: vec![HandlerFailure {
                    plugin: "*",
                    handler: "*",
                    error: format!("the dispatch did not complete: {error}"),
                }],
            },
        }
    }

    /// Proposes a vetoable event: its pre-handlers may modify `event` or reject it, then,
    /// accepted, its post-handlers see the final event; see [`Runtime::propose`]. Needs the
    /// `events:publish` permission.
    ///
    /// Like [`PluginContext::publish`], it runs on a task of its own, so a caller that is
    /// dropped cannot leave the handlers half-run; `event` holds the final event when it
    /// returns. The post-handlers are bounded by the phase timeout.
    pub async fn propose<E: Vetoable + Clone>(
        &self,
        event: &mut E,
    ) -> Result<DispatchReport, Rejection>
    where
        P: permission::PublishEvents,
    {
        let (runtime, mut owned) = (self.runtime.clone(), event.clone());
        let proposal = async move {
            let decision = runtime.decide(&mut owned).await;
            let report = match decision {
                Ok(()) => {
                    let deadline = tokio::time::Instant::now() + runtime.phase_timeout();
                    Ok(runtime
                        .dispatch(&owned, Delivery::Running, Some(deadline))
                        .await)
                }
                Err(rejection) => Err(rejection),
            };
            (owned, report)
        };
        match tokio::spawn(proposal).await {
            Ok((decided, report)) => {
                *event = decided;
                report
            }
            // Handler panics are caught inside; this is the async runtime shutting down, and
            // an event whose decision never came did not happen.
            Err(error) => Err(Rejection {
                event: E::NAME,
                plugin: "*",
                handler: "*",
                reason: format!("the proposal did not complete: {error}"),
                cause: RejectionCause::Panicked,
            }),
        }
    }

    /// Runs `task` in the background under a supervisor: if it returns an error or panics,
    /// the error is logged and counted and the task is started again after an exponential
    /// backoff (100 ms doubling up to 30 s). A task that returns `Ok` has finished. When the
    /// plugin stops (disabled, or the server shuts down) every one of its tasks'
    /// [`TaskContext::cancelled`] resolves and the runtime waits for them to end, up to the
    /// phase timeout. A one-shot process (`plexichat tests run`, `plugins self-test`, any
    /// command that starts the plugins) starts no task: it would work on the data of the
    /// server the command may run beside.
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F)
    where
        F: Fn(TaskContext<P>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.runtime.tasks().spawn(
            P::NAME,
            name,
            self.runtime.clone(),
            move |token, runtime| {
                task(TaskContext {
                    token,
                    context: PluginContext::new(runtime),
                })
            },
        );
    }
}

/// Plugin `P`'s view of the SQL pool: `sqlx::query("…").fetch_all(db.pool())`. Its tables
/// are named with [`Db::table`]; SQL placeholders are `$1`, `$2`… on both engines.
pub struct Db<P> {
    database: Database,
    plugin: PhantomData<fn() -> P>,
}

impl<P: Plugin> Db<P> {
    /// The pool.
    pub fn pool(&self) -> &sqlx::AnyPool {
        self.database.pool()
    }

    /// Which engine serves it, for the rare statement whose dialects differ.
    pub fn engine(&self) -> Engine {
        self.database.engine()
    }

    /// A transaction to write in. On SQLite it first waits for this process's writer before
    /// it to finish, and holds that turn until it commits or is dropped: SQLite has one
    /// writer at a time, and a second one does not queue but sleeps in the busy handler (1,
    /// 2, 5 … 100 ms) and polls, which under 16 concurrent senders made the slowest percent
    /// of chat posts take 0.9 s. On PostgreSQL it is a plain transaction; row locks order the
    /// writers.
    pub async fn begin_write(&self) -> Result<WriteTransaction, sqlx::Error> {
        WriteTransaction::begin(&self.database).await
    }

    /// The prefix every table of the plugin carries: `<name>_`.
    pub fn prefix(&self) -> String {
        format!("{}_", P::NAME)
    }

    /// `<name>_<table>`: the full name of one of the plugin's tables.
    pub fn table(&self, table: &str) -> String {
        format!("{}_{table}", P::NAME)
    }
}

impl<P: Plugin> std::fmt::Debug for Db<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("plugin", &P::NAME)
            .field("engine", &self.database.engine())
            .finish()
    }
}

/// A transaction from [`Db::begin_write`]: used as the `sqlx` transaction it derefs to, and
/// ended with [`WriteTransaction::commit`] (dropped, it rolls back). Holds the process's
/// SQLite write turn until then.
pub struct WriteTransaction {
    // Declared first so that it ends before the turn is given back.
    transaction: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Set when an event was written to the outbox: the commit wakes its consumers.
    wrote_outbox: Option<Arc<tokio::sync::watch::Sender<u64>>>,
}

impl WriteTransaction {
    /// A transaction to write in on `database`, after waiting for its write turn; what
    /// [`Db::begin_write`] and core's own writers use.
    pub(crate) async fn begin(database: &Database) -> Result<WriteTransaction, sqlx::Error> {
        let turn = database.writer().await;
        let transaction = database.pool().begin().await?;
        Ok(WriteTransaction {
            transaction,
            _turn: turn,
            wrote_outbox: None,
        })
    }

    /// Commits, then gives the write turn back, then wakes the outbox's consumers if it
    /// wrote an event there.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let WriteTransaction {
            transaction,
            _turn,
            wrote_outbox,
        } = self;
        transaction.commit().await?;
        drop(_turn);
        if let Some(written) = wrote_outbox {
            written.send_modify(|count| *count = count.wrapping_add(1));
        }
        Ok(())
    }

    /// Marks the transaction as one that wrote to the outbox of `database`.
    pub(crate) fn wakes_outbox(&mut self, database: &Database) {
        self.wrote_outbox = Some(Arc::clone(database.outbox_written()));
    }
}

impl Deref for WriteTransaction {
    type Target = sqlx::Transaction<'static, sqlx::Any>;
    fn deref(&self) -> &Self::Target {
        &self.transaction
    }
}

impl std::ops::DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.transaction
    }
}

impl std::fmt::Debug for WriteTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTransaction")
            .field("turn", &self._turn.is_some())
            .finish_non_exhaustive()
    }
}

/// What a background task receives on each (re)start: its plugin's context (through
/// `Deref`: `task.kv()`, `task.config::<P>()`) and its cancellation.
pub struct TaskContext<P> {
    token: CancellationToken,
    context: PluginContext<P>,
}

impl<P> Clone for TaskContext<P> {
    fn clone(&self) -> Self {
        TaskContext {
            token: self.token.clone(),
            context: self.context.clone(),
        }
    }
}

impl<P: Plugin> std::fmt::Debug for TaskContext<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("plugin", &P::NAME)
            .field("cancelled", &self.token.is_cancelled())
            .finish()
    }
}

impl<P> Deref for TaskContext<P> {
    type Target = PluginContext<P>;
    fn deref(&self) -> &PluginContext<P> {
        &self.context
    }
}

impl<P: Plugin> TaskContext<P> {
    /// Resolves when the plugin stops (it is disabled, or the server shuts down); `select!`
    /// on it around long waits.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Waits for `duration`; returns `false` instead if the plugin stops first, so a
    /// periodic task is `while task.sleep(interval).await { ... }`.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            () = self.token.cancelled() => false,
            () = tokio::time::sleep(duration) => true,
        }
    }

    /// Whether the plugin is stopping.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The plugin's context.
    pub fn context(&self) -> &PluginContext<P> {
        &self.context
    }
}
