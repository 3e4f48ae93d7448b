//! Running a selection of tests to the end, in-process, and reporting them: a table for
//! people and JUnit XML for CI (what `plugins self-test` and `tests run` print and write).

use std::fmt::Write as _;

use crate::selftest::runner::{
    Priority, RunRequest, RunStatus, Runner, SubmitError, TestRun, Trigger,
};
use plexichat_kernel::runtime::{InitFailure, Runtime};

/// Which tests to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every test of every plugin.
    All,
    /// Every test of one plugin.
    Plugin(String),
    /// One test: plugin, then test.
    Test(String, String),
}

impl Selection {
    /// From the command line's `[PLUGIN [TEST]]`.
    pub fn from_args(plugin: Option<String>, test: Option<String>) -> Selection {
        match (plugin, test) {
            (Some(plugin), Some(test)) => Selection::Test(plugin, test),
            (Some(plugin), None) => Selection::Plugin(plugin),
            (None, _) => Selection::All,
        }
    }
}

/// Queues every selected test and waits for all of them; results in plugin and test order.
pub async fn run_selection(
    runtime: &Runtime,
    selection: &Selection,
    priority: Priority,
    trigger: Trigger,
) -> Result<Vec<TestRun>, SubmitError> {
    let runner = Runner::of(runtime);
    let registry = runtime.registry();
    let requests: Vec<RunRequest> = match selection {
        Selection::All => registry
            .plugin_tests()
            .iter()
            .map(|test| RunRequest::new(test.plugin, test.descriptor.name))
            .collect(),
        Selection::Plugin(plugin) => {
            if registry.plugin(plugin).is_none() {
                return Err(SubmitError::UnknownPlugin(plugin.clone()));
            }
            registry
                .plugin_tests_of(plugin)
                .map(|test| RunRequest::new(test.plugin, test.descriptor.name))
                .collect()
        }
        Selection::Test(plugin, test) => vec![RunRequest::new(plugin.clone(), test.clone())],
    };
    let mut tickets = Vec::with_capacity(requests.len());
    for request in requests {
        tickets.push(runner.submit(runtime, request.priority(priority).trigger(trigger))?);
    }
    let mut runs = Vec::with_capacity(tickets.len());
    for ticket in tickets {
        runs.push(ticket.wait().await);
    }
    Ok(runs)
}

/// What [`run_in_process`] did.
#[derive(Debug)]
pub struct InProcessReport {
    /// Plugins whose `init` failed (their tests are skipped).
    pub init_failures: Vec<InitFailure>,
    /// Every selected test's run.
    pub runs: Vec<TestRun>,
}

/// Starts every plugin of `runtime` (as a server would, without a socket), runs the selection,
/// and shuts the plugins down again: how the command line runs tests without a server.
pub async fn run_in_process(
    runtime: &Runtime,
    selection: &Selection,
) -> Result<InProcessReport, SubmitError> {
    // The schedules are the server's: this process runs what it was asked for and stops.
    runtime.without_scheduled_jobs();
    Runner::of(runtime).use_configured_server(runtime);
    let init_failures = runtime.start().await;
    let runs = run_selection(runtime, selection, Priority::Medium, Trigger::Cli).await;
    runtime.shutdown().await;
    Ok(InProcessReport {
        init_failures,
        runs: runs?,
    })
}

/// Whether the process should fail: a run failed (passed, flaky and skipped do not), or a
/// plugin did not start (its tests were skipped, which must not pass for a success).
pub fn should_fail(report: &InProcessReport) -> bool {
    !report.init_failures.is_empty() || any_failed(&report.runs)
}

/// Whether any run failed (passed, flaky and skipped do not).
pub fn any_failed(runs: &[TestRun]) -> bool {
    runs.iter().any(|run| !run.status.is_ok())
}

/// One line per run and a summary: `passed  awesome::status_answers  3 ms`.
pub fn table(runs: &[TestRun]) -> String {
    let width = runs
        .iter()
        .map(|run| run.plugin.len() + run.test.len() + 2)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for run in runs {
        let name = format!("{}::{}", run.plugin, run.test);
        let _ = write!(
            out,
            "{:<8} {name:<width$} {:>6} ms",
            run.status.as_str(),
            run.duration_ms
        );
        if run.status != RunStatus::Passed {
            let _ = write!(out, "  {}", run.message);
        }
        out.push('\n');
    }
    let count = |status: RunStatus| runs.iter().filter(|run| run.status == status).count();
    let _ = writeln!(
        out,
        "{} tests: {} passed, {} flaky, {} failed, {} errors, {} timed out, {} skipped",
        runs.len(),
        count(RunStatus::Passed),
        count(RunStatus::Flaky),
        count(RunStatus::Failed),
        count(RunStatus::Error),
        count(RunStatus::Timeout),
        count(RunStatus::Skipped),
    );
    out
}

