//! Supervised background tasks: restarted with exponential backoff when they fail, and
//! grouped per plugin under a child of the runtime's cancellation token, so that disabling a
//! plugin cancels and awaits exactly its tasks, and shutdown cancels everything.
//!
//! Cancelling asks: a task sees `TaskContext::cancelled` resolve (or `sleep` return `false`)
//! and may finish its work, within the phase timeout. Only a task still running then is
//! dropped, through a second token.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Runtime, panic_message};
use crate::abi::hooks::BoxError;

/// A background task's state, as the plugin's health shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskStatus {
    /// Owning plugin.
    pub plugin: &'static str,
    /// Task name.
    pub name: &'static str,
    /// `running`, `restarting` (waiting out its backoff), `finished` or `stopped`; or
    /// `not_started` in a one-shot process (`plexichat tests run`), which runs no
    /// background tasks.
    pub state: &'static str,
    /// Times the supervisor restarted it.
    pub restarts: u64,
    /// The last error or panic; shown only to the admin view.
    pub last_error: Option<String>,
}

/// Every background task of a runtime.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    /// Cancelled at shutdown; every plugin's token is a child of it.
    root: CancellationToken,
    /// Cancelled when shutdown's time for tasks is up; every plugin's `force` is a child.
    root_force: CancellationToken,
    groups: Mutex<HashMap<&'static str, Group>>,
}

/// One plugin's tasks since it last started.
#[derive(Debug)]
struct Group {
    /// Asks the tasks to end.
    token: CancellationToken,
    /// Drops the tasks that did not end in time.
    force: CancellationToken,
    tracker: TaskTracker,
    list: Vec<Arc<Mutex<TaskStatus>>>,
}

/// First restart delay; doubles per consecutive failure up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest restart delay.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The delay before restart number `consecutive_failures` (counting from 1).
pub(crate) fn backoff(consecutive_failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << consecutive_failures.clamp(1, 17).saturating_sub(1))
        .min(MAX_BACKOFF)
}

impl Tasks {
    fn new_group(&self) -> Group {
        Group {
            token: self.root.child_token(),
            force: self.root_force.child_token(),
            tracker: TaskTracker::new(),
            list: Vec::new(),
        }
    }

    /// Gives `plugin` a fresh group before its `init` runs: new tokens (the previous ones
    /// may be cancelled) and an empty list. Whatever the old group still ran is dropped, so
    /// no task of an earlier life runs beside the new one.
    pub(crate) fn open(&self, plugin: &'static str) {
        if let Some(old) = lock(&self.groups).insert(plugin, self.new_group()) {
            old.token.cancel();
            old.force.cancel();
        }
    }

