//! The lifecycle, with fault-injecting test plugins: init failures are contained and disable
//! dependents while the rest serves, `--strict` refuses to serve, background tasks are
//! restarted with backoff and stopped at shutdown, hooks run in dependency order and in
//! reverse at shutdown, and `/ready` tells the truth.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fault_base::FaultBase;
use plexichat::config::Config;
use plexichat::server::{self, ServerError, ServerOptions};
use plexichat::testing::TestApp;
use plexichat::{PluginStatus, Registry, Runtime};
use serde_json::json;

// Linked so that "everything else keeps serving" has something to serve.
extern crate fault_dependent as _;
extern crate my_awesome_plugin as _;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Every hook of both fixtures, dependencies first at start and last at shutdown.
const FULL_LIFECYCLE: [&str; 4] = [
    "init fault_base",
    "init fault_dependent",
    "stop fault_dependent",
    "stop fault_base",
];

fn runtime(fault_config: &str) -> Runtime {
    let registry = Registry::linked().expect("registry");
    let text = format!("[plugins.fault_base]\n{fault_config}\n");
    let config = Config::parse(&text, &[], &registry, "test.toml").expect("valid config");
    Runtime::with_config(registry, config)
}

fn log(runtime: &Runtime) -> Vec<String> {
    runtime.plugin::<FaultBase>().unwrap().log()
}

#[tokio::test]
async fn an_init_failure_disables_dependents_while_the_rest_serves() {
    let runtime = runtime("fail_init = true");
    let failures = runtime.start(TIMEOUT).await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].plugin, "fault_base");
    assert_eq!(failures[0].error, "init failed on purpose");
    assert_eq!(
        runtime.status("fault_base"),
        Some(PluginStatus::Failed {
            error: "init failed on purpose".into()
        })
    );
    assert_eq!(
        runtime.status("fault_dependent"),
        Some(PluginStatus::DisabledBecauseDependency {
            dependency: "fault_base"
        })
    );
    assert_eq!(
        log(&runtime),
        ["init fault_base"],
        "the dependent's init never ran"
    );

    let app = TestApp::new(runtime);
    assert_eq!(
        app.get("/api/v1/awesome/status").await.0,
        200,
        "the rest serves"
    );
    let (status, body) = app.get("/fault/ping").await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (
            503,
            &json!("plugin `fault_base` failed: init failed on purpose")
        )
    );
    assert_eq!(app.get("/api/v1/fault-dependent/ping").await.0, 503);

    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503);
    assert_eq!(
        body["plugins"],
        json!({
            "fault_base": "plugin `fault_base` failed: init failed on purpose",
            "fault_dependent": "plugin `fault_dependent` is disabled because its dependency `fault_base` is not running",
        })
    );
}

#[tokio::test]
async fn panicking_and_slow_inits_are_failures_too() {
    let panicking = runtime("panic_init = true");
    let failures = panicking.start(TIMEOUT).await;
    assert_eq!(failures[0].error, "panicked: init panicked on purpose");

    let slow = runtime("init_delay_ms = 60000");
    let failures = slow.start(Duration::from_millis(50)).await;
    assert_eq!(failures[0].plugin, "fault_base");
    assert_eq!(failures[0].error, "init did not finish within 50ms");
}

#[tokio::test]
async fn strict_mode_refuses_to_serve_and_names_the_failure() {
    let runtime = runtime("fail_init = true");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = ServerOptions {
        strict: true,
        ..ServerOptions::default()
    };
    let error = server::serve(listener, runtime, options, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(error, ServerError::Strict(_)));
    assert_eq!(
        error.to_string(),
        "refusing to serve in strict mode: plugins failed to start: `fault_base`: init failed on purpose"
    );
}

#[tokio::test]
async fn a_failing_task_is_restarted_with_backoff_and_reported() {
    let runtime = runtime("task_failures = 3");
    assert!(runtime.start(TIMEOUT).await.is_empty());
    // Three failures take 100 + 200 + 400 ms of backoff; poll for the settled state.
    let mut status = None;
    for _ in 0..100 {
        let tasks = runtime.task_status("fault_base");
        if tasks[0].restarts == 3 && tasks[0].state == "running" {
            status = Some(tasks[0].clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = status.expect("the task settled after three restarts");
    assert_eq!(status.name, "flaky");
    assert_eq!(status.last_error.as_deref(), Some("flaky error 3"));

    let app = TestApp::new(runtime.clone());
    let (_, health) = app.get("/api/v1/plugins/fault_base/health").await;
    assert_eq!(health["tasks"][0]["restarts"], 3);
    assert_eq!(health["ready"], true);

    assert!(
        runtime.stop(TIMEOUT).await.is_empty(),
        "every task stopped in time"
    );
    assert_eq!(runtime.task_status("fault_base")[0].state, "stopped");
}

#[tokio::test]
async fn hooks_run_in_dependency_order_and_in_reverse_at_shutdown() {
    let runtime = runtime("");
    assert!(runtime.start(TIMEOUT).await.is_empty());
    runtime.stop(TIMEOUT).await;
    assert_eq!(log(&runtime), FULL_LIFECYCLE);
}

#[tokio::test]
async fn ready_is_503_until_started_and_while_a_check_fails() {
    let runtime = runtime("not_ready = true");
    let app = TestApp::new(runtime.clone());
    let (status, body) = app.get("/ready").await;
    assert_eq!(
        (status.as_u16(), &body["plugins"]["*"]),
        (503, &json!("starting: plugins are still initialising"))
    );

    runtime.start(TIMEOUT).await;
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503);
    assert_eq!(
        body["plugins"],
        json!({ "fault_base": "plugin `fault_base` is not ready: configured not ready" })
    );
    let (status, health) = app.get("/api/v1/plugins/fault_base/health").await;
    assert_eq!((status.as_u16(), &health["ready"]), (503, &json!(false)));

    let healthy = self::runtime("");
    healthy.start(TIMEOUT).await;
    assert_eq!(
        TestApp::new(healthy).get("/ready").await,
        (200.try_into().unwrap(), json!({ "ready": true }))
    );
}

#[tokio::test]
async fn a_served_server_runs_the_whole_lifecycle() {
    let runtime = runtime("");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServerOptions {
        admin_token: Some(Arc::from("t")),
        ..ServerOptions::default()
    };
    let server = tokio::spawn(server::serve(listener, runtime.clone(), options, async {
        stopped.await.ok();
    }));
    let mut ready = false;
    for _ in 0..100 {
        if plexichat_tests::request(addr, "GET", "/ready").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "the server became ready");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert_eq!(log(&runtime), FULL_LIFECYCLE);
}
