//! Named health checks: readiness checks in `/ready` and the plugin's health, and liveness
//! checks that get a plugin restarted with backoff, then marked failed.

use std::sync::atomic::Ordering;
use std::time::Duration;

use plexichat::PluginStatus;
use plexichat::testing::TestApp;

use crate::Harness;

fn harness(app: &TestApp) -> std::sync::Arc<Harness> {
    app.runtime
        .plugin::<Harness>()
        .expect("test_harness is linked")
}

/// Polls `done` every 20 ms for up to 20 s; the deadline only keeps a broken supervisor from
/// hanging the suite.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn a_failing_readiness_check_makes_ready_and_the_plugin_health_answer_503() {
    let app = TestApp::builder()
        .config("[server]\nready_cache = \"0s\"\n")
        .admin_token("health-token-0123456789-0123456789-ab")
        .start()
        .await;
    assert_eq!(app.get("/ready").await.0, 200);
    harness(&app)
        .failing_readiness
        .store(true, Ordering::SeqCst);
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["plugins"]["test_harness"], "not_ready");
    assert_eq!(app.get("/api/v1/plugins/test_harness/health").await.0, 503);
    assert_eq!(
        app.get("/api/v1/plugins/my_awesome_plugin/health").await.0,
        200
    );
    let (_, admin) = app
        .request("GET", "/api/v1/admin/plugins")
        .admin()
        .send()
        .await;
    assert!(
        admin
            .to_string()
            .contains("check `harness_backend`: the test backend is down"),
        "the admin view names the check and its reason: {admin}"
    );
    harness(&app)
        .failing_readiness
        .store(false, Ordering::SeqCst);
    assert_eq!(app.get("/ready").await.0, 200);
}

fn liveness_config() -> &'static str {
    "[health]\nliveness_interval = \"50ms\"\nfailures_before_restart = 2\nmax_restarts = 2\nrestart_window = \"1h\"\n"
}

#[tokio::test]
async fn a_plugin_failing_liveness_is_restarted_with_backoff_then_marked_failed() {
    let app = TestApp::builder().config(liveness_config()).start().await;
    let plugin = harness(&app);
    assert_eq!(plugin.inits.load(Ordering::SeqCst), 1);
    plugin.failing_liveness.store(true, Ordering::SeqCst);

    eventually("a first restart", || {
        plugin.inits.load(Ordering::SeqCst) >= 2
    })
    .await;
    let liveness = app.runtime.liveness("test_harness").unwrap();
    assert_eq!(liveness.restarts, 1);
    assert!(
        liveness
            .last_failure
            .unwrap()
            .contains("check `harness_alive`: the harness is wedged on purpose")
    );

    eventually("giving up", || {
        app.runtime.status("test_harness") == Some(PluginStatus::Failed)
    })
    .await;
    assert_eq!(
        plugin.inits.load(Ordering::SeqCst),
        3,
        "started once, restarted twice"
    );
    assert_eq!(app.runtime.liveness("test_harness").unwrap().restarts, 2);
    let failure = app.runtime.failure("test_harness").unwrap();
    assert!(
        failure.contains("liveness failed 2 times in a row after 2 restarts"),
        "{failure}"
    );
    // Its routes answer 503, the rest of the server runs.
    assert_eq!(app.get("/test/items/1").await.0, 503);
    assert_eq!(app.get("/api/v1/awesome/status").await.0, 200);
    let (_, info) = app.get("/api/v1/plugins/test_harness").await;
    assert_eq!(info["liveness"]["restarts"], 2);
    assert!(
        info["liveness"].get("last_failure").is_none(),
        "public: no error text"
    );
}

#[tokio::test]
async fn a_plugin_that_recovers_before_the_limit_is_not_restarted() {
    // Five failed rounds in a row would restart it; the test clears the flag within a round
    // or two of the first failure.
    let app = TestApp::builder()
        .config(
            &liveness_config()
                .replace("failures_before_restart = 2", "failures_before_restart = 5"),
        )
        .start()
        .await;
    let plugin = harness(&app);
    plugin.failing_liveness.store(true, Ordering::SeqCst);
    eventually("one failed round", || {
        app.runtime
            .liveness("test_harness")
            .is_some_and(|liveness| liveness.consecutive_failures >= 1)
    })
    .await;
    plugin.failing_liveness.store(false, Ordering::SeqCst);
    eventually("a passing round", || {
        app.runtime
            .liveness("test_harness")
            .is_some_and(|liveness| liveness.consecutive_failures == 0)
    })
    .await;
    assert_eq!(app.runtime.liveness("test_harness").unwrap().restarts, 0);
    assert_eq!(plugin.inits.load(Ordering::SeqCst), 1);
    assert_eq!(
        app.runtime.status("test_harness"),
        Some(PluginStatus::Running)
    );
    assert!(
        app.runtime.liveness("my_awesome_plugin").is_none(),
        "no liveness checks"
    );
}

/// `plexichat tests run` and the other commands that start the plugins may run beside a live
/// server on its data: they start no background task (the Awesome plugin's would count a
/// round in the store at once), and the plugin's health says so.
#[tokio::test]
async fn a_one_shot_process_starts_no_background_task() {
    let runtime = plexichat_kernel::runtime::Runtime::new(plexichat::Registry::linked().unwrap());
    runtime.migrate().await.unwrap();
    runtime.without_scheduled_jobs();
    assert!(runtime.start().await.is_empty());
    let tasks = runtime.task_status("my_awesome_plugin");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].state, "not_started", "{tasks:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kv = plexichat_kernel::storage::kv::KvStore::new(
        runtime.storage().database().clone(),
        "my_awesome_plugin",
    );
    assert_eq!(kv.get("stats").await.unwrap(), None, "the task ran a round");
    runtime.shutdown().await;

    // A server's runtime runs it.
    let runtime = plexichat_kernel::runtime::Runtime::new(plexichat::Registry::linked().unwrap());
    runtime.migrate().await.unwrap();
    assert!(runtime.start().await.is_empty());
    assert_eq!(runtime.task_status("my_awesome_plugin")[0].state, "running");
    runtime.shutdown().await;
}
