//! Liveness supervision: every `[health] liveness_interval` each running plugin's liveness
//! checks run, concurrently and bounded; a plugin that fails `failures_before_restart` rounds
//! in a row is restarted with its dependents (`stop`, then `init` and tasks again), the next
//! round after a restart waits twice as long as after the previous one, and a plugin that
//! needs more than `max_restarts` restarts within `restart_window` is marked failed, its
//! dependents following. Every step is logged and visible in the plugin's description.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::Runtime;
use super::state::PluginStatus;
use crate::abi::health::{HealthCheckDescriptor, HealthKind};
use crate::runtime::Host;

/// The longest one liveness check may take, whatever the interval.
const MAX_CHECK_TIME: Duration = Duration::from_secs(10);

/// What the supervisor knows about each plugin with liveness checks.
#[derive(Debug, Default)]
pub(super) struct Book {
    plugins: Mutex<HashMap<&'static str, Record>>,
}

#[derive(Debug, Default)]
struct Record {
    consecutive_failures: u32,
    /// When the restarts within the window happened, oldest first.
    recent_restarts: VecDeque<Instant>,
    restarts: u64,
    last_failure: Option<String>,
    /// No round before this (backoff after a restart).
    not_before: Option<Instant>,
}

/// One plugin's liveness, as its description shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LivenessStatus {
    /// Failed rounds in a row, now.
    pub consecutive_failures: u32,
    /// Restarts since the server started.
    pub restarts: u64,
    /// What the last failing check said (admin only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

impl Runtime {
    /// `plugin`'s liveness record, if it has liveness checks.
    pub fn liveness(&self, plugin: &str) -> Option<LivenessStatus> {
        self.registry()
            .health_checks_of(plugin)
            .any(|check| check.descriptor.kind == HealthKind::Liveness)
            .then(|| {
                let book = self.inner.liveness.plugins.lock();
                let book = book.unwrap_or_else(|poisoned| poisoned.into_inner());
                let record = book.get(plugin);
                LivenessStatus {
                    consecutive_failures: record.map_or(0, |r| r.consecutive_failures),
                    restarts: record.map_or(0, |r| r.restarts),
                    last_failure: record.and_then(|r| r.last_failure.clone()),
                }
            })
    }

    /// Starts the supervisor as a core task, if any plugin has liveness checks.
    pub(super) fn supervise_liveness(&self) {
        let supervised: BTreeSet<&'static str> = self
            .registry()
            .health_checks()
            .iter()
            .filter(|check| check.descriptor.kind == HealthKind::Liveness)
            .map(|check| check.plugin)
            .collect();
        if supervised.is_empty() {
            return;
        }
        self.tasks().spawn(
            crate::storage::migrate::CORE,
            "liveness",
            self.clone(),
            move |token, runtime| {
                let supervised = supervised.clone();
                async move {
                    loop {
                        let interval = runtime.current_config().health.liveness_interval;
                        tokio::select! {
                            () = token.cancelled() => return Ok(()),
                            () = tokio::time::sleep(interval) => {}
                        }
                        for plugin in &supervised {
                            runtime.liveness_round(plugin).await;
                        }
                    }
                }
            },
        );
    }

    /// One round for `plugin`: its checks, then a restart or a failure if it is due.
    async fn liveness_round(&self, plugin: &'static str) {
        if self.status(plugin) != Some(PluginStatus::Running) {
            return;
        }
        let now = Instant::now();
        if self
            .record(plugin, |record| record.not_before)
            .is_some_and(|not_before| now < not_before)
        {
            return;
        }
        let settings = self.current_config().health.clone();
        let limit = settings.liveness_interval.min(MAX_CHECK_TIME);
        let checks = self
            .registry()
            .health_checks_of(plugin)
            .filter(|check| check.descriptor.kind == HealthKind::Liveness)
            .map(|check| self.run_check(check.descriptor, limit));
        let failures: Vec<String> = futures_util::future::join_all(checks)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if failures.is_empty() {
            self.record(plugin, |record| record.consecutive_failures = 0);
            return;
        }
        let failure = failures.join("; ");
        let consecutive = self.record(plugin, |record| {
            record.consecutive_failures += 1;
            record.last_failure = Some(failure.clone());
            record.consecutive_failures
        });
        tracing::warn!(plugin, %failure, consecutive, "liveness check failed");
        if consecutive < settings.failures_before_restart {
            return;
        }
        let now = Instant::now();
        let restarts_in_window = self.record(plugin, |record| {
            while record
                .recent_restarts
                .front()
                .is_some_and(|at| now.duration_since(*at) >= settings.restart_window)
            {
                record.recent_restarts.pop_front();
            }
            record.recent_restarts.len()
        });
        if restarts_in_window >= settings.max_restarts as usize {
            let reason = format!(
                "liveness failed {consecutive} times in a row after {restarts_in_window} restarts within {}: {failure}",
                humantime::format_duration(settings.restart_window)
            );
            tracing::error!(plugin, %reason, "giving up on the plugin: marking it failed");
            self.record(plugin, |record| record.consecutive_failures = 0);
            self.fail_plugin(plugin, reason).await;
            return;
        }
        // After the n-th restart in the window, wait 2^n intervals before the next round.
        let backoff = settings
            .liveness_interval
            .saturating_mul(1u32 << restarts_in_window.min(16))
            .min(settings.restart_window);
        self.record(plugin, |record| {
            record.consecutive_failures = 0;
            record.recent_restarts.push_back(now);
            record.restarts += 1;
            record.not_before = Some(now + backoff);
        });
        tracing::warn!(
            plugin,
            restart = restarts_in_window + 1,
            of = settings.max_restarts,
            next_check_in = %humantime::format_duration(backoff),
            "restarting the plugin after failed liveness checks"
        );
        self.restart_plugin(plugin).await;
    }

    /// Runs one health check within `limit`; its error, panic or timeout comes back as one
    /// text naming the check.
    pub(super) async fn run_check(
        &self,
        check: &'static HealthCheckDescriptor,
        limit: Duration,
    ) -> Result<(), String> {
        let call = std::panic::AssertUnwindSafe((check.call)(Host::of(self)));
        let outcome =
            match tokio::time::timeout(limit, futures_util::FutureExt::catch_unwind(call)).await {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(super::panic_message(panic.as_ref())),
                Err(_) => Err(format!(
                    "did not answer within {}",
                    humantime::format_duration(limit)
                )),
            };
        outcome.map_err(|error| format!("check `{}`: {error}", check.name))
    }

    fn record<T>(&self, plugin: &'static str, f: impl FnOnce(&mut Record) -> T) -> T {
        let mut book = self
            .inner
            .liveness
            .plugins
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(book.entry(plugin).or_default())
    }
}
