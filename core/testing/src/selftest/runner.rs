//! The plugin test runner: a queue ordered by priority (critical first) and then by due time,
//! at most `workers` attempts at once, a time limit on every attempt (async or sync), retries
//! with exponential backoff and jitter, and one run per test at a time (a second request for
//! a queued or running test joins it).
//!
//! A synchronous test runs on a thread of its own: when it overruns its limit the runner
//! stops waiting, frees the worker and says in the result that the thread was abandoned (a
//! thread cannot be killed; it is counted until it returns). An `async` test that overruns is
//! cancelled at its next `.await`; one that never awaits holds an async worker thread, which no
//! in-process runner can prevent.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore, broadcast, watch};

use plexichat_kernel::abi::plugin_test::TestEnv;
use plexichat_kernel::abi::plugin_test::{PluginTestDescriptor, TestBody, TestCategory};
use plexichat_kernel::runtime::Runtime;
use plexichat_kernel::runtime::state::PluginStatus;
use plexichat_web::ServerOptions;

/// How urgent a run is: the queue serves critical runs first, then high, medium, low.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// After everything else.
    Low,
    /// The default.
    #[default]
    Medium,
    /// Before medium and low.
    High,
    /// Before everything else.
    Critical,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Medium,
        Priority::Low,
    ];

    /// `low`, `medium`, `high` or `critical`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

/// Reads a priority; the error lists the accepted words.
pub fn parse_priority(text: &str) -> Result<Priority, String> {
    Priority::ALL
        .into_iter()
        .find(|priority| priority.as_str().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| {
            format!("unknown priority `{text}`; expected one of: critical, high, medium, low")
        })
}

/// What started a run; stored with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A person asked for it (the API, the dashboard).
    Manual,
    /// A schedule came due.
    Schedule,
    /// Part of a bulk run of several plugins.
    Bulk,
    /// `plexichat tests run` or `plexichat plugins self-test`.
    Cli,
}

impl Trigger {
    /// The stored word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::Bulk => "bulk",
            Trigger::Cli => "cli",
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Passed on its first attempt.
    Passed,
    /// Returned an error on every attempt.
    Failed,
    /// Panicked (or could not be run) on its last attempt.
    Error,
    /// Overran its time limit on its last attempt.
    Timeout,
    /// Failed, then passed on a retry: it passes, but not reliably.
    Flaky,
    /// Not run: its plugin was not running.
    Skipped,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Passed,
        RunStatus::Failed,
        RunStatus::Error,
        RunStatus::Timeout,
        RunStatus::Flaky,
        RunStatus::Skipped,
    ];

    /// The stored word.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Error => "error",
            RunStatus::Timeout => "timeout",
            RunStatus::Flaky => "flaky",
            RunStatus::Skipped => "skipped",
        }
    }

    /// Reads a stored word back.
    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the test's code did not fail: passed, flaky, or not run at all.
    pub const fn is_ok(self) -> bool {
        matches!(
            self,
            RunStatus::Passed | RunStatus::Flaky | RunStatus::Skipped
        )
    }
}

/// The wait before each retry: `base × factor^(retry - 1)`, at most `cap`, then scaled by a
/// random factor in [0.5, 1] so that tests failing together do not retry together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The wait before the first retry, before jitter.
    pub base: Duration,
    /// How much each further wait grows.
    pub factor: f64,
    /// The longest wait.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(250),
            factor: 2.0,
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first), with `unit` in [0, 1] as the
    /// random draw.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let grown = self.base.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        let capped = grown.min(self.cap.as_secs_f64());
        Duration::from_secs_f64(capped * (0.5 + 0.5 * unit.clamp(0.0, 1.0)))
    }
}

/// How the runner works; see [`Runner::configure`].
#[derive(Clone, Debug, PartialEq)]
pub struct RunnerOptions {
    /// Attempts that run at once.
    pub workers: usize,
    /// The time limit of a test that declares none and of a run that asks for none.
    pub default_timeout: Duration,
    /// Retries of a test that declares none and of a run that asks for none.
    pub default_retries: u32,
    /// The waits between attempts.
    pub retry: RetryPolicy,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            workers: 4,
            default_timeout: Duration::from_secs(60),
            default_retries: 0,
            retry: RetryPolicy::default(),
        }
    }
}

/// A request to run one test.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// The plugin.
    pub plugin: String,
    /// The test, a function name.
    pub test: String,
    /// Where it goes in the queue.
    pub priority: Priority,
    /// Overrides the test's own time limit.
    pub timeout: Option<Duration>,
    /// Overrides the test's own retry count.
    pub retries: Option<u32>,
    /// What asked for it.
    pub trigger: Trigger,
}

