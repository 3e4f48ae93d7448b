//! The plugin test runner: outcomes (pass, fail, panic, time-outs async and sync, flaky
//! after a retry, skipped), retries, one run per test at a time, priorities under a flood,
//! and the listing of what a binary's plugins test.

use std::time::Duration;

use plexichat::testing::TestApp;
use plexichat::tests::{
    Priority, RetryPolicy, RunRequest, RunStatus, Runner, RunnerEvent, RunnerOptions, SubmitError,
    TestRun,
};

async fn run(app: &TestApp, request: RunRequest) -> TestRun {
    Runner::of(&app.runtime)
        .submit(&app.runtime, request)
        .expect("the test exists")
        .wait()
        .await
}

fn harness(test: &str) -> RunRequest {
    RunRequest::new("test_harness", test)
}

/// Retries wait a millisecond or two, so that the suite does not wait for backoff.
fn quick_retries(app: &TestApp, workers: usize) {
    Runner::of(&app.runtime).configure(RunnerOptions {
        workers,
        retry: RetryPolicy {
            base: Duration::from_millis(1),
            factor: 2.0,
            cap: Duration::from_millis(5),
        },
        ..RunnerOptions::default()
    });
}

#[tokio::test]
async fn each_outcome_is_recorded_with_its_status_and_message() {
    let app = TestApp::linked().await;
    quick_retries(&app, 4);

    let passed = run(&app, harness("harness_passes")).await;
    assert_eq!(passed.status, RunStatus::Passed, "{passed:?}");
    assert_eq!((passed.attempts, passed.error.as_deref()), (1, None));

    let failed = run(&app, harness("harness_fails")).await;
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("expected 2, got 3"));
    assert_eq!(failed.category.as_str(), "analytics");

    let panicked = run(&app, harness("harness_panics")).await;
    assert_eq!(panicked.status, RunStatus::Error);
    assert!(
        panicked
            .message
            .contains("panicked: the harness test panicked on purpose"),
        "{panicked:?}"
    );

    let hung = run(
        &app,
        harness("harness_hangs").timeout(Some(Duration::from_millis(100))),
    )
    .await;
    assert_eq!(hung.status, RunStatus::Timeout);
    assert_eq!(hung.message, "timed out after 100ms");
    assert!(!hung.abandoned, "an async test is cancelled, not abandoned");

    let through_client = run(&app, harness("harness_blocks_on_the_client")).await;
    assert_eq!(
        through_client.status,
        RunStatus::Passed,
        "{through_client:?}"
    );
}

#[tokio::test]
async fn a_sync_test_past_its_limit_is_abandoned_without_holding_a_worker() {
    let app = TestApp::linked().await;
    // One worker: if the hung thread held it, the next test could never run.
    quick_retries(&app, 1);
    let runner = Runner::of(&app.runtime);
    let hung = run(&app, harness("harness_hangs_sync")).await;
    assert_eq!(hung.status, RunStatus::Timeout, "{hung:?}");
    assert!(hung.abandoned);
    assert!(
        hung.message.contains("its thread was abandoned"),
        "{hung:?}"
    );
    assert_eq!(runner.status().abandoned_threads, 1);

    let next = run(&app, harness("harness_passes")).await;
    assert_eq!(next.status, RunStatus::Passed);
    // Shutting the plugins down does not wait for the thread either.
    let report = app.runtime.shutdown().await;
    assert!(report.stopped.contains(&"test_harness"));
    // When the thread returns at last, it no longer counts.
    for _ in 0..500 {
        if runner.status().abandoned_threads == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the abandoned thread is still counted: {:?}",
        runner.status()
    );
}

#[tokio::test]
async fn failures_are_retried_and_a_pass_after_a_retry_is_flaky() {
    let app = TestApp::linked().await;
    quick_retries(&app, 4);

    let flaky = run(&app, harness("harness_flaky")).await;
    assert_eq!(flaky.status, RunStatus::Flaky, "{flaky:?}");
    assert_eq!(flaky.attempts, 2);
    assert!(
        flaky.message.contains("passed on attempt 2 of 2")
            && flaky.message.contains("first call fails"),
        "{flaky:?}"
    );
    // Its next run passes at once: flaky describes one run, not the test forever.
    let again = run(&app, harness("harness_flaky")).await;
    assert_eq!((again.status, again.attempts), (RunStatus::Passed, 1));

    let failed = run(&app, harness("harness_fails").retries(Some(2))).await;
    assert_eq!((failed.status, failed.attempts), (RunStatus::Failed, 3));
    assert!(failed.message.contains("3 attempts"), "{failed:?}");
}

