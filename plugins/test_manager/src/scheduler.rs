//! The scheduler: a supervised task that queues each schedule's tests when it comes due,
//! stores when it runs next, prunes the history, and sleeps until the next schedule is due
//! (or a schedule changes, or 30 seconds pass, so that schedules changed from the command line
//! are seen too).
//!
//! Runs missed while the server was down follow `missed_runs`: `run_once` queues a schedule
//! once at start however many it missed, `skip` queues none; either way the next run is the
//! schedule's next time after now. [`decide`] is that rule, pure, so that tests can drive it
//! with any clock.

use std::time::Duration;

use plexichat::prelude::*;
use plexichat::tests::{RunRequest, Trigger, parse_priority};

use crate::schedule::{Schedule, from_millis};
use crate::store::{self, ScheduleRow};
use crate::{MissedRuns, TestManager};

/// The longest sleep between two looks at the schedules table.
const POLL: Duration = Duration::from_secs(30);
/// How often the history is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// What to do with one due schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Queue its tests now.
    pub(crate) run: bool,
    /// When it is due next (`None`: never again).
    pub(crate) next_run_ms: Option<i64>,
}

/// The rule for a schedule due at `now_ms`: `started_ms` is when this server started; a run
/// that was due before then was missed while the server was down.
pub(crate) fn decide(
    schedule: &Schedule,
    row: &ScheduleRow,
    now_ms: i64,
    started_ms: i64,
    policy: MissedRuns,
) -> Decision {
    let missed = row.next_run_ms.is_some_and(|due| due < started_ms);
    let run = !missed || policy == MissedRuns::RunOnce;
    let next_run_ms = schedule
        .next_after(from_millis(now_ms), from_millis(row.anchor_ms))
        .map(|next| next.as_millisecond());
    Decision { run, next_run_ms }
}

/// When a resumed schedule runs next: its next time after now.
pub(crate) fn next_after_now(row: &ScheduleRow) -> Option<i64> {
    Schedule::parse(&row.expression, Some(&row.timezone))
        .ok()
        .and_then(|schedule| {
            schedule.next_after(jiff::Timestamp::now(), from_millis(row.anchor_ms))
        })
        .map(|next| next.as_millisecond())
}

