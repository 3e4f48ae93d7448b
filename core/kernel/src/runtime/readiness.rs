//! Readiness: the database must answer, and every plugin the operator wants must be running
//! and pass its `ready` hook and its `#[health_check(readiness)]` checks.
//!
//! A `/ready` flood must cost the plugins nothing more than one check per cache period:
//! checks of several plugins run concurrently under one deadline, one refresh runs at a time
//! (later callers wait for it and use its results), and each result is cached for
//! `[server] ready_cache`. Per-plugin health checks only that plugin.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::Runtime;
use futures_util::future::join_all;

use crate::abi::health::HealthKind;
use crate::abi::plugin::PluginDescriptor;

/// How long one plugin's readiness check may take before it counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The server's readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// The database answers and every wanted plugin runs and is ready.
    pub ready: bool,
    /// The plugins that keep it from being ready (`*` while the server is starting).
    pub plugins: BTreeMap<&'static str, NotReady>,
    /// Whether the database answered a query within its check timeout (checked at most
    /// once per `[server] ready_cache`; always on SQLite).
    pub database: bool,
}

/// Why one plugin is not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotReady {
    /// Its state (`failed`, `disabled_because_dependency`, …), or `not_ready` when it runs
    /// but its `ready` hook refused: all that unauthenticated answers show.
    pub state: &'static str,
    /// The full reason, with the hook's error: for the log and the admin view only.
    pub reason: String,
}

/// When a plugin's `ready` hook ran, and what it said.
type Checked = (Instant, Result<(), String>);

impl NotReady {
    /// Why nothing is ready before `start` has run every `init`.
    fn starting() -> NotReady {
        NotReady {
            state: "starting",
            reason: "starting: plugins are still initialising".to_string(),
        }
    }
}

/// The cached results and the single-flight lock.
#[derive(Debug)]
pub(super) struct Cache {
    ttl: Duration,
    started: AtomicBool,
    results: Mutex<HashMap<&'static str, Checked>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl Cache {
    pub(super) fn new(ttl: Duration) -> Cache {
        Cache {
            ttl,
            started: AtomicBool::new(false),
            results: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub(super) fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    fn fresh(&self, plugin: &str, now: Instant) -> Option<Result<(), String>> {
        let results = self
            .results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (at, result) = results.get(plugin)?;
        (now.duration_since(*at) < self.ttl).then(|| result.clone())
    }

    fn store(&self, plugin: &'static str, at: Instant, result: Result<(), String>) {
        self.results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(plugin, (at, result));
    }
}

impl Runtime {
    /// Whether every plugin the operator wants (neither it nor a dependency is disabled) is
    /// running and passes its `ready` hook; 503 material otherwise.
    pub async fn readiness(&self) -> Readiness {
        if !self.inner.readiness.started.load(Ordering::Acquire) {
            return Readiness {
                ready: false,
                plugins: BTreeMap::from([("*", NotReady::starting())]),
                database: true,
            };
        }
        let wanted: Vec<&'static PluginDescriptor> = self
            .registry()
            .plugins()
            .iter()
            .copied()
            .filter(|plugin| self.inner.by_name[plugin.name].slot.is_wanted())
            .collect();
        let database = self.storage().database();
        let (plugins, database) = futures_util::future::join(
            self.not_ready(&wanted),
            database.answers(self.inner.readiness.ttl),
        )
        .await;
        Readiness {
            ready: plugins.is_empty() && database,
            plugins,
            database,
        }
    }

    /// `plugin`'s own readiness, checking only it; `None` if no such plugin is compiled in.
    pub async fn plugin_readiness(&self, plugin: &str) -> Option<Result<(), NotReady>> {
        let descriptor = self.registry().plugin(plugin)?;
        if !self.inner.readiness.started.load(Ordering::Acquire) {
            return Some(Err(NotReady::starting()));
        }
        let mut problems = self.not_ready(&[descriptor]).await;
        Some(match problems.pop_first() {
            Some((_, problem)) => Err(problem),
            None => Ok(()),
        })
    }

    async fn not_ready(
        &self,
        plugins: &[&'static PluginDescriptor],
    ) -> BTreeMap<&'static str, NotReady> {
        let mut problems = BTreeMap::new();
        let mut to_check = Vec::new();
        for plugin in plugins {
            let status = self.inner.by_name[plugin.name].slot.status();
            if let Some(reason) = status.reason(plugin.name) {
                problems.insert(
                    plugin.name,
                    NotReady {
                        state: status.name(),
                        reason,
                    },
                );
            } else if plugin.lifecycle.is_some() || self.has_readiness_checks(plugin.name) {
                to_check.push(*plugin);
            }
        }
        for (plugin, result) in self.checked(&to_check).await {
            if let Err(problem) = result {
                problems.insert(
                    plugin,
                    NotReady {
                        state: "not_ready",
                        reason: format!("plugin `{plugin}` is not ready: {problem}"),
                    },
                );
            }
        }
        problems
    }

    fn has_readiness_checks(&self, plugin: &str) -> bool {
        self.registry()
            .health_checks_of(plugin)
            .any(|check| check.descriptor.kind == HealthKind::Readiness)
    }

    /// One plugin's readiness: its `ready` hook and its readiness checks, all at once; every
    /// failure is in the error.
    async fn check_ready(&self, plugin: &'static PluginDescriptor) -> Result<(), String> {
        let hook = async {
            match plugin.lifecycle {
                Some(hooks) => self
                    .run_hook(plugin, "readiness check", READY_TIMEOUT, hooks.ready)
                    .await
                    .and_then(|result| result),
                None => Ok(()),
            }
        };
        let checks = self
            .registry()
            .health_checks_of(plugin.name)
            .filter(|check| check.descriptor.kind == HealthKind::Readiness)
            .map(|check| self.run_check(check.descriptor, READY_TIMEOUT));
        let (hook, checks) = futures_util::future::join(hook, join_all(checks)).await;
        let problems: Vec<String> = std::iter::once(hook)
            .chain(checks)
            .filter_map(Result::err)
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The readiness of `plugins`: cached results if fresh, the rest checked concurrently
    /// by one caller at a time.
    async fn checked(
        &self,
        plugins: &[&'static PluginDescriptor],
    ) -> Vec<(&'static str, Result<(), String>)> {
        let cache = &self.inner.readiness;
        let mut results = Vec::with_capacity(plugins.len());
        let mut stale = Vec::new();
        let now = Instant::now();
        for &plugin in plugins {
            match cache.fresh(plugin.name, now) {
                Some(result) => results.push((plugin.name, result)),
                None => stale.push(plugin),
            }
        }
        if stale.is_empty() {
            return results;
        }
        let _one_refresh_at_a_time = cache.refreshing.lock().await;
        // Whoever held the lock before may have refreshed what we need.
        let now = Instant::now();
        let mut due = Vec::new();
        for plugin in stale {
            match cache.fresh(plugin.name, now) {
                Some(result) => results.push((plugin.name, result)),
                None => due.push(plugin),
            }
        }
        let checks = due
            .iter()
            .map(|&plugin| async move { (plugin.name, self.check_ready(plugin).await) });
        let outcomes = join_all(checks).await;
        // Stamped when the checks finished: a check that takes most of the cache period must
        // not come back already stale, or every waiter would run it again.
        let checked_at = Instant::now();
        for (plugin, result) in outcomes {
            if let Err(problem) = &result {
                tracing::warn!(plugin, %problem, "plugin is not ready");
            }
            cache.store(plugin, checked_at, result.clone());
            results.push((plugin, result));
        }
        results
    }
}