    pub(crate) fn spawn<F, Fut>(
        &self,
        plugin: &'static str,
        name: &'static str,
        runtime: Runtime,
        task: F,
    ) where
        F: Fn(CancellationToken, Runtime) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        // A one-shot process starts the plugins only to run a command on their data, which
        // may be a live server's: the server's periodic work would write beside it.
        let one_shot = !runtime.runs_scheduled_jobs();
        let status = Arc::new(Mutex::new(TaskStatus {
            plugin,
            name,
            state: if one_shot { "not_started" } else { "running" },
            restarts: 0,
            last_error: None,
        }));
        let mut groups = lock(&self.groups);
        let group = groups.entry(plugin).or_insert_with(|| self.new_group());
        group.list.push(Arc::clone(&status));
        if one_shot {
            tracing::debug!(
                plugin,
                task = name,
                "one-shot process: background task not started"
            );
            return;
        }
        let tokens = (group.token.clone(), group.force.clone());
        group
            .tracker
            .spawn(supervise(plugin, name, runtime, task, tokens, status));
    }

    pub(crate) fn of(&self, plugin: &str) -> Vec<TaskStatus> {
        lock(&self.groups)
            .get(plugin)
            .map(|group| {
                group
                    .list
                    .iter()
                    .map(|status| lock(status).clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Cancels `plugin`'s tasks and waits for them up to `timeout`; returns the ones still
    /// running then.
    pub(crate) async fn stop(&self, plugin: &str, timeout: Duration) -> Vec<TaskStatus> {
        let Some((token, force, tracker)) = lock(&self.groups).get(plugin).map(|group| {
            (
                group.token.clone(),
                group.force.clone(),
                group.tracker.clone(),
            )
        }) else {
            return Vec::new();
        };
        token.cancel();
        tracker.close();
        if tokio::time::timeout(timeout, tracker.wait()).await.is_ok() {
            return Vec::new();
        }
        let stuck = self.unfinished(Some(plugin));
        // Dropping a task takes one poll; after that nothing of this plugin runs.
        force.cancel();
        tracker.wait().await;
        stuck
    }

    /// Cancels every task and waits for them up to `timeout`; drops and returns the ones
    /// still running then.
    pub(crate) async fn shut_down(&self, timeout: Duration) -> Vec<TaskStatus> {
        self.root.cancel();
        let trackers: Vec<TaskTracker> = lock(&self.groups)
            .values()
            .map(|group| group.tracker.clone())
            .collect();
        let all = async {
            for tracker in &trackers {
                tracker.close();
                tracker.wait().await;
            }
        };
        if tokio::time::timeout(timeout, all).await.is_ok() {
            return Vec::new();
        }
        let stuck = self.unfinished(None);
        self.root_force.cancel();
        for tracker in &trackers {
            tracker.wait().await;
        }
        stuck
    }

    fn unfinished(&self, plugin: Option<&str>) -> Vec<TaskStatus> {
        lock(&self.groups)
            .iter()
            .filter(|(name, _)| plugin.is_none_or(|plugin| plugin == **name))
            .flat_map(|(_, group)| group.list.iter().map(|status| lock(status).clone()))
            .filter(|status| status.state != "stopped" && status.state != "finished")
            .collect()
    }
}

/// Runs `task` until it finishes or its token is cancelled, restarting it after failures.
async fn supervise<F, Fut>(
    plugin: &'static str,
    name: &'static str,
    runtime: Runtime,
    task: F,
    (token, force): (CancellationToken, CancellationToken),
    status: Arc<Mutex<TaskStatus>>,
) where
    F: Fn(CancellationToken, Runtime) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let mut consecutive_failures = 0u32;
    loop {
        lock(&status).state = "running";
        let started = Instant::now();
        if token.is_cancelled() {
            break;
        }
        // The task sees the cancellation itself and may finish its work; only `force`
        // (its time is up) drops it.
        let outcome = tokio::select! {
            biased;
            () = force.cancelled() => break,
            outcome = AssertUnwindSafe(task(token.clone(), runtime.clone())).catch_unwind() => outcome,
        };
        let error = match outcome {
            // Ending because the plugin stops is being stopped, not finishing.
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
        let delay = backoff(consecutive_failures);
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
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::registry::Registry;

    #[test]
    fn backoff_doubles_from_100ms_up_to_30s() {
        let delays: Vec<u64> = [1, 2, 3, 4, 9, 10, 11, 40]
            .map(|n| backoff(n).as_millis() as u64)
            .to_vec();
        assert_eq!(delays, [100, 200, 400, 800, 25_600, 30_000, 30_000, 30_000]);
    }

    /// The supervisor waits out exactly the backoff between restarts: with paused time the
    /// starts of a task that fails three times are 100, 200 and 400 ms apart.
    #[tokio::test(start_paused = true)]
    async fn a_failing_task_is_restarted_after_each_backoff() {
        let runtime = Runtime::new(Registry::from_parts(vec![], vec![], vec![]).unwrap());
        let starts = Arc::new(Mutex::new(Vec::new()));
        let runs = Arc::new(AtomicU32::new(0));
        let (recorded, counter) = (Arc::clone(&starts), Arc::clone(&runs));
        let origin = Instant::now();
        runtime
            .tasks()
            .spawn("p", "flaky", runtime.clone(), move |token, _| {
                let (recorded, counter) = (Arc::clone(&recorded), Arc::clone(&counter));
                async move {
                    lock(&recorded).push(origin.elapsed().as_millis() as u64);
                    if counter.fetch_add(1, Ordering::SeqCst) < 3 {
                        return Err("flaky".into());
                    }
                    token.cancelled().await;
                    Ok(())
                }
            });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(*lock(&starts), [0, 100, 300, 700]);
        let status = &runtime.task_status("p")[0];
        assert_eq!((status.state, status.restarts), ("running", 3));

        assert!(
            runtime
                .tasks()
                .stop("p", Duration::from_secs(1))
                .await
                .is_empty()
        );
        assert_eq!(runtime.task_status("p")[0].state, "stopped");
    }

    /// Stopping asks: a task finishes its work after `cancelled` resolves; one that ignores
    /// the request is reported and dropped when the time is up.
    #[tokio::test(start_paused = true)]
    async fn a_cancelled_task_may_finish_its_work_and_a_deaf_one_is_dropped() {
        let runtime = Runtime::new(Registry::from_parts(vec![], vec![], vec![]).unwrap());
        let flushed = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&flushed);
        runtime
            .tasks()
            .spawn("p", "polite", runtime.clone(), move |token, _| {
                let seen = Arc::clone(&seen);
                async move {
                    token.cancelled().await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    seen.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            });
        runtime
            .tasks()
            .spawn("p", "deaf", runtime.clone(), |_, _| async {
                std::future::pending::<()>().await;
                Ok(())
            });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let stuck = runtime.tasks().stop("p", Duration::from_secs(1)).await;
        assert_eq!(
            flushed.load(Ordering::SeqCst),
            1,
            "the polite task finished its work"
        );
        let names: Vec<&str> = stuck.iter().map(|task| task.name).collect();
        assert_eq!(names, ["deaf"]);
        let states: Vec<&str> = runtime.task_status("p").iter().map(|t| t.state).collect();
        assert_eq!(
            states,
            ["stopped", "stopped"],
            "nothing of the plugin runs any more"
        );
    }
}
