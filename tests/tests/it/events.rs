//! Event dispatch: by type, in priority order across crates, with failures contained; and
//! proposals of vetoable events, which pre-handlers modify or reject first.

use plexichat::serde_json::json;
use plexichat::testing::{TestApp, TestBody, problem};
use plexichat_kernel::runtime::Runtime;

use crate::{Harness, Ping, Probe, Proposal};

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
async fn handlers_passed_over_when_time_is_up_are_reported_and_not_counted_as_called() {
    let app = TestApp::linked().await;
    app.runtime.publish(&Ping { id: 1 }).await;
    // A deadline already past: every handler of the run is passed over, and says so.
    let past = tokio::time::Instant::now() - std::time::Duration::from_millis(1);
    let report = app
        .runtime
        .dispatch(
            &Ping { id: 2 },
            plexichat_kernel::runtime::Delivery::Running,
            Some(past),
        )
        .await;
    assert_eq!(report.succeeded, 0);
    assert!(
        report.failures.iter().all(|failure| failure
            .error
            .starts_with("skipped: the phase's time was up")),
        "{report:?}"
    );
    assert_eq!(report.failures.len(), 5, "{report:?}");
    let stats = app.runtime.handler_stats("test_harness");
    let first = stats
        .iter()
        .find(|stat| stat.handler == "ping_first")
        .unwrap();
    assert_eq!((first.calls, first.failures), (1, 1), "{stats:?}");
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

fn proposal(text: &str) -> Proposal {
    Proposal {
        text: text.to_string(),
    }
}

async fn app_with_events(events: &str) -> TestApp {
    TestApp::builder()
        .config(&format!("[events]\n{events}\n"))
        .start()
        .await
}

#[tokio::test]
async fn a_proposal_runs_pre_handlers_in_order_each_seeing_the_last_change_then_post_handlers() {
    let app = TestApp::linked().await;
    let mut event = proposal("hello");
    let report = app.runtime.propose(&mut event).await.expect("accepted");
    assert_eq!(
        event.text, "hello [checked]",
        "the caller holds the final event"
    );
    assert_eq!(
        harness(&app.runtime).log(),
        [
            "pre mark hello",
            "pre slow hello [checked]",
            "pre veto hello [checked]",
            "pre last hello [checked]",
            "post hello [checked]",
        ]
    );
    assert_eq!((report.succeeded, report.failures.len()), (1, 0));
    let stats = app.runtime.handler_stats("test_harness");
    let mark = stats.iter().find(|s| s.handler == "proposal_mark").unwrap();
    assert!(mark.pre);
    assert_eq!((mark.calls, mark.rejections), (1, 0));
}

#[tokio::test]
async fn the_first_rejection_wins_names_its_plugin_and_nothing_after_it_runs() {
    let app = TestApp::linked().await;
    let mut event = proposal("please reject");
    let rejection = app.runtime.propose(&mut event).await.unwrap_err();
    assert_eq!(
        (rejection.plugin, rejection.handler, rejection.event),
        ("test_harness", "proposal_veto", "test.proposal")
    );
    assert_eq!(rejection.reason, "proposals that say reject are rejected");
    assert_eq!(rejection.cause, plexichat::event::RejectionCause::Rejected);
    assert_eq!(
        rejection.to_string(),
        "plugin `test_harness` rejected `test.proposal`: proposals that say reject are rejected"
    );
    let log = harness(&app.runtime).log();
    assert_eq!(log.last().unwrap(), "pre veto please reject [checked]");
    assert!(
        !log.iter()
            .any(|entry| entry.starts_with("post") || entry.starts_with("pre last"))
    );
    let stats = app.runtime.handler_stats("test_harness");
    let veto = stats.iter().find(|s| s.handler == "proposal_veto").unwrap();
    assert_eq!((veto.calls, veto.rejections, veto.failures), (1, 1, 0));
}

#[tokio::test]
async fn a_publish_reaches_only_post_handlers() {
    let app = TestApp::linked().await;
    app.runtime.publish(&proposal("reject")).await;
    assert_eq!(harness(&app.runtime).log(), ["post reject"]);
}

#[tokio::test]
async fn a_pre_handler_out_of_time_is_dropped_counted_and_rejects_by_default() {
    let app = app_with_events("pre_handler_timeout = \"100ms\"").await;
    let rejection = app
        .runtime
        .propose(&mut proposal("slow"))
        .await
        .unwrap_err();
    assert_eq!(rejection.handler, "proposal_slow");
    assert_eq!(rejection.cause, plexichat::event::RejectionCause::TimedOut);
    assert!(
        rejection.reason.contains("did not decide within 100ms"),
        "{}",
        rejection.reason
    );
    let log = harness(&app.runtime).log();
    assert!(
        !log.contains(&"slow finished".to_string()),
        "it was dropped"
    );
    let stats = app.runtime.handler_stats("test_harness");
    let slow = stats.iter().find(|s| s.handler == "proposal_slow").unwrap();
    assert_eq!((slow.timeouts, slow.rejections), (1, 1));
}

#[tokio::test]
async fn with_skip_a_pre_handler_that_fails_to_decide_is_passed_over() {
    let app =
        app_with_events("pre_handler_timeout = \"100ms\"\npre_handler_failure = \"skip\"").await;
    app.runtime
        .propose(&mut proposal("slow"))
        .await
        .expect("the slow handler is skipped");
    app.runtime
        .propose(&mut proposal("panic"))
        .await
        .expect("the panicking handler is skipped");
    let stats = app.runtime.handler_stats("test_harness");
    let find = |name: &str| stats.iter().find(|s| s.handler == name).unwrap().clone();
    assert_eq!(find("proposal_slow").timeouts, 1);
    assert_eq!(find("proposal_veto").failures, 1);
    assert_eq!(
        harness(&app.runtime)
            .log()
            .iter()
            .filter(|entry| entry.starts_with("post"))
            .count(),
        2
    );
}

#[tokio::test]
async fn a_panicking_pre_handler_rejects_naming_its_plugin() {
    let app = TestApp::linked().await;
    let rejection = app
        .runtime
        .propose(&mut proposal("panic"))
        .await
        .unwrap_err();
    assert_eq!(rejection.handler, "proposal_veto");
    assert_eq!(rejection.cause, plexichat::event::RejectionCause::Panicked);
    assert!(
        rejection.reason.contains("panicked on purpose"),
        "{}",
        rejection.reason
    );
}

#[tokio::test]
async fn a_sync_pre_handler_past_its_limit_is_counted_and_its_verdict_stands() {
    let app = app_with_events("pre_handler_timeout = \"50ms\"").await;
    app.runtime
        .propose(&mut proposal("slow sync"))
        .await
        .expect("a sync handler cannot be interrupted; it accepted");
    let stats = app.runtime.handler_stats("test_harness");
    let slow = stats
        .iter()
        .find(|s| s.handler == "proposal_slow_sync")
        .unwrap();
    assert_eq!((slow.timeouts, slow.rejections), (1, 0));
}

#[tokio::test]
async fn pre_handlers_of_a_plugin_that_is_not_running_have_no_say() {
    let app = TestApp::builder()
        .config("disabled = [\"test_harness\"]\n")
        .start()
        .await;
    let mut event = proposal("reject");
    let report = app
        .runtime
        .propose(&mut event)
        .await
        .expect("nobody objects");
    assert_eq!(event.text, "reject");
    assert_eq!(report.succeeded, 0);
}

#[tokio::test]
async fn a_plugin_in_another_crate_modifies_and_vetoes_a_proposed_action_over_http() {
    let app = TestApp::builder()
        .config("[plugins.awesome_audit]\nrefused_words = [\"Spam\"]\n")
        .start()
        .await;
    let (status, body) = app
        .post("/api/v1/awesome/action", json!({ "note": "  tidy me  " }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["note"], "tidy me",
        "awesome_audit's pre-handler trimmed it"
    );

    let (status, body) = app
        .post("/api/v1/awesome/action", json!({ "note": "buy SPAM now" }))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        problem(
            403,
            "forbidden",
            "plugin `awesome_audit` rejected `awesome.action.requested`: the note contains the refused word `Spam`",
            json!({
                "rejected_by": "awesome_audit",
                "handler": "screen_action",
                "event": "awesome.action.requested",
                "reason": "the note contains the refused word `Spam`",
            })
        )
    );
    let (_, status) = app.get("/api/v1/awesome/status").await;
    assert_eq!(
        status["stats"]["actions_performed"], 1,
        "the refused action did not happen"
    );
    let (_, audit) = app.get("/api/v1/awesome-audit/events").await;
    assert_eq!(audit["total"], 1);
    assert_eq!(audit["events"][0]["payload"]["note"], "tidy me");

    let (status, body) = app
        .request("POST", "/api/v1/awesome/action")
        .body(TestBody::raw(None, "note"))
        .send()
        .await;
    assert_eq!(status, 415, "a body without its content type: {body}");
    let (status, body) = app
        .post("/api/v1/awesome/action", json!({ "note": 3 }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["pointer"], "/note");
}

#[tokio::test]
async fn a_handler_gets_no_other_plugins_context_even_behind_an_alias() {
    let app = TestApp::linked().await;
    let report = app.runtime.publish(&Probe).await;
    assert_eq!(report.succeeded, 0);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let failure = &report.failures[0];
    assert_eq!(failure.handler, "probe_with_their_context");
    assert!(
        failure
            .error
            .contains("asked for the context of plugin `my_awesome_plugin`"),
        "{}",
        failure.error
    );
}