/// JUnit XML, one `<testsuite>` per plugin: failures and time-outs as `<failure>`, panics as
/// `<error>`, skipped runs as `<skipped>`, and a flaky pass as a passing case with a
/// `<flakyFailure>` (as cargo-nextest writes it).
pub fn junit(runs: &[TestRun]) -> String {
    let all: Vec<&TestRun> = runs.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"plexichat\" {} time=\"{:.3}\">",
        junit_counts(&all),
        junit_seconds(&all)
    );
    // One suite per plugin, in the order the plugins first appear.
    let mut seen = std::collections::BTreeSet::new();
    for plugin in runs.iter().map(|run| run.plugin.as_str()) {
        if !seen.insert(plugin) {
            continue;
        }
        let suite: Vec<&TestRun> = runs.iter().filter(|run| run.plugin == plugin).collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" {} time=\"{:.3}\">",
            xml(plugin),
            junit_counts(&suite),
            junit_seconds(&suite)
        );
        for run in suite {
            junit_case(&mut out, run);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The time `runs` took together, in seconds, for a `time` attribute.
fn junit_seconds(runs: &[&TestRun]) -> f64 {
    runs.iter().map(|run| run.duration_ms).sum::<u64>() as f64 / 1000.0
}

/// The `tests`, `failures`, `errors` and `skipped` attributes of a suite of `runs`.
fn junit_counts(runs: &[&TestRun]) -> String {
    let failures = runs
        .iter()
        .filter(|run| matches!(run.status, RunStatus::Failed | RunStatus::Timeout))
        .count();
    let errors = runs
        .iter()
        .filter(|run| run.status == RunStatus::Error)
        .count();
    let skipped = runs
        .iter()
        .filter(|run| run.status == RunStatus::Skipped)
        .count();
    format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\"",
        runs.len()
    )
}

/// Writes `run`'s `<testcase>`, with the element that says how it did unless it passed.
fn junit_case(out: &mut String, run: &TestRun) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
        xml(&run.test),
        xml(&run.plugin),
        run.duration_ms as f64 / 1000.0
    );
    let error = run.error.as_deref().unwrap_or(&run.message);
    let inner = match run.status {
        RunStatus::Passed => None,
        RunStatus::Failed | RunStatus::Timeout => Some(format!(
            "<failure message=\"{}\" type=\"{}\">{}</failure>",
            xml(&run.message),
            run.status.as_str(),
            xml(error)
        )),
        RunStatus::Error => Some(format!(
            "<error message=\"{}\" type=\"panic\">{}</error>",
            xml(&run.message),
            xml(error)
        )),
        RunStatus::Skipped => Some(format!("<skipped message=\"{}\"/>", xml(&run.message))),
        RunStatus::Flaky => Some(format!(
            "<flakyFailure message=\"{}\" type=\"flaky\"/>",
            xml(&run.message)
        )),
    };
    match inner {
        None => out.push_str("/>\n"),
        Some(inner) => {
            let _ = writeln!(out, ">\n      {inner}\n    </testcase>");
        }
    }
}

/// Text escaped for an XML attribute or element (the HTML escape is XML's too); control
/// characters XML 1.0 forbids are dropped.
fn xml(text: &str) -> String {
    let allowed: String = text
        .chars()
        .filter(|&c| matches!(c, '\n' | '\t' | '\r') || u32::from(c) >= 0x20)
        .collect();
    plexichat_web::html::escape_html(&allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexichat_kernel::abi::plugin_test::TestCategory;

    fn run(plugin: &str, test: &str, status: RunStatus, message: &str) -> TestRun {
        TestRun {
            id: "run-1".into(),
            plugin: plugin.into(),
            test: test.into(),
            category: TestCategory::Functionality,
            status,
            attempts: 1,
            duration_ms: 1500,
            total_ms: 1500,
            message: message.into(),
            error: (!status.is_ok()).then(|| message.to_string()),
            started_at: String::new(),
            finished_at: String::new(),
            trigger: Trigger::Cli,
            priority: Priority::Medium,
            abandoned: false,
        }
    }

    #[test]
    fn junit_counts_each_outcome_in_its_suite_and_escapes_messages() {
        let runs = vec![
            run("a", "ok", RunStatus::Passed, "passed"),
            run("a", "bad", RunStatus::Failed, "expected <1> & got \"2\""),
            run("b", "boom", RunStatus::Error, "panicked: x"),
            run("b", "off", RunStatus::Skipped, "plugin `b` is disabled"),
            run("b", "wobbly", RunStatus::Flaky, "passed on attempt 2 of 3"),
        ];
        let xml = junit(&runs);
        assert!(xml.contains(
            "<testsuites name=\"plexichat\" tests=\"5\" failures=\"1\" errors=\"1\" skipped=\"1\" time=\"7.500\">"
        ), "{xml}");
        assert!(xml.contains(
            "<testsuite name=\"a\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\""
        ));
        assert!(xml.contains("<testcase name=\"ok\" classname=\"a\" time=\"1.500\"/>"));
        assert!(xml.contains("expected &lt;1&gt; &amp; got &quot;2&quot;"));
        assert!(xml.contains("<error message=\"panicked: x\" type=\"panic\">"));
        assert!(xml.contains("<skipped message=\"plugin `b` is disabled\"/>"));
        assert!(xml.contains("<flakyFailure"));
        assert!(any_failed(&runs));
        assert!(!any_failed(&runs[..1]));
        let table = table(&runs);
        assert!(
            table
                .contains("5 tests: 1 passed, 1 flaky, 1 failed, 1 errors, 0 timed out, 1 skipped"),
            "{table}"
        );
    }
}