#[tokio::test]
async fn a_second_request_for_a_running_test_joins_it() {
    let app = TestApp::linked().await;
    let runner = Runner::of(&app.runtime);
    let first = runner
        .submit(&app.runtime, harness("harness_slow"))
        .unwrap();
    let second = runner
        .submit(&app.runtime, harness("harness_slow"))
        .unwrap();
    assert!(!first.joined);
    assert!(second.joined);
    assert_eq!(first.id, second.id);
    let (a, b) = tokio::join!(first.wait(), second.wait());
    assert_eq!(a, b, "both requests get the one run's result");
    // Once it has ended, asking again starts a new run.
    let third = runner
        .submit(&app.runtime, harness("harness_slow"))
        .unwrap();
    assert!(!third.joined);
    assert_ne!(third.id, a.id);
    third.wait().await;
}

#[tokio::test]
async fn a_flood_of_low_priority_runs_does_not_starve_a_critical_one() {
    let app = TestApp::linked().await;
    quick_retries(&app, 1);
    let runner = Runner::of(&app.runtime);
    let mut events = runner.subscribe();
    // The one worker is busy with this while the others queue.
    let blocker = runner
        .submit(
            &app.runtime,
            harness("harness_slow").priority(Priority::Low),
        )
        .unwrap();
    let mut started = Vec::new();
    while started.is_empty() {
        match events.recv().await.unwrap() {
            RunnerEvent::Started { id, test, .. } => started.push((id, test)),
            _ => continue,
        }
    }
    let mut tickets = Vec::new();
    for n in 0..8 {
        tickets.push(
            runner
                .submit(
                    &app.runtime,
                    harness(&format!("harness_filler_{n}")).priority(Priority::Low),
                )
                .unwrap(),
        );
    }
    let critical = runner
        .submit(
            &app.runtime,
            harness("harness_passes").priority(Priority::Critical),
        )
        .unwrap();
    let critical_id = critical.id.clone();
    blocker.wait().await;
    critical.wait().await;
    for ticket in tickets {
        ticket.wait().await;
    }
    while let Ok(event) = events.try_recv() {
        if let RunnerEvent::Started { id, test, .. } = event {
            started.push((id, test));
        }
    }
    assert_eq!(started.len(), 10, "{started:?}");
    assert_eq!(started[0].1, "harness_slow", "{started:?}");
    assert_eq!(
        started[1].0, critical_id,
        "the critical run goes next, ahead of every low one queued before it: {started:?}"
    );
    let fillers: Vec<&str> = started[2..].iter().map(|(_, test)| test.as_str()).collect();
    let expected: Vec<String> = (0..8).map(|n| format!("harness_filler_{n}")).collect();
    assert_eq!(
        fillers, expected,
        "equal priorities run in the order they came"
    );
}

#[tokio::test]
async fn tests_of_a_plugin_that_is_not_running_are_skipped() {
    let app = TestApp::linked().await;
    app.runtime
        .set_enabled("test_harness", false)
        .await
        .unwrap();
    let skipped = run(&app, harness("harness_passes")).await;
    assert_eq!((skipped.status, skipped.attempts), (RunStatus::Skipped, 0));
    assert!(skipped.message.contains("disabled"), "{skipped:?}");
    assert!(skipped.status.is_ok(), "a skipped run is no failure");
}

#[tokio::test]
async fn unknown_plugins_and_tests_are_refused_with_what_exists() {
    let app = TestApp::linked().await;
    let runner = Runner::of(&app.runtime);
    assert_eq!(
        runner
            .submit(&app.runtime, RunRequest::new("nope", "x"))
            .unwrap_err(),
        SubmitError::UnknownPlugin("nope".into())
    );
    let error = runner
        .submit(&app.runtime, RunRequest::new("my_awesome_plugin", "nope"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("has no test `nope`; its tests: configuration_is_within_bounds, dashboard_page_is_served"),
        "{error}"
    );
}

#[tokio::test]
async fn the_workspace_plugins_own_tests_pass_on_a_fresh_server() {
    let app = TestApp::linked().await;
    for plugin in ["my_awesome_plugin", "awesome_audit"] {
        let runs = plexichat::tests::run_selection(
            &app.runtime,
            &plexichat::tests::Selection::Plugin(plugin.into()),
            Priority::Medium,
            plexichat::tests::Trigger::Cli,
        )
        .await
        .unwrap();
        assert!(!runs.is_empty(), "{plugin} ships tests");
        for run in runs {
            assert_eq!(run.status, RunStatus::Passed, "{run:?}");
        }
    }
}

#[tokio::test]
async fn the_plugin_listing_names_each_test_with_its_limits() {
    let app = TestApp::linked().await;
    let (status, body) = app.get("/api/v1/plugins/test_harness").await;
    assert_eq!(status, 200);
    let tests = body["tests"].as_array().expect("a list of tests");
    let hangs = tests
        .iter()
        .find(|test| test["name"] == "harness_hangs_sync")
        .expect("listed");
    assert_eq!(hangs["timeout_ms"], 100);
    assert_eq!(hangs["async"], false);
    assert_eq!(
        hangs["description"],
        "Blocks its thread for two seconds (a synchronous test the runner abandons)."
    );
    let names: Vec<&str> = tests
        .iter()
        .filter_map(|test| test["name"].as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "listed by name");
}