impl RunRequest {
    /// Test `test` of `plugin`, medium priority, manual, with the test's own limits.
    pub fn new(plugin: impl Into<String>, test: impl Into<String>) -> RunRequest {
        RunRequest {
            plugin: plugin.into(),
            test: test.into(),
            priority: Priority::Medium,
            timeout: None,
            retries: None,
            trigger: Trigger::Manual,
        }
    }

    /// With another priority.
    #[must_use]
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// With another trigger.
    #[must_use]
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// With a time limit of its own.
    #[must_use]
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// With a retry count of its own.
    #[must_use]
    pub fn retries(mut self, retries: Option<u32>) -> Self {
        self.retries = retries;
        self
    }
}

/// One finished run of one test, every attempt included.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestRun {
    /// Unique within this process: `run-<unix ms>-<n>`.
    pub id: String,
    /// The plugin.
    pub plugin: String,
    /// The test.
    pub test: String,
    /// The test's category.
    pub category: TestCategory,
    /// How it ended.
    pub status: RunStatus,
    /// Attempts made (0 when skipped).
    pub attempts: u32,
    /// How long the last attempt took, in milliseconds.
    pub duration_ms: u64,
    /// From the first attempt's start to the end, waits between attempts included.
    pub total_ms: u64,
    /// One line for people: what happened.
    pub message: String,
    /// The last failure's text (the error, the panic, the time limit), if it did not pass.
    pub error: Option<String>,
    /// When the first attempt started (RFC 3339, UTC).
    pub started_at: String,
    /// When the run ended.
    pub finished_at: String,
    /// What asked for it.
    pub trigger: Trigger,
    /// Its place in the queue.
    pub priority: Priority,
    /// Whether a synchronous test's thread was left running when it timed out.
    pub abandoned: bool,
}

/// What the runner announces, for live views; a lagging receiver misses some.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunnerEvent {
    /// A run entered the queue.
    Queued {
        /// The run.
        id: String,
        /// Its plugin.
        plugin: String,
        /// Its test.
        test: String,
        /// Its priority.
        priority: Priority,
        /// What asked for it.
        trigger: Trigger,
    },
    /// An attempt started.
    Started {
        /// The run.
        id: String,
        /// Its plugin.
        plugin: String,
        /// Its test.
        test: String,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// A run ended.
    Finished {
        /// The result.
        run: TestRun,
    },
}

/// Why a run was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// No such plugin in this binary.
    #[error("no plugin `{0}` in this binary")]
    UnknownPlugin(String),
    /// The plugin has no test of that name.
    #[error("plugin `{plugin}` has no test `{test}`{}", hint(.known))]
    UnknownTest {
        /// The plugin.
        plugin: String,
        /// The name asked for.
        test: String,
        /// The plugin's tests.
        known: Vec<&'static str>,
    },
    /// Called outside an async runtime.
    #[error("the test runner needs a tokio runtime")]
    NoAsyncRuntime,
}

fn hint(known: &[&str]) -> String {
    if known.is_empty() {
        "; it has no tests".to_string()
    } else {
        format!("; its tests: {}", known.join(", "))
    }
}

/// A test: its plugin and its name.
type TestKey = (&'static str, &'static str);

/// Where a run's result appears when it ends.
type ResultReceiver = watch::Receiver<Option<Arc<TestRun>>>;

/// A queued or running run: wait for its result.
#[derive(Debug)]
pub struct Ticket {
    /// The run's id.
    pub id: String,
    /// Whether this request joined a run of the same test that was already queued or running
    /// (which then keeps its own priority and limits).
    pub joined: bool,
    receiver: ResultReceiver,
}

impl Ticket {
    /// The run's result, when it ends.
    pub async fn wait(mut self) -> TestRun {
        loop {
            if let Some(run) = self.receiver.borrow_and_update().as_deref() {
                return run.clone();
            }
            if self.receiver.changed().await.is_err() {
                // Every run ends by sending its result, so only the async runtime going away
                // gets here; the last value is all there is.
                let last = self.receiver.borrow().as_deref().cloned();
                return last.expect("a run's result is sent before its sender is dropped");
            }
        }
    }
}

