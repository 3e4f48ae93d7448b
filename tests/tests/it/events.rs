//! Event dispatch: by type, in priority order across crates, with failures contained.

use plexichat::Runtime;
use plexichat::testing::TestApp;

use crate::{Harness, Ping};

fn harness(runtime: &Runtime) -> std::sync::Arc<Harness> {
    runtime.plugin::<Harness>().expect("test_harness is linked")
}

#[tokio::test]
async fn handlers_run_by_descending_priority_and_failures_do_not_stop_the_rest() {
    let app = TestApp::linked().await;
    let report = app.runtime.publish(&Ping { id: 7 }).await;
    assert_eq!(
        harness(&app.runtime).log(),
        ["first 7", "async 7", "fails 7", "panics 7", "last 7"]
    );
    assert_eq!(report.succeeded, 3);
    let failures: Vec<(&str, &str)> = report
        .failures
        .iter()
        .map(|failure| (failure.handler, failure.error.as_str()))
        .collect();
    assert_eq!(
        failures,
        [
            ("ping_fails", "refused on purpose"),
            ("ping_panics", "panicked: handler panicked on purpose"),
        ]
    );
}

#[tokio::test]
async fn failures_are_counted_per_handler() {
    let app = TestApp::linked().await;
    for id in 0..3 {
        app.runtime.publish(&Ping { id }).await;
    }
    let stats = app.runtime.handler_stats("test_harness");
    let panics = stats
        .iter()
        .find(|stat| stat.handler == "ping_panics")
        .expect("ping_panics registered");
    assert_eq!((panics.calls, panics.failures), (3, 3));
    let first = stats
        .iter()
        .find(|stat| stat.handler == "ping_first")
        .unwrap();
    assert_eq!((first.calls, first.failures), (3, 0));
}

#[tokio::test]
async fn an_event_reaches_handlers_in_other_crates_in_priority_order() {
    let app = TestApp::linked().await;
    let (status, _) = app.post("/api/v1/awesome/action", ()).await;
    assert_eq!(status, 200);
    // The harness (priority 20) ran, and awesome_audit (priority 10) ran after it.
    assert_eq!(harness(&app.runtime).log(), ["action 1"]);
    let (_, audit) = app.get("/api/v1/awesome-audit/events").await;
    assert_eq!(audit["total"], 1);
    let order: Vec<&str> = app
        .runtime
        .registry()
        .handlers()
        .iter()
        .filter(|handler| handler.descriptor.event == "awesome.action.completed")
        .map(|handler| handler.plugin)
        .collect();
    assert_eq!(order, ["test_harness", "awesome_audit"]);
}

#[tokio::test]
async fn events_of_other_types_reach_no_handler() {
    #[plexichat::event(name = "test.unheard")]
    struct Unheard;
    let app = TestApp::linked().await;
    let report = app.runtime.publish(&Unheard).await;
    assert_eq!((report.succeeded, report.failures.len()), (0, 0));
    assert!(harness(&app.runtime).log().is_empty());
}

#[tokio::test]
async fn each_runtime_has_its_own_plugin_state() {
    let (one, two) = (TestApp::linked().await, TestApp::linked().await);
    one.runtime.publish(&Ping { id: 1 }).await;
    assert_eq!(harness(&one.runtime).log().len(), 5);
    assert!(harness(&two.runtime).log().is_empty());
}
