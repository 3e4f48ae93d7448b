//! Statistics over the stored runs, per test, per plugin and overall: counts by status,
//! success rate, duration percentiles, flaky count, and when each test last changed status.

use std::collections::BTreeMap;

use plexichat::prelude::*;

use crate::store::RunFact;

/// Counts and rates over a set of runs.
#[payload(response)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Runs stored.
    pub runs: u64,
    /// Passed on the first attempt.
    pub passed: u64,
    /// Returned an error every time.
    pub failed: u64,
    /// Panicked.
    pub error: u64,
    /// Overran the time limit.
    pub timeout: u64,
    /// Passed only after a retry.
    pub flaky: u64,
    /// Not run (the plugin was not running).
    pub skipped: u64,
    /// Passed and flaky runs over the runs that ran (skipped ones left out), 0 to 1; `None`
    /// when nothing ran.
    pub success_rate: Option<f64>,
    /// Median duration in milliseconds of the runs that ran.
    pub duration_p50_ms: Option<i64>,
    /// 95th percentile duration in milliseconds.
    pub duration_p95_ms: Option<i64>,
}

/// One test's statistics.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct TestStatistics {
    /// The plugin.
    pub plugin_name: String,
    /// The test.
    pub test_name: String,
    /// Its counts and rates.
    #[serde(flatten)]
    pub summary: Summary,
    /// How its latest run ended.
    pub last_status: String,
    /// When its latest run started.
    pub last_run_at: String,
    /// When its status last changed: the start of the first run of its current streak.
    pub last_status_change_at: String,
}

/// One plugin's statistics.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct PluginStatistics {
    /// The plugin.
    pub plugin_name: String,
    /// Its tests' runs together.
    #[serde(flatten)]
    pub summary: Summary,
    /// Tests whose latest run did not pass (failed, error or timeout).
    pub failing_tests: u64,
}

/// `GET /tests/statistics`' answer.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct Statistics {
    /// Every stored run together.
    pub overall: Summary,
    /// Per plugin, by name.
    pub plugins: Vec<PluginStatistics>,
    /// Per test, by plugin and name.
    pub tests: Vec<TestStatistics>,
}

/// Statistics as computed once, shared by the requests that come while they hold.
pub(crate) struct Cached {
    /// The lowest and highest run ids they cover (`store::runs_span`).
    pub span: (i64, i64),
    pub value: std::sync::Arc<Statistics>,
}

/// Computes the statistics of `facts`, which are ordered by plugin, test and start.
pub(crate) fn compute(facts: &[RunFact]) -> Statistics {
    let mut tests = Vec::new();
    let mut by_plugin: BTreeMap<&str, (Vec<&RunFact>, u64)> = BTreeMap::new();
    let mut start = 0;
    while start < facts.len() {
        let first = &facts[start];
        let end = start
            + facts[start..]
                .iter()
                .take_while(|fact| fact.plugin == first.plugin && fact.test == first.test)
                .count();
        let runs: Vec<&RunFact> = facts[start..end].iter().collect();
        let last = runs[runs.len() - 1];
        // The current streak: runs from the end while the status stays the same.
        let streak_start = runs
            .iter()
            .rposition(|fact| fact.status != last.status)
            .map_or(0, |index| index + 1);
        tests.push(TestStatistics {
            plugin_name: first.plugin.clone(),
            test_name: first.test.clone(),
            summary: summarise(&runs),
            last_status: last.status.clone(),
            last_run_at: last.started_at.clone(),
            last_status_change_at: runs[streak_start].started_at.clone(),
        });
        let failing = matches!(last.status.as_str(), "failed" | "error" | "timeout");
        let entry = by_plugin.entry(first.plugin.as_str()).or_default();
        entry.0.extend(runs);
        entry.1 += u64::from(failing);
        start = end;
    }
    let plugins = by_plugin
        .into_iter()
        .map(|(plugin, (runs, failing))| PluginStatistics {
            plugin_name: plugin.to_string(),
            summary: summarise(&runs),
            failing_tests: failing,
        })
        .collect();
    let all: Vec<&RunFact> = facts.iter().collect();
    Statistics {
        overall: summarise(&all),
        plugins,
        tests,
    }
}

fn summarise(runs: &[&RunFact]) -> Summary {
    let mut summary = Summary {
        runs: runs.len() as u64,
        ..Summary::default()
    };
    let mut durations = Vec::with_capacity(runs.len());
    for run in runs {
        match run.status.as_str() {
            "passed" => summary.passed += 1,
            "failed" => summary.failed += 1,
            "error" => summary.error += 1,
            "timeout" => summary.timeout += 1,
            "flaky" => summary.flaky += 1,
            _ => summary.skipped += 1,
        }
        if run.status != "skipped" {
            durations.push(run.duration_ms);
        }
    }
    let ran = summary.runs - summary.skipped;
    if ran > 0 {
        summary.success_rate = Some((summary.passed + summary.flaky) as f64 / ran as f64);
    }
    durations.sort_unstable();
    summary.duration_p50_ms = percentile(&durations, 50);
    summary.duration_p95_ms = percentile(&durations, 95);
    summary
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], percent: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(test: &str, status: &str, duration_ms: i64, minute: u32) -> RunFact {
        RunFact {
            plugin: "p".into(),
            test: test.into(),
            status: status.into(),
            duration_ms,
            started_at: format!("2026-01-01T00:{minute:02}:00.000Z"),
        }
    }

    #[test]
    fn rates_percentiles_and_status_changes() {
        let facts = vec![
            fact("a", "passed", 10, 0),
            fact("a", "failed", 20, 1),
            fact("a", "failed", 30, 2),
            fact("a", "skipped", 0, 3),
            fact("b", "passed", 5, 0),
            fact("b", "flaky", 7, 1),
        ];
        let stats = compute(&facts);
        let a = &stats.tests[0];
        assert_eq!(
            (
                a.summary.runs,
                a.summary.passed,
                a.summary.failed,
                a.summary.skipped
            ),
            (4, 1, 2, 1)
        );
        assert_eq!(a.summary.success_rate, Some(1.0 / 3.0));
        assert_eq!(
            (a.summary.duration_p50_ms, a.summary.duration_p95_ms),
            (Some(20), Some(30))
        );
        assert_eq!(a.last_status, "skipped");
        assert_eq!(a.last_status_change_at, "2026-01-01T00:03:00.000Z");
        let b = &stats.tests[1];
        assert_eq!(b.summary.flaky, 1);
        assert_eq!(b.summary.success_rate, Some(1.0));
        assert_eq!(b.last_status_change_at, "2026-01-01T00:01:00.000Z");
        let plugin = &stats.plugins[0];
        assert_eq!((plugin.summary.runs, plugin.failing_tests), (6, 0));
        assert_eq!(stats.overall.runs, 6);
        // A test whose latest run failed counts as failing.
        let failing = compute(&facts[..3]);
        assert_eq!(failing.plugins[0].failing_tests, 1);
        assert_eq!(
            failing.tests[0].last_status_change_at,
            "2026-01-01T00:01:00.000Z"
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(50));
        assert_eq!(percentile(&values, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