/// A snapshot of the runner's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RunnerStatus {
    /// Runs waiting for a worker (or for their next retry).
    pub queued: usize,
    /// Attempts running now.
    pub running: usize,
    /// Synchronous tests' threads that timed out and have not returned yet.
    pub abandoned_threads: usize,
    /// Attempts that may run at once.
    pub workers: usize,
}

/// The plugin test runner of one [`Runtime`]; [`Runner::of`] finds it.
pub struct Runner {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("status", &self.status())
            .finish()
    }
}

struct Shared {
    options: RwLock<RunnerOptions>,
    server: RwLock<Arc<ServerOptions>>,
    queue: Mutex<Queue>,
    /// Wakes the dispatcher when a run is queued.
    wake: Notify,
    /// One permit per worker; `configure` adds more.
    permits: Arc<Semaphore>,
    workers: AtomicUsize,
    /// Permits to take out of circulation as running attempts end (fewer workers were
    /// configured while they held them).
    owed: AtomicUsize,
    /// Runs queued or running, by (plugin, test): what a second request joins.
    active: Mutex<HashMap<TestKey, (String, ResultReceiver)>>,
    events: broadcast::Sender<RunnerEvent>,
    dispatching: AtomicBool,
    running: AtomicUsize,
    abandoned: Arc<AtomicUsize>,
    next_id: AtomicU64,
}

impl Runner {
    /// The runner of `runtime`, created on first use with default options.
    pub fn of(runtime: &Runtime) -> Arc<Runner> {
        runtime.extension(|| Runner::new(RunnerOptions::default()))
    }

    fn new(options: RunnerOptions) -> Runner {
        let workers = options.workers.max(1);
        Runner {
            shared: Arc::new(Shared {
                options: RwLock::new(options),
                server: RwLock::new(Arc::new(ServerOptions::default())),
                queue: Mutex::new(Queue::default()),
                wake: Notify::new(),
                permits: Arc::new(Semaphore::new(workers)),
                workers: AtomicUsize::new(workers),
                owed: AtomicUsize::new(0),
                active: Mutex::default(),
                events: broadcast::channel(1024).0,
                dispatching: AtomicBool::new(false),
                running: AtomicUsize::new(0),
                abandoned: Arc::new(AtomicUsize::new(0)),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Replaces the options; runs already queued keep their limits. Fewer workers take
    /// effect as far as workers are idle (a running attempt keeps its place to the end).
    pub fn configure(&self, options: RunnerOptions) {
        let wanted = options.workers.max(1);
        let current = self.shared.workers.load(Ordering::Relaxed);
        if wanted > current {
            self.shared.permits.add_permits(wanted - current);
            self.shared.workers.store(wanted, Ordering::Relaxed);
        } else if wanted < current {
            // Idle permits go at once; those held by running attempts when they end.
            let removed = self.shared.permits.forget_permits(current - wanted);
            self.shared
                .owed
                .fetch_add(current - wanted - removed, Ordering::Relaxed);
            self.shared.workers.store(wanted, Ordering::Relaxed);
        }
        *write(&self.shared.options) = options;
    }

    /// The options in force.
    pub fn options(&self) -> RunnerOptions {
        read(&self.shared.options).clone()
    }

    /// The server's options (its admin token) for the in-process client tests get.
    pub fn set_server_options(&self, server: &ServerOptions) {
        *write(&self.shared.server) = Arc::new(server.clone());
    }

    /// The server options `runtime`'s configuration gives, with the admin token a server on
    /// its data folder would use (`[server] admin_token`, else the token file): what a
    /// process that runs tests without serving gives its tests' client.
    pub fn use_configured_server(&self, runtime: &Runtime) {
        let config = runtime.current_config();
        let mut options = ServerOptions::from(&config.server);
        if options.admin_token.is_none() {
            options.admin_token = plexichat_kernel::storage::data_dir::read_token(&config.data.dir)
                .ok()
                .and_then(|(token, _)| token);
        }
        self.set_server_options(&options);
    }

    /// Live announcements of runs queued, started and finished.
    pub fn subscribe(&self) -> broadcast::Receiver<RunnerEvent> {
        self.shared.events.subscribe()
    }

    /// How busy the runner is.
    pub fn status(&self) -> RunnerStatus {
        RunnerStatus {
            queued: lock(&self.shared.queue).len(),
            running: self.shared.running.load(Ordering::Relaxed),
            abandoned_threads: self.shared.abandoned.load(Ordering::Relaxed),
            workers: self.shared.workers.load(Ordering::Relaxed),
        }
    }

    /// Queues one run, or joins the run of the same test already queued or running.
    pub fn submit(&self, runtime: &Runtime, request: RunRequest) -> Result<Ticket, SubmitError> {
        let registry = runtime.registry();
        let plugin = registry
            .plugin(&request.plugin)
            .ok_or_else(|| SubmitError::UnknownPlugin(request.plugin.clone()))?;
        let test = registry
            .plugin_tests_of(plugin.name)
            .find(|test| test.descriptor.name == request.test)
            .ok_or_else(|| SubmitError::UnknownTest {
                plugin: plugin.name.to_string(),
                test: request.test.clone(),
                known: registry
                    .plugin_tests_of(plugin.name)
                    .map(|test| test.descriptor.name)
                    .collect(),
            })?
            .descriptor;
        let handle =
            tokio::runtime::Handle::try_current().map_err(|_| SubmitError::NoAsyncRuntime)?;
        self.start_dispatcher(&handle);

        let key = (plugin.name, test.name);
        let mut active = lock(&self.shared.active);
        if let Some((id, receiver)) = active.get(&key) {
            return Ok(Ticket {
                id: id.clone(),
                joined: true,
                receiver: receiver.clone(),
            });
        }
        let options = self.options();
        let id = format!(
            "run-{}-{}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis()),
            self.shared.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let (sender, receiver) = watch::channel(None);
        active.insert(key, (id.clone(), receiver.clone()));
        drop(active);
        let job = Job {
            id: id.clone(),
            plugin: plugin.name,
            test,
            runtime: runtime.clone(),
            priority: request.priority,
            trigger: request.trigger,
            timeout: request
                .timeout
                .or(test.timeout_ms.map(Duration::from_millis))
                .unwrap_or(options.default_timeout),
            retries: request
                .retries
                .or(test.retries)
                .unwrap_or(options.default_retries),
            retry: options.retry,
            attempt: 0,
            first_start: None,
            errors: Vec::new(),
            sender,
        };
        let _ = self.shared.events.send(RunnerEvent::Queued {
            id: id.clone(),
            plugin: plugin.name.to_string(),
            test: test.name.to_string(),
            priority: request.priority,
            trigger: request.trigger,
        });
        self.shared.push(job, Instant::now());
        Ok(Ticket {
            id,
            joined: false,
            receiver,
        })
    }

    fn start_dispatcher(&self, handle: &tokio::runtime::Handle) {
        if self.shared.dispatching.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        handle.spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&shared.permits).acquire_owned().await else {
                    return;
                };
                let job = shared.next().await;
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    shared.running.fetch_add(1, Ordering::Relaxed);
                    let retry = shared.attempt(job).await;
                    shared.running.fetch_sub(1, Ordering::Relaxed);
                    let owed =
                        shared
                            .owed
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |owed| {
                                owed.checked_sub(1)
                            });
                    match owed {
                        Ok(_) => permit.forget(),
                        Err(_) => drop(permit),
                    }
                    if let Some((job, due)) = retry {
                        shared.push(job, due);
                    }
                });
            }
        });
    }
}

