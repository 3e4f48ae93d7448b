//! The lifecycle with fault-injecting test plugins: one table of state transitions (start,
//! disable, enable, init failure, dependency failure, reload, shutdown) with the states and
//! hooks expected after each step; tasks cancelled with their plugin; readiness checked
//! concurrently, cached, and public answers free of error texts; every shutdown phase bounded.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fault_base::FaultBase;
use fault_dependent::FaultDependent;
use plexichat::testing::{TestApp, problem};
use plexichat::{Registry, Secret};
use plexichat_kernel::config::Config;
use plexichat_kernel::runtime::Runtime;
use plexichat_web::{self as server, ServerError, ServerOptions};
use serde_json::{Value, json};

// Linked so that "everything else keeps serving" has something to serve.
extern crate my_awesome_plugin as _;

/// `fault_dependent` is declared `auto_start = false`; most cases start it.
const STARTS_BOTH: &str = "enabled = [\"fault_dependent\"]\n";

fn config(text: &str) -> Config {
    let registry = Registry::linked().expect("registry");
    Config::parse(text, &[], &registry, "test.toml").expect("valid config")
}

fn runtime(text: &str) -> Runtime {
    Runtime::with_config(Registry::linked().expect("registry"), config(text))
}

/// `fault_base`'s test config section plus `extra` top-level text.
fn with_faults(extra: &str, faults: &str) -> String {
    format!("{extra}[plugins.fault_base]\n{faults}\n")
}

fn log(runtime: &Runtime) -> Vec<String> {
    runtime.plugin::<FaultBase>().unwrap().log()
}

