//! `test_manager`: the seed's plugin test manager on top of core's runner. It stores every run
//! it starts (both engines), computes statistics, runs schedules (the seed's words and cron,
//! in a time zone) that survive restarts, serves the seed's REST API under `/tests` with live
//! updates over Server-Sent Events, and adds `plexichat tests …` commands.
//!
//! Everything that runs or changes something needs the admin token; reading results,
//! statistics and schedules does not.

pub mod api;
mod cli;
mod schedule;
mod scheduler;
mod self_tests;
pub mod stats;
mod store;

use std::sync::OnceLock;
use std::time::Duration;

use plexichat::prelude::*;
use plexichat::tests::{RetryPolicy, RunRequest, RunnerOptions, SubmitError, TestRun, Ticket};
use tokio::sync::{Notify, broadcast};

pub use schedule::Schedule;
pub use store::StoredRun;

/// Runs the tests plugins ship: on request, in bulk and on schedules, with history,
/// statistics and live updates.
#[plugin(
    author = "PlexiChat",
    type = core,
    prefix = "/tests",
    permissions = ["database", "tests:run", "plugins:read", "ui:trusted"],
    migrations = "migrations",
    config = TestManagerConfig,
    lifecycle = true,
    tags = ["testing", "scheduler"],
    ui_pages = [{
        name = "dashboard",
        path = "ui/dashboard",
        title = "Test Dashboard",
        description = "Statistics, results as they happen, runs and schedules of every plugin's tests",
    }],
)]
#[derive(Default)]
pub struct TestManager {
    /// Schedule changes, for live views.
    changes: OnceLock<broadcast::Sender<Value>>,
    /// Wakes the scheduler when a schedule changes.
    wake: Notify,
    /// The statistics last computed, and what they were computed over.
    statistics: std::sync::Mutex<Option<stats::Cached>>,
    /// Held while statistics are computed: one computation at a time.
    computing_statistics: tokio::sync::Mutex<()>,
}

/// What to do with the runs a schedule missed while the server was down.
#[payload]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MissedRuns {
    /// Run once at start, however many were missed, then keep the rhythm.
    #[default]
    RunOnce,
    /// Run none of them; the next run is the next one due after the start.
    Skip,
}

/// `[plugins.test_manager]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestManagerConfig {
    /// Test attempts that run at once.
    #[schemars(range(min = 1, max = 64))]
    pub workers: u32,
    /// The time limit, in seconds, of a test that declares none.
    #[schemars(range(min = 1, max = 86400))]
    pub default_timeout_secs: u32,
    /// Retries of a test that declares none.
    #[schemars(range(max = 10))]
    pub default_retries: u32,
    /// The wait before the first retry, in milliseconds; each further wait is
    /// `retry_factor` times longer, at most `retry_cap_ms`, scaled by a random 50–100 %.
    #[schemars(range(min = 1, max = 600000))]
    pub retry_base_ms: u32,
    /// How much each wait between retries grows.
    #[schemars(range(min = 1, max = 10))]
    pub retry_factor: u32,
    /// The longest wait between retries, in milliseconds.
    #[schemars(range(min = 1, max = 3600000))]
    pub retry_cap_ms: u32,
    /// Runs older than this many days are deleted.
    #[schemars(range(min = 1, max = 36500))]
    pub retention_days: u32,
    /// At most this many runs are kept (the oldest go first).
    #[schemars(range(min = 100, max = 100000000))]
    pub retention_runs: u32,
    /// Runs a schedule missed while the server was down: `run_once` (at start) or `skip`.
    pub missed_runs: MissedRuns,
}

impl Default for TestManagerConfig {
    fn default() -> Self {
        TestManagerConfig {
            workers: 4,
            default_timeout_secs: 60,
            default_retries: 0,
            retry_base_ms: 250,
            retry_factor: 2,
            retry_cap_ms: 30_000,
            retention_days: 30,
            retention_runs: 100_000,
            missed_runs: MissedRuns::RunOnce,
        }
    }
}

impl TestManagerConfig {
    fn runner_options(&self) -> RunnerOptions {
        RunnerOptions {
            workers: self.workers.max(1) as usize,
            default_timeout: Duration::from_secs(u64::from(self.default_timeout_secs.max(1))),
            default_retries: self.default_retries,
            retry: RetryPolicy {
                base: Duration::from_millis(u64::from(self.retry_base_ms)),
                factor: f64::from(self.retry_factor.max(1)),
                cap: Duration::from_millis(u64::from(self.retry_cap_ms)),
            },
        }
    }
}

impl Lifecycle for TestManager {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        let config = context.config::<TestManager>().unwrap_or_default();
        context.tests().configure(config.runner_options());
        // A one-shot process (`tests run`, `plugins self-test`) leaves the schedules to the
        // server.
        if context.runs_scheduled_jobs() {
            context.spawn("scheduler", scheduler::run);
        }
        Ok(())
    }
}

/// A new configuration applies to the runner at once (more or fewer workers, limits).
#[on_event]
fn on_config_changed(context: &PluginContext<TestManager>, _changed: &ConfigChanged) {
    let config = context.config::<TestManager>().unwrap_or_default();
    context.tests().configure(config.runner_options());
}

impl TestManager {
    fn changes(&self) -> &broadcast::Sender<Value> {
        self.changes.get_or_init(|| broadcast::channel(256).0)
    }