impl Shared {
    fn push(&self, job: Job, due: Instant) {
        lock(&self.queue).push(job, due);
        self.wake.notify_one();
    }

    /// The most urgent run that is due, waiting for one if there is none.
    async fn next(&self) -> Job {
        loop {
            let woken = self.wake.notified();
            let next_due = {
                let mut queue = lock(&self.queue);
                if let Some(job) = queue.pop(Instant::now()) {
                    return job;
                }
                queue.next_due()
            };
            match next_due {
                Some(due) => {
                    tokio::select! {
                        () = woken => {}
                        () = tokio::time::sleep_until(due.into()) => {}
                    }
                }
                None => woken.await,
            }
        }
    }

    /// Runs one attempt of `job`; returns it with the time of its next attempt when it is
    /// to be retried, else sends its result.
    async fn attempt(&self, mut job: Job) -> Option<(Job, Instant)> {
        match job.runtime.status(job.plugin) {
            Some(PluginStatus::Running) => {}
            status => {
                let reason = status
                    .and_then(|status| status.reason(job.plugin))
                    .unwrap_or_else(|| format!("plugin `{}` is not running", job.plugin));
                self.finish(job, RunStatus::Skipped, reason, None, 0, false);
                return None;
            }
        }
        job.attempt += 1;
        let now = (SystemTime::now(), Instant::now());
        job.first_start.get_or_insert(now);
        let _ = self.events.send(RunnerEvent::Started {
            id: job.id.clone(),
            plugin: job.plugin.to_string(),
            test: job.test.name.to_string(),
            attempt: job.attempt,
        });
        let server: Arc<ServerOptions> = Arc::clone(&read(&self.server));
        let env = TestEnv::new(
            job.runtime.clone(),
            server,
            job.attempt,
            tokio::runtime::Handle::current(),
        );
        let outcome = run_body(job.test.body, env, job.timeout, &self.abandoned).await;
        let duration = now.1.elapsed();
        let duration_ms = millis(duration);
        let (status, error, abandoned) = match outcome {
            Outcome::Passed if job.attempt == 1 => {
                self.finish(
                    job,
                    RunStatus::Passed,
                    "passed".to_string(),
                    None,
                    duration_ms,
                    false,
                );
                return None;
            }
            Outcome::Passed => {
                let message = format!(
                    "passed on attempt {} of {}, after: {}",
                    job.attempt,
                    job.retries + 1,
                    job.errors.join("; ")
                );
                self.finish(job, RunStatus::Flaky, message, None, duration_ms, false);
                return None;
            }
            Outcome::Failed(error) => (RunStatus::Failed, error, false),
            Outcome::Panicked(error) => (RunStatus::Error, format!("panicked: {error}"), false),
            Outcome::TimedOut { abandoned } => {
                let mut text = format!(
                    "timed out after {}",
                    humantime::format_duration(job.timeout)
                );
                if abandoned {
                    text.push_str("; its thread was abandoned and may still be running");
                }
                (RunStatus::Timeout, text, abandoned)
            }
        };
        if job.attempt <= job.retries {
            job.errors.push(format!("attempt {}: {error}", job.attempt));
            let unit = f64::from(random_u32()) / f64::from(u32::MAX);
            let due = Instant::now() + job.retry.delay(job.attempt, unit);
            return Some((job, due));
        }
        let message = match job.attempt {
            1 => error.clone(),
            attempts => format!("{error} (on each of {attempts} attempts; last shown)"),
        };
        self.finish(job, status, message, Some(error), duration_ms, abandoned);
        None
    }