/// The task: see the module's documentation.
pub(crate) async fn run(task: TaskContext<TestManager>) -> Result<(), BoxError> {
    let context = task.context();
    let started_ms = crate::now_ms();
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        let config = context.config::<TestManager>().unwrap_or_default();
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            prune(context, &config).await;
            last_prune = Some(tokio::time::Instant::now());
        }
        let now = crate::now_ms();
        let due = store::due(context.db().pool(), now).await?;
        if !due.is_empty() {
            pass(context, &due, now, started_ms, config.missed_runs).await?;
        }
        let next = store::next_due_ms(context.db().pool()).await?;
        let wait = next.map_or(POLL, |due| {
            Duration::from_millis(u64::try_from(due - crate::now_ms()).unwrap_or(0)).min(POLL)
        });
        let manager = context
            .instance()
            .ok_or("the test manager has no instance")?;
        tokio::select! {
            () = task.cancelled() => return Ok(()),
            () = manager.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass over the due schedules: decide each, **claim** them all in one transaction (a
/// row is claimed only if its next run time is still the one read, so two processes on one
/// database never both run a schedule), then queue the claimed ones' tests.
async fn pass(
    context: &PluginContext<TestManager>,
    due: &[ScheduleRow],
    now: i64,
    started_ms: i64,
    policy: MissedRuns,
) -> Result<(), BoxError> {
    let db = context.db();
    let mut planned = Vec::with_capacity(due.len());
    for row in due {
        match Schedule::parse(&row.expression, Some(&row.timezone)) {
            Ok(schedule) => planned.push((row, decide(&schedule, row, now, started_ms, policy))),
            Err(error) => {
                // Stored by an older binary whose grammar differed: stop it rather than guess.
                plexichat::tracing::warn!(schedule = row.id, %error, "pausing a schedule this binary cannot read");
                store::set_enabled(db.pool(), row.id, false, None, &plexichat::timestamp()).await?;
            }
        }
    }
    let advances: Vec<store::Advance> = planned
        .iter()
        .map(|(row, decision)| store::Advance {
            id: row.id,
            expected_ms: row.next_run_ms,
            next_run_ms: decision.next_run_ms,
            last_run_ms: decision.run.then_some(now),
        })
        .collect();
    let claimed = store::claim_all(db.pool(), &advances).await?;
    let mut done = Vec::with_capacity(advances.len());
    for (((row, decision), advance), claimed) in planned.iter().zip(&advances).zip(claimed) {
        if !claimed {
            // Another process on this database took it.
            continue;
        }
        done.push(*advance);
        if decision.run {
            queue(context, row);
        } else {
            plexichat::tracing::info!(
                schedule = row.id,
                "skipping the run missed while the server was down"
            );
        }
    }
    announce(context, &done);
    Ok(())
}

/// Queues a schedule's tests: its one test, or every test of its plugin.
fn queue(context: &PluginContext<TestManager>, row: &ScheduleRow) {
    let plugins = context.plugins();
    let registry = plugins.registry();
    if registry.plugin(&row.plugin).is_none() {
        plexichat::tracing::warn!(schedule = row.id, plugin = %row.plugin, "a scheduled plugin is not in this binary");
        return;
    }
    let priority = parse_priority(&row.priority).unwrap_or_default();
    let tests: Vec<String> = match &row.test {
        Some(test) => vec![test.clone()],
        None => registry
            .plugin_tests_of(&row.plugin)
            .map(|test| test.descriptor.name.to_string())
            .collect(),
    };
    for test in tests {
        let request = RunRequest::new(row.plugin.clone(), test)
            .priority(priority)
            .trigger(Trigger::Schedule)
            .timeout(
                row.timeout_ms
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(Duration::from_millis),
            );
        if let Err(error) = crate::submit(context, request, Some(row.id)) {
            plexichat::tracing::warn!(schedule = row.id, %error, "a scheduled test cannot run in this binary");
        }
    }
}

/// One `schedule_changed` event for a pass of the scheduler, however many schedules it
/// advanced, so that live views are not flooded.
fn announce(context: &PluginContext<TestManager>, advances: &[store::Advance]) {
    let Some(manager) = context.instance().filter(|_| !advances.is_empty()) else {
        return;
    };
    let (ran, skipped): (Vec<&store::Advance>, Vec<&store::Advance>) = advances
        .iter()
        .partition(|advance| advance.last_run_ms.is_some());
    manager.schedule_changed(json!({
        "type": "schedule_changed",
        "change": "ran",
        "schedule_ids": ran.iter().map(|advance| advance.id).collect::<Vec<_>>(),
        "skipped_missed_run_ids": skipped.iter().map(|advance| advance.id).collect::<Vec<_>>(),
    }));
}

async fn prune(context: &PluginContext<TestManager>, config: &crate::TestManagerConfig) {
    let older_than = crate::now_ms() - i64::from(config.retention_days) * 24 * 60 * 60 * 1000;
    match store::prune(
        context.db().pool(),
        older_than,
        i64::from(config.retention_runs),
    )
    .await
    {
        Ok(0) => {}
        Ok(deleted) => plexichat::tracing::info!(deleted, "pruned the test history"),
        Err(error) => plexichat::tracing::warn!(%error, "cannot prune the test history"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::parse_time;

    fn row(next: &str) -> ScheduleRow {
        ScheduleRow {
            id: 1,
            plugin: "p".into(),
            test: None,
            expression: "every_10_minutes".into(),
            timezone: "UTC".into(),
            priority: "medium".into(),
            timeout_ms: None,
            enabled: true,
            anchor_ms: ms("2026-01-01T00:00:00Z"),
            next_run_ms: Some(ms(next)),
            last_run_ms: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn ms(text: &str) -> i64 {
        parse_time(text).unwrap().as_millisecond()
    }

    /// A simulated clock: the server was down from 00:05 to 01:02, so the 00:10 … 01:00 runs
    /// were missed.
    #[test]
    fn missed_runs_follow_the_policy_and_keep_the_rhythm() {
        let schedule = Schedule::parse("every_10_minutes", None).unwrap();
        let missed = row("2026-01-01T00:10:00Z");
        let (now, started) = (ms("2026-01-01T01:02:00Z"), ms("2026-01-01T01:02:00Z"));
        let once = decide(&schedule, &missed, now, started, MissedRuns::RunOnce);
        assert_eq!(
            once,
            Decision {
                run: true,
                next_run_ms: Some(ms("2026-01-01T01:10:00Z"))
            }
        );
        let skip = decide(&schedule, &missed, now, started, MissedRuns::Skip);
        assert_eq!(
            skip,
            Decision {
                run: false,
                next_run_ms: Some(ms("2026-01-01T01:10:00Z"))
            }
        );
        // Due while the server runs: runs whatever the policy.
        let due = row("2026-01-01T01:10:00Z");
        let on_time = decide(
            &schedule,
            &due,
            ms("2026-01-01T01:10:00.004Z"),
            started,
            MissedRuns::Skip,
        );
        assert_eq!(
            on_time,
            Decision {
                run: true,
                next_run_ms: Some(ms("2026-01-01T01:20:00Z"))
            }
        );
    }
}