/// One step of a case.
#[derive(Debug, Clone, Copy)]
enum Step {
    Start,
    Disable(&'static str),
    Enable(&'static str),
    /// Reload with this text (the runtime applies it as a reloaded file).
    Reload(&'static str),
    Shutdown,
}

/// After each step: the states of `fault_base` and `fault_dependent`, and the hooks that ran
/// during the step, in order.
type Expect = (Step, [&'static str; 2], &'static [&'static str]);

/// Runs `steps` on a runtime configured with `text` and checks each expectation.
async fn check(case: &str, text: &str, steps: &[Expect]) {
    let runtime = runtime(text);
    let mut seen = 0;
    for (index, (step, states, hooks)) in steps.iter().enumerate() {
        let outcome = match *step {
            Step::Start => Ok(runtime.start().await.len()),
            Step::Disable(plugin) => runtime.set_enabled(plugin, false).await.map(|c| c.len()),
            Step::Enable(plugin) => runtime.set_enabled(plugin, true).await.map(|c| c.len()),
            Step::Reload(text) => runtime
                .apply_config(config(text))
                .await
                .map(|report| report.states.len())
                .map_err(|error| panic!("{case}: reload refused: {error}")),
            Step::Shutdown => Ok(runtime.shutdown().await.stopped.len()),
        };
        let _ = outcome;
        let actual = [
            runtime.status("fault_base").unwrap().name(),
            runtime.status("fault_dependent").unwrap().name(),
        ];
        let all = log(&runtime);
        let ran: Vec<&str> = all[seen..].iter().map(String::as_str).collect();
        seen = all.len();
        assert_eq!(
            (actual, ran.as_slice()),
            (*states, *hooks),
            "{case}, step {index} ({step:?}): states, then hooks that ran"
        );
    }
}

#[tokio::test]
async fn every_transition_leaves_the_states_and_hooks_expected() {
    use Step::*;
    const BASE: &str = "fault_base";
    const DEPENDENT: &str = "fault_dependent";
    let both_run = ["running", "running"];
    check(
        "a start runs init in dependency order, a shutdown stop in reverse",
        STARTS_BOTH,
        &[
            (
                Start,
                both_run,
                &["init fault_base", "init fault_dependent"],
            ),
            (Start, both_run, &[]),
            (
                Shutdown,
                ["stopped", "stopped"],
                &["stop fault_dependent", "stop fault_base"],
            ),
            (Enable(BASE), ["stopped", "stopped"], &[]),
        ],
    )
    .await;
    check(
        "disabling at run time stops dependents first; enabling runs init again",
        STARTS_BOTH,
        &[
            (
                Start,
                both_run,
                &["init fault_base", "init fault_dependent"],
            ),
            (
                Disable(BASE),
                ["disabled", "disabled_because_dependency"],
                &["stop fault_dependent", "stop fault_base"],
            ),
            (
                Disable(BASE),
                ["disabled", "disabled_because_dependency"],
                &[],
            ),
            (
                Enable(BASE),
                both_run,
                &["init fault_base", "init fault_dependent"],
            ),
            (
                Disable(DEPENDENT),
                ["running", "disabled"],
                &["stop fault_dependent"],
            ),
        ],
    )
    .await;
    check(
        "a plugin disabled in the file starts when enabled, after its dependency",
        "enabled = [\"fault_dependent\"]\ndisabled = [\"fault_base\"]\n",
        &[
            (Start, ["disabled", "disabled_because_dependency"], &[]),
            (
                Enable(DEPENDENT),
                ["disabled", "disabled_because_dependency"],
                &[],
            ),
            (
                Enable(BASE),
                both_run,
                &["init fault_base", "init fault_dependent"],
            ),
        ],
    )
    .await;
    check(
        "auto_start = false starts a plugin disabled until it is enabled",
        "",
        &[
            (Start, ["running", "disabled"], &["init fault_base"]),
            (Enable(DEPENDENT), both_run, &["init fault_dependent"]),
        ],
    )
    .await;
    check(
        "an init failure takes dependents down; enabling retries init",
        &with_faults(STARTS_BOTH, "fail_init = true"),
        &[
            (
                Start,
                ["failed", "disabled_because_dependency"],
                &["init fault_base"],
            ),
            (
                Enable(BASE),
                ["failed", "disabled_because_dependency"],
                &["init fault_base"],
            ),
            (
                Disable(BASE),
                ["disabled", "disabled_because_dependency"],
                &[],
            ),
            // A reload does not retry a failed init by itself; the admin's enable does.
            (
                Reload(STARTS_BOTH),
                ["disabled", "disabled_because_dependency"],
                &[],
            ),
            (
                Enable(BASE),
                both_run,
                &["init fault_base", "init fault_dependent"],
            ),
        ],
    )
    .await;
    check(
        "a reload keeps admin decisions unless the file changes its mind about that plugin",
        STARTS_BOTH,
        &[
            (
                Start,
                both_run,
                &["init fault_base", "init fault_dependent"],
            ),
            (
                Disable(DEPENDENT),
                ["running", "disabled"],
                &["stop fault_dependent"],
            ),
            (Reload(STARTS_BOTH), ["running", "disabled"], &[]),
            (
                Reload("enabled = [\"fault_dependent\"]\ndisabled = [\"fault_base\"]\n"),
                ["disabled", "disabled"],
                &["stop fault_base"],
            ),
            (
                Reload(STARTS_BOTH),
                ["running", "disabled"],
                &["init fault_base"],
            ),
            (Enable(DEPENDENT), both_run, &["init fault_dependent"]),
            (
                Reload(""),
                ["running", "disabled"],
                &["stop fault_dependent"],
            ),
        ],
    )
    .await;
    check(
        "an admin enable outlives reloads of an unchanged file",
        "disabled = [\"fault_base\"]\n",
        &[
            (Start, ["disabled", "disabled"], &[]),
            (Enable(BASE), ["running", "disabled"], &["init fault_base"]),
            (
                Reload("disabled = [\"fault_base\"]\n"),
                ["running", "disabled"],
                &[],
            ),
        ],
    )
    .await;
    check(
        "before start, wishes are recorded but no hook runs",
        STARTS_BOTH,
        &[
            (
                Disable(BASE),
                ["disabled", "disabled_because_dependency"],
                &[],
            ),
            (Enable(BASE), ["stopped", "stopped"], &[]),
            (
                Start,
                both_run,
                &["init fault_base", "init fault_dependent"],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_plugins_and_changes_after_shutdown_are_refused() {
    let runtime = runtime(STARTS_BOTH);
    let error = runtime.set_enabled("nope", true).await.unwrap_err();
    assert_eq!(error.to_string(), "unknown plugin `nope`");
    runtime.start().await;
    runtime.shutdown().await;
    let error = runtime.set_enabled("fault_base", true).await.unwrap_err();
    assert_eq!(error.to_string(), "the server is shutting down");
}

#[tokio::test]
async fn a_disabled_plugin_loses_its_tasks_and_gets_them_back_when_enabled() {
    let runtime = runtime(STARTS_BOTH);
    runtime.start().await;
    let running = |runtime: &Runtime| {
        runtime
            .task_status("fault_base")
            .iter()
            .map(|task| task.state)
            .collect::<Vec<_>>()
    };
    assert_eq!(running(&runtime), ["running"]);
    runtime.set_enabled("fault_base", false).await.unwrap();
    assert_eq!(running(&runtime), ["stopped"], "cancelled and awaited");
    runtime.set_enabled("fault_base", true).await.unwrap();
    assert_eq!(
        running(&runtime),
        ["running"],
        "a fresh task, not the old one"
    );
}

/// A request under way when its plugin is disabled finishes before the plugin's `stop`.
#[tokio::test]
async fn stop_waits_for_the_requests_under_way() {
    let runtime = runtime("");
    let app = std::sync::Arc::new(TestApp::new(runtime.clone()));
    runtime.start().await;
    let request = {
        let app = std::sync::Arc::clone(&app);
        tokio::spawn(async move { app.get("/fault/slow").await.0 })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    runtime.set_enabled("fault_base", false).await.unwrap();
    assert_eq!(request.await.unwrap(), 200);
    assert_eq!(
        log(&runtime),
        ["init fault_base", "slow request done", "stop fault_base"]
    );
}

#[tokio::test]
async fn routes_serve_only_after_init_and_stop_before_stop() {
    let runtime = runtime(STARTS_BOTH);
    let app = TestApp::new(runtime.clone());
    let (status, body) = app.get("/fault/ping").await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (503, &json!("plugin `fault_base` is not running"))
    );
    runtime.start().await;
    assert_eq!(app.get("/fault/ping").await.0, 200);
    runtime.set_enabled("fault_base", false).await.unwrap();
    let (status, body) = app.get("/api/v1/fault-dependent/ping").await;
    assert_eq!(
        (status.as_u16(), &body["state"]),
        (
            503,
            &json!({ "state": "disabled_because_dependency", "dependency": "fault_base" })
        )
    );
}

#[tokio::test]
async fn an_init_failure_is_contained_and_its_text_is_for_admins_only() {
    let registry = Registry::linked().unwrap();
    let config = config(&with_faults(STARTS_BOTH, "fail_init = true"));
    let options = ServerOptions {
        admin_token: Some(Secret::new("admin-token-for-tests-0123456789-0123456789")),
        ..ServerOptions::from(&config.server)
    };
    let app = TestApp::with_options(Runtime::with_config(registry, config), &options);
    let failures = app.runtime.start().await;
    assert_eq!(failures.len(), 1);
    assert_eq!(
        (failures[0].plugin, failures[0].error.as_str()),
        ("fault_base", "init failed on purpose")
    );
    assert_eq!(
        log(&app.runtime),
        ["init fault_base"],
        "the dependent's init never ran"
    );
    assert_eq!(
        app.get("/api/v1/awesome/status").await.0,
        200,
        "the rest serves"
    );

    let (status, body) = app.get("/fault/ping").await;
    assert_eq!(
        (status.as_u16(), body),
        (
            503,
            problem(
                503,
                "unavailable",
                "plugin `fault_base` failed to start",
                json!({ "plugin": "fault_base", "state": { "state": "failed" } })
            )
        )
    );
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503);
    assert_eq!(
        body["plugins"],
        json!({ "fault_base": "failed", "fault_dependent": "disabled_because_dependency" })
    );
    // No public answer carries the error text.
    for path in [
        "/ready",
        "/api/v1/plugins",
        "/api/v1/plugins/fault_base",
        "/api/v1/plugins/fault_base/health",
        "/fault/ping",
    ] {
        let (_, body) = app.get(path).await;
        assert!(!body.to_string().contains("on purpose"), "{path}: {body}");
    }
    // The admin view does.
    let request = plexichat::axum::http::Request::get("/api/v1/admin/plugins")
        .header(
            "authorization",
            "Bearer admin-token-for-tests-0123456789-0123456789",
        )
        .body(plexichat::axum::body::Body::empty())
        .unwrap();
    let (status, body) = app.send(request).await;
    assert_eq!(status, 200);
    let base = body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|plugin| plugin["name"] == "fault_base")
        .unwrap();
    assert_eq!(
        (&base["name"], &base["error"]),
        (&json!("fault_base"), &json!("init failed on purpose"))
    );
}

#[tokio::test]
async fn panicking_and_slow_inits_are_failures_too() {
    let panicking = runtime(&with_faults("", "panic_init = true"));
    let failures = panicking.start().await;
    assert_eq!(failures[0].error, "panicked: init panicked on purpose");

    let slow = runtime(&with_faults(
        "[server]\nphase_timeout = \"50ms\"\n",
        "init_delay_ms = 60000",
    ));
    let failures = slow.start().await;
    assert_eq!(failures[0].plugin, "fault_base");
    assert_eq!(failures[0].error, "init did not finish within 50ms");
}

#[tokio::test]
async fn strict_mode_refuses_to_serve_and_names_the_failure() {
    let runtime = runtime(&with_faults("", "fail_init = true"));
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
async fn a_failing_task_is_restarted_and_its_health_shows_it() {
    let runtime = runtime(&with_faults("", "task_failures = 3"));
    assert!(runtime.start().await.is_empty());
    // Three failures take 100 + 200 + 400 ms of backoff (the delays themselves are checked
    // with paused time in core); poll for the settled state.
    let mut settled = false;
    for _ in 0..100 {
        let tasks = runtime.task_status("fault_base");
        if tasks[0].restarts == 3 && tasks[0].state == "running" {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(settled, "the task settled after three restarts");
    let status = &runtime.task_status("fault_base")[0];
    assert_eq!(status.last_error.as_deref(), Some("flaky error 3"));

    let app = TestApp::new(runtime.clone());
    let (_, health) = app.get("/api/v1/plugins/fault_base/health").await;
    assert_eq!(
        health["tasks"],
        json!([{ "name": "flaky", "state": "running", "restarts": 3 }]),
        "public health names the task and counts, not its error"
    );
    assert_eq!(health["ready"], true);
    assert!(runtime.shutdown().await.stuck_tasks.is_empty());
    assert_eq!(runtime.task_status("fault_base")[0].state, "stopped");
}

#[tokio::test]
async fn ready_is_503_until_started_and_while_a_check_fails() {
    let runtime = runtime(&with_faults("", "not_ready = true"));
    let app = TestApp::new(runtime.clone());
    let (status, body) = app.get("/ready").await;
    assert_eq!(
        (status.as_u16(), &body["plugins"]),
        (503, &json!({ "*": "starting" }))
    );
    runtime.start().await;
    let (status, body) = app.get("/ready").await;
    assert_eq!(
        (status.as_u16(), &body["plugins"]),
        (503, &json!({ "fault_base": "not_ready" }))
    );
    let (status, health) = app.get("/api/v1/plugins/fault_base/health").await;
    assert_eq!(
        (status.as_u16(), &health["ready"], &health["not_ready"]),
        (503, &json!(false), &json!("not_ready"))
    );
    let readiness = runtime.readiness().await;
    assert_eq!(
        readiness.plugins["fault_base"].reason,
        "plugin `fault_base` is not ready: configured not ready",
        "the reason is kept for the log and the admin view"
    );

    let healthy = self::runtime("");
    healthy.start().await;
    assert_eq!(
        TestApp::new(healthy).get("/ready").await,
        (200.try_into().unwrap(), json!({ "ready": true }))
    );
}

#[tokio::test]
async fn a_ready_flood_runs_each_check_once_per_cache_period() {
    let runtime = runtime(&with_faults("[server]\nready_cache = \"1h\"\n", ""));
    runtime.start().await;
    let app = TestApp::new(runtime.clone());
    let requests = (0..50).map(|_| app.get("/ready"));
    for (status, _) in futures_join_all(requests).await {
        assert_eq!(status, 200);
    }
    let base = runtime.plugin::<FaultBase>().unwrap();
    assert_eq!(base.ready_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn checks_run_concurrently_and_per_plugin_health_checks_only_that_plugin() {
    // Each plugin's `ready` waits for the other's to be running at the same time: checks run
    // one after another would time out, concurrent ones pass.
    let runtime = runtime(&with_faults(STARTS_BOTH, "ready_rendezvous = true"));
    runtime.start().await;
    let readiness = runtime.readiness().await;
    assert!(readiness.ready, "{readiness:?}");

    let plain = self::runtime(&with_faults(
        "enabled = [\"fault_dependent\"]\n[server]\nready_cache = \"0s\"\n",
        "",
    ));
    plain.start().await;
    let app = TestApp::new(plain.clone());
    let (status, _) = app.get("/api/v1/plugins/fault_dependent/health").await;
    assert_eq!(status, 200);
    let calls = (
        plain
            .plugin::<FaultBase>()
            .unwrap()
            .ready_calls
            .load(Ordering::SeqCst),
        plain
            .plugin::<FaultDependent>()
            .unwrap()
            .ready_calls
            .load(Ordering::SeqCst),
    );
    assert_eq!(calls, (0, 1));
}

/// Awaits every future (the tests crate has no futures dependency of its own).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut outputs = Vec::with_capacity(handles.len());
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    // Poll them together so they really are concurrent.
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (index, future) in pinned.iter_mut().enumerate() {
            if results[index].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => results[index] = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.extend(results.into_iter().flatten());
    outputs
}

/// Serves `runtime` with `options` until the returned sender fires; the handle resolves when
/// `serve` returns.
async fn serve(
    runtime: Runtime,
    options: ServerOptions,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), ServerError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, runtime, options, async {
        stopped.await.ok();
    }));
    let mut ready = false;
    for _ in 0..200 {
        if plexichat_tests::request(addr, "GET", "/health").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ready, "the server came up");
    (addr, stop, server)
}

#[tokio::test]
async fn a_served_server_runs_the_whole_lifecycle() {
    let runtime = runtime(STARTS_BOTH);
    let (_, stop, server) = serve(runtime.clone(), ServerOptions::default()).await;
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert_eq!(
        log(&runtime),
        [
            "init fault_base",
            "init fault_dependent",
            "shutdown event",
            "stop fault_dependent",
            "stop fault_base",
        ]
    );
}

/// A `shutdown` handler and a `stop` hook that never return are cut off at the phase
/// timeout, and the shutdown goes on; the 30 s bound only turns a hang into a failure.
#[tokio::test]
async fn hanging_handlers_and_hooks_cannot_hold_shutdown() {
    let runtime = runtime(&with_faults(
        "enabled = [\"fault_dependent\"]\n[server]\nphase_timeout = \"200ms\"\n",
        "hang_on_shutdown = true\nhang_in_stop = true",
    ));
    let (_, stop, server) = serve(runtime.clone(), ServerOptions::default()).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("shutdown finished")
        .unwrap()
        .unwrap();
    assert_eq!(
        log(&runtime)[2..],
        ["shutdown event", "stop fault_dependent", "stop fault_base"]
    );
    let shutdown_handler = runtime
        .handler_stats("fault_base")
        .into_iter()
        .find(|stat| stat.handler == "hang_on_shutdown")
        .unwrap();
    assert_eq!((shutdown_handler.calls, shutdown_handler.failures), (1, 1));
}

/// A client that sent one byte of a request holds its connection only until the drain
/// timeout; the 30 s bound only turns a hang into a failure.
#[tokio::test]
async fn a_client_that_sent_one_byte_cannot_hold_shutdown() {
    use tokio::io::AsyncWriteExt;
    let options = ServerOptions {
        drain_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    };
    let runtime = runtime("");
    let (addr, stop, server) = serve(runtime.clone(), options).await;
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(b"G").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the half-sent request did not hold the server")
        .unwrap()
        .unwrap();
    assert!(log(&runtime).contains(&"stop fault_base".to_string()));
}

/// Reads until the server closes the connection; `None` if it is still open after 30 s.
async fn closed_by_server(client: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), client.read_to_end(&mut received));
    match read.await {
        Ok(_) => Some(received),
        Err(_) => None,
    }
}

#[tokio::test]
async fn slow_heads_and_idle_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let options = ServerOptions {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        ..ServerOptions::default()
    };
    let (addr, stop, server) = serve(runtime(""), options).await;

    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut slow).await.is_some(),
        "an unfinished head is cut off"
    );

    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = closed_by_server(&mut idle)
        .await
        .expect("idle connection closed");
    let text = String::from_utf8_lossy(&answered);
    assert!(text.starts_with("HTTP/1.1 200"), "answered first: {text}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_connection_limit_makes_new_clients_wait_not_fail() {
    use tokio::io::AsyncWriteExt;
    let options = ServerOptions {
        max_connections: 2,
        header_read_timeout: Duration::from_millis(500),
        ..ServerOptions::default()
    };
    let (addr, stop, server) = serve(runtime(""), options).await;
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut holder = tokio::net::TcpStream::connect(addr).await.unwrap();
        holder.write_all(b"G").await.unwrap();
        holders.push(holder);
    }
    // The third client waits in the backlog until a holder's unfinished head times out,
    // then is served.
    let (status, _): (u16, Value) = tokio::time::timeout(
        Duration::from_secs(30),
        plexichat_tests::request(addr, "GET", "/health"),
    )
    .await
    .expect("served once a slot freed up");
    assert_eq!(status, 200);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