    /// Announces a schedule change to live views and wakes the scheduler.
    fn schedule_changed(&self, change: Value) {
        let _ = self.changes().send(change);
        self.wake.notify_one();
    }
}

/// A run the manager queued (or joined): wait for its stored result.
pub(crate) struct Submitted {
    /// The runner's id.
    pub(crate) run_id: String,
    /// The plugin and test.
    pub(crate) plugin: String,
    pub(crate) test: String,
    /// Whether it joined a run already queued or running.
    pub(crate) joined: bool,
    outcome: Outcome,
}

enum Outcome {
    /// This submission records the run when it ends.
    Recording(tokio::task::JoinHandle<(TestRun, StoredRun)>),
    /// Another submission records it; this one waits for the result.
    Joined(Ticket),
}

impl Submitted {
    /// The run's result, stored (or, when this request joined another, as it ended).
    pub(crate) async fn result(self) -> StoredRun {
        self.finished().await.1
    }

    /// The run as the runner ended it, and as the history stored it.
    pub(crate) async fn finished(self) -> (TestRun, StoredRun) {
        match self.outcome {
            Outcome::Recording(task) => match task.await {
                Ok(finished) => finished,
                Err(error) => panic!("the recording task of {} failed: {error}", self.run_id),
            },
            Outcome::Joined(ticket) => {
                let run = ticket.wait().await;
                let stored = stored_view(&run, 0, None);
                (run, stored)
            }
        }
    }
}

/// Queues `request` and records its result in the history when it ends, whoever waits for
/// it; a request that joins a run already queued leaves the recording to that run's owner.
pub(crate) fn submit(
    context: &PluginContext<TestManager>,
    request: RunRequest,
    schedule_id: Option<i64>,
) -> Result<Submitted, SubmitError> {
    let (plugin, test) = (request.plugin.clone(), request.test.clone());
    let ticket = context.tests().submit(request)?;
    let (run_id, joined) = (ticket.id.clone(), ticket.joined);
    let outcome = if joined {
        Outcome::Joined(ticket)
    } else {
        let context = context.clone();
        Outcome::Recording(tokio::spawn(async move {
            let run = ticket.wait().await;
            let id = match store::insert_run(context.db().pool(), &run, schedule_id).await {
                Ok(id) => id,
                Err(error) => {
                    plexichat::tracing::error!(run = %run.id, %error, "cannot store a test run");
                    0
                }
            };
            let stored = stored_view(&run, id, schedule_id);
            (run, stored)
        }))
    };
    Ok(Submitted {
        run_id,
        plugin,
        test,
        joined,
        outcome,
    })
}

/// Whether `plugin` is in the binary and has `test` (when one is named); the error lists its
/// tests.
pub(crate) fn check_test(
    registry: &plexichat::Registry,
    plugin: &str,
    test: Option<&str>,
) -> Result<(), SubmitError> {
    if registry.plugin(plugin).is_none() {
        return Err(SubmitError::UnknownPlugin(plugin.to_string()));
    }
    let known: Vec<&'static str> = registry
        .plugin_tests_of(plugin)
        .map(|known| known.descriptor.name)
        .collect();
    match test {
        Some(test) if !known.contains(&test) => Err(SubmitError::UnknownTest {
            plugin: plugin.to_string(),
            test: test.to_string(),
            known,
        }),
        _ => Ok(()),
    }
}

/// A new schedule of `plugin`'s tests (or its one `test`) on `schedule`, starting now, not
/// stored yet: what `POST /tests/schedule` and `plexichat tests schedule add` create.
pub(crate) fn new_schedule(
    schedule: &Schedule,
    expression: &str,
    plugin: String,
    test: Option<String>,
    priority: plexichat::tests::Priority,
    timeout: Option<Duration>,
    enabled: bool,
) -> store::ScheduleRow {
    let now = jiff::Timestamp::now();
    let created = schedule::rfc3339(now);
    store::ScheduleRow {
        id: 0,
        plugin,
        test,
        expression: expression.trim().to_string(),
        timezone: schedule.zone_name().to_string(),
        priority: priority.as_str().to_string(),
        timeout_ms: timeout.map(|limit| i64::try_from(limit.as_millis()).unwrap_or(i64::MAX)),
        enabled,
        anchor_ms: now.as_millisecond(),
        next_run_ms: enabled
            .then(|| schedule.next_after(now, now))
            .flatten()
            .map(|next| next.as_millisecond()),
        last_run_ms: None,
        created_at: created.clone(),
        updated_at: created,
    }
}

/// A finished run in the history's shape.
fn stored_view(run: &TestRun, id: i64, schedule_id: Option<i64>) -> StoredRun {
    StoredRun {
        id,
        run_id: run.id.clone(),
        plugin_name: run.plugin.clone(),
        test_name: run.test.clone(),
        category: run.category.as_str().to_string(),
        status: run.status.as_str().to_string(),
        attempts: i64::from(run.attempts),
        duration_ms: i64::try_from(run.duration_ms).unwrap_or(i64::MAX),
        total_ms: i64::try_from(run.total_ms).unwrap_or(i64::MAX),
        message: run.message.clone(),
        error: run.error.clone(),
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        trigger: run.trigger.as_str().to_string(),
        priority: run.priority.as_str().to_string(),
        abandoned: run.abandoned,
        schedule_id,
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