    fn finish(
        &self,
        job: Job,
        status: RunStatus,
        message: String,
        error: Option<String>,
        duration_ms: u64,
        abandoned: bool,
    ) {
        let (started_at, total_ms) = match job.first_start {
            Some((wall, clock)) => (wall, millis(clock.elapsed())),
            None => (SystemTime::now(), 0),
        };
        let run = Arc::new(TestRun {
            id: job.id,
            plugin: job.plugin.to_string(),
            test: job.test.name.to_string(),
            category: job.test.category,
            status,
            attempts: job.attempt,
            duration_ms,
            total_ms,
            message,
            error,
            started_at: humantime::format_rfc3339_millis(started_at).to_string(),
            finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            trigger: job.trigger,
            priority: job.priority,
            abandoned,
        });
        // Removed before the result is sent: whoever sees the result and asks again gets a
        // new run, not this finished one.
        lock(&self.active).remove(&(job.plugin, job.test.name));
        let _ = self.events.send(RunnerEvent::Finished {
            run: TestRun::clone(&run),
        });
        let _ = job.sender.send(Some(run));
    }
}

/// How one attempt ended.
enum Outcome {
    Passed,
    Failed(String),
    Panicked(String),
    TimedOut { abandoned: bool },
}

/// A synchronous test's thread: running, returned, or given up on by the runner.
const RUNNING: u8 = 0;
const RETURNED: u8 = 1;
const ABANDONED: u8 = 2;

async fn run_body(
    body: TestBody,
    env: TestEnv,
    limit: Duration,
    abandoned: &Arc<AtomicUsize>,
) -> Outcome {
    match body {
        TestBody::Async(call) => {
            let mut task = tokio::spawn(call(env));
            match tokio::time::timeout(limit, &mut task).await {
                Ok(Ok(Ok(()))) => Outcome::Passed,
                Ok(Ok(Err(error))) => Outcome::Failed(error),
                Ok(Err(join)) => Outcome::Panicked(match join.try_into_panic() {
                    Ok(payload) => panic_text(payload.as_ref()),
                    Err(_) => "cancelled".to_string(),
                }),
                Err(_) => {
                    task.abort();
                    Outcome::TimedOut { abandoned: false }
                }
            }
        }
        TestBody::Blocking(call) => {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let state = Arc::new(AtomicU8::new(RUNNING));
            let (thread_state, thread_abandoned) = (Arc::clone(&state), Arc::clone(abandoned));
            let spawned = std::thread::Builder::new()
                .name("plexichat-test".to_string())
                .spawn(move || {
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(env)));
                    let _ = sender.send(result.map_err(|payload| panic_text(payload.as_ref())));
                    // Given up on earlier: it no longer counts as abandoned.
                    if thread_state
                        .compare_exchange(RUNNING, RETURNED, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        thread_abandoned.fetch_sub(1, Ordering::Relaxed);
                    }
                });
            if let Err(error) = spawned {
                return Outcome::Panicked(format!("cannot start the test's thread: {error}"));
            }
            match tokio::time::timeout(limit, receiver).await {
                Ok(Ok(Ok(Ok(())))) => Outcome::Passed,
                Ok(Ok(Ok(Err(error)))) => Outcome::Failed(error),
                Ok(Ok(Err(panic))) => Outcome::Panicked(panic),
                Ok(Err(_)) => Outcome::Panicked("the test's thread ended without a result".into()),
                Err(_) => {
                    // Counted before the thread can see it abandoned (and uncount it), so the
                    // count never goes below zero; undone if the thread returned first.
                    abandoned.fetch_add(1, Ordering::Relaxed);
                    let given_up = state
                        .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                    if !given_up {
                        abandoned.fetch_sub(1, Ordering::Relaxed);
                    }
                    Outcome::TimedOut {
                        abandoned: given_up,
                    }
                }
            }
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // Jitter only: without the system's random source the waits are merely not spread.
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

/// One run on its way through the queue.
struct Job {
    id: String,
    plugin: &'static str,
    test: &'static PluginTestDescriptor,
    runtime: Runtime,
    priority: Priority,
    trigger: Trigger,
    timeout: Duration,
    retries: u32,
    retry: RetryPolicy,
    /// Attempts started so far.
    attempt: u32,
    first_start: Option<(SystemTime, Instant)>,
    /// Earlier attempts' failures.
    errors: Vec<String>,
    sender: watch::Sender<Option<Arc<TestRun>>>,
}

/// Runs ready to start, most urgent first, and runs waiting for their next attempt.
#[derive(Default)]
struct Queue {
    ready: BinaryHeap<Ready>,
    waiting: BinaryHeap<Reverse<Waiting>>,
    sequence: u64,
}

impl Queue {
    fn len(&self) -> usize {
        self.ready.len() + self.waiting.len()
    }

    fn push(&mut self, job: Job, due: Instant) {
        self.sequence += 1;
        self.waiting.push(Reverse(Waiting {
            due,
            sequence: self.sequence,
            job,
        }));
    }

    /// The most urgent due run: by priority, then the earliest due, then the first queued.
    fn pop(&mut self, now: Instant) -> Option<Job> {
        while self.waiting.peek().is_some_and(|Reverse(w)| w.due <= now) {
            let Reverse(waiting) = self.waiting.pop().expect("peeked");
            self.ready.push(Ready(waiting));
        }
        self.ready.pop().map(|Ready(waiting)| waiting.job)
    }

    fn next_due(&self) -> Option<Instant> {
        self.waiting.peek().map(|Reverse(w)| w.due)
    }
}

struct Waiting {
    due: Instant,
    sequence: u64,
    job: Job,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

/// A due run in the ready heap: the greatest is the most urgent.
struct Ready(Waiting);

impl PartialEq for Ready {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ready {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        let key = |ready: &Ready| {
            (
                ready.0.job.priority,
                Reverse(ready.0.due),
                Reverse(ready.0.sequence),
            )
        };
        key(self).cmp(&key(other))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_the_factor_up_to_the_cap_with_jitter_below_it() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            factor: 2.0,
            cap: Duration::from_millis(1000),
        };
        assert_eq!(policy.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(policy.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(policy.delay(4, 1.0), Duration::from_millis(800));
        assert_eq!(policy.delay(5, 1.0), Duration::from_millis(1000));
        assert_eq!(policy.delay(30, 1.0), Duration::from_millis(1000));
        assert_eq!(policy.delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(policy.delay(5, 0.0), Duration::from_millis(500));
    }

    #[test]
    fn priorities_read_case_insensitively_and_name_the_choices() {
        assert_eq!(parse_priority("Critical"), Ok(Priority::Critical));
        assert_eq!(parse_priority("low"), Ok(Priority::Low));
        let error = parse_priority("urgent").unwrap_err();
        assert!(error.contains("critical, high, medium, low"), "{error}");
        assert!(Priority::Critical > Priority::High && Priority::Medium > Priority::Low);
    }
}
