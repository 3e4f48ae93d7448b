//! What the facade gives a plugin author beyond routes and events: JSON bodies with errors
//! that name the field, the events each plugin declares with their Rust types, WebSockets,
//! and the test helpers themselves.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use plexichat::testing::{TestApp, TestBody, problem};
use plexichat_kernel::registry::{Registrations, Registry, RegistryError};
use plexichat_kernel::runtime::Runtime;
use plexichat_web::{self as server, ServerOptions};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_json_body_that_does_not_fit_gets_400_naming_the_field_and_what_was_expected() {
    let app = TestApp::linked().await;
    let order = json!({ "items": [{ "name": "tea", "count": 2 }, { "name": "cake", "count": 1 }] });
    assert_eq!(
        app.post("/test/orders", order).await,
        (
            plexichat::http::StatusCode::OK,
            json!({ "total": 3, "status": "accepted" })
        )
    );

    let cases = [
        (
            json!({ "items": [{ "name": "tea", "count": "two" }] }),
            problem(
                400,
                "bad_request",
                "invalid `/items/0/count`: invalid type: string \"two\", expected u8",
                json!({
                    "pointer": "/items/0/count",
                    "expected": "u8",
                }),
            ),
        ),
        (
            json!({ "items": [{ "count": 1 }] }),
            problem(
                400,
                "bad_request",
                "invalid `/items/0/name`: missing field `name`",
                json!({
                    "pointer": "/items/0/name",
                    "expected": "a value (the field is required)",
                }),
            ),
        ),
        (
            json!({ "items": [], "coupon": "x" }),
            problem(
                400,
                "bad_request",
                "invalid `/coupon`: unknown field `coupon`, expected `items`",
                json!({
                    "pointer": "/coupon",
                    "expected": "`items`",
                }),
            ),
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = app.post("/test/orders", body.clone()).await;
        assert_eq!((status.as_u16(), answer), (400, expected), "{body}");
    }

    let (status, answer) = app
        .post(
            "/test/orders",
            TestBody::raw(Some("application/json"), "{\"items\": ["),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not valid JSON: EOF while parsing"),
        "{answer}"
    );

    // Without a JSON content type the body is not read at all: 415, saying what to send.
    let (status, answer) = app
        .post("/test/orders", TestBody::raw(None, "{\"items\": []}"))
        .await;
    assert_eq!(
        (status.as_u16(), answer),
        (
            415,
            problem(
                415,
                "unsupported_media_type",
                "expected a JSON body: set `Content-Type: application/json`",
                json!({ "expected": "application/json" })
            )
        )
    );
}

#[tokio::test]
async fn a_bad_path_or_query_parameter_gets_a_json_400() {
    let app = TestApp::linked().await;
    let (status, answer) = app.get("/test/items/not-a-number").await;
    assert_eq!(status, 400);
    assert_eq!(answer["in"], "path");
    assert!(
        answer["error"].as_str().unwrap().contains("not-a-number"),
        "{answer}"
    );
}

#[tokio::test]
async fn each_plugin_lists_the_events_it_declares_with_their_rust_types() {
    let app = TestApp::linked().await;
    let (status, awesome) = app.get("/api/v1/plugins/my_awesome_plugin").await;
    assert_eq!(status, 200);
    assert_eq!(
        awesome["events"],
        json!([
            {
                "name": "awesome.action.completed",
                "rust_type": "my_awesome_plugin::ActionCompleted",
                "vetoable": false,
            },
            {
                "name": "awesome.action.requested",
                "rust_type": "my_awesome_plugin::ActionRequested",
                "vetoable": true,
            },
        ])
    );
    // A subscriber sees the type it subscribes to, core events included.
    let (_, audit) = app.get("/api/v1/plugins/awesome_audit").await;
    assert_eq!(
        audit["event_handlers"][0]["event_type"],
        "my_awesome_plugin::ActionCompleted"
    );
    let (_, harness) = app.get("/api/v1/plugins/test_harness").await;
    let types: Vec<&str> = harness["event_handlers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|handler| handler["event_type"].as_str())
        .collect();
    assert!(
        types.contains(&"plexichat::event::ConfigChanging"),
        "{types:?}"
    );
    assert!(types.contains(&"it::Ping"), "{types:?}");
}

#[test]
fn two_event_types_with_one_name_are_a_registry_error_naming_both() {
    use plexichat::event::EventDescriptor;
    static FIRST: EventDescriptor = EventDescriptor {
        name: "shared.name",
        type_name: "one::Thing",
        crate_name: "one",
        location: "one/src/lib.rs:3",
        vetoable: false,
    };
    static SECOND: EventDescriptor = EventDescriptor {
        name: "shared.name",
        type_name: "two::Thing",
        crate_name: "two",
        location: "two/src/lib.rs:9",
        vetoable: false,
    };
    let errors = Registry::from_registrations(Registrations {
        events: vec![&SECOND, &FIRST],
        ..Registrations::default()
    })
    .unwrap_err();
    assert_eq!(
        errors.0,
        [RegistryError::DuplicateEvent {
            name: "shared.name",
            first: "one::Thing (one/src/lib.rs:3)".to_string(),
            second: "two::Thing (two/src/lib.rs:9)".to_string(),
        }]
    );
}

/// A command registration of crate `crate_name`, for registry checks.
const fn command(
    crate_name: &'static str,
    category: Option<&'static str>,
    name: &'static str,
    location: &'static str,
) -> plexichat::command::CommandDescriptor {
    fn args(command: plexichat::clap::Command) -> plexichat::clap::Command {
        command
    }
    fn run(
        _: plexichat::__private::Host,
        _: plexichat::command::Invocation,
        _: &plexichat::clap::ArgMatches,
    ) -> plexichat::__private::CommandFuture {
        Box::pin(async { Ok(()) })
    }
    plexichat::command::CommandDescriptor {
        category,
        name,
        about: "Does a thing.",
        long_about: "Does a thing.",
        since: None,
        flags: plexichat::command::CommandFlags {
            admin_only: false,
            dangerous: false,
            requires_auth: false,
            server: false,
            starts_plugins: false,
        },
        handler: "thing",
        crate_name,
        location,
        args,
        run,
    }
}

#[test]
fn duplicate_commands_and_commands_shadowing_core_are_registry_errors_naming_both() {
    static SAME_ONE: plexichat::command::CommandDescriptor =
        command("one_crate", Some("dev"), "build", "one/src/lib.rs:3");
    static SAME_TWO: plexichat::command::CommandDescriptor =
        command("two_crate", Some("dev"), "build", "two/src/lib.rs:9");
    static CORE: plexichat::command::CommandDescriptor =
        command("two_crate", Some("backup"), "now", "two/src/lib.rs:20");
    // The plugin's name is the default category: `one test` is not `dev test`.
    static DEFAULT: plexichat::command::CommandDescriptor =
        command("one_crate", None, "build", "one/src/lib.rs:30");
    let plugins = vec![
        crate::registry::plugin("one", "one_crate", &[]),
        crate::registry::plugin("two", "two_crate", &[]),
    ];
    let errors = Registry::from_registrations(Registrations {
        plugins: plugins.clone(),
        commands: vec![&SAME_TWO, &CORE, &DEFAULT, &SAME_ONE],
        ..Registrations::default()
    })
    .unwrap_err();
    assert_eq!(
        errors.0,
        [
            RegistryError::CommandShadowsCore {
                plugin: "two",
                category: "backup",
                name: "now",
                location: "two/src/lib.rs:20",
            },
            RegistryError::DuplicateCommand {
                category: "dev",
                name: "build",
                first: "one::thing (one/src/lib.rs:3)".to_string(),
                second: "two::thing (two/src/lib.rs:9)".to_string(),
            },
        ]
    );
    assert_eq!(
        errors.0[1].to_string(),
        "duplicate command `plexichat dev build`: `one::thing (one/src/lib.rs:3)` and `two::thing (two/src/lib.rs:9)`"
    );
    let registry = Registry::from_registrations(Registrations {
        plugins,
        commands: vec![&SAME_TWO, &DEFAULT],
        ..Registrations::default()
    })
    .unwrap();
    let listed: Vec<(&str, &str, &str)> = registry
        .commands()
        .iter()
        .map(|c| (c.category, c.descriptor.name, c.plugin))
        .collect();
    assert_eq!(listed, [("dev", "build", "two"), ("one", "build", "one")]);
    assert_eq!(registry.commands_in("one").count(), 1);
    assert_eq!(registry.commands_in("on").count(), 0);
}

/// Serves the linked plugins on a loopback port with `options`; returns the address, a
/// trigger for shutdown and the server task.
pub(crate) async fn serve(
    options: ServerOptions,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), server::ServerError>>,
) {
    let runtime = Runtime::new(Registry::linked().expect("registry"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, runtime, options, async {
        stopped.await.ok();
    }));
    (addr, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_route_upgrades_and_an_open_socket_does_not_hold_shutdown() {
    let options = ServerOptions {
        drain_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let (addr, stop, server) = serve(options).await;
    let (mut socket, response) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/test/ws/echo"))
            .await
            .expect("the upgrade succeeds");
    assert_eq!(response.status(), 101);
    socket.send(Message::text("hello")).await.unwrap();
    let echoed = socket.next().await.expect("a reply").unwrap();
    assert_eq!(echoed, Message::text("hello"));

    // The echo loop never ends on its own; the drain timeout ends it.
    stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns although a WebSocket is open");
    served.unwrap().unwrap();
    let after = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the socket is closed, not left hanging");
    assert!(
        !matches!(after, Some(Ok(Message::Text(_)))),
        "unexpected message: {after:?}"
    );
}

/// An open WebSocket leaves the connection slots to ordinary requests: it holds a slot of
/// the long-lived budget instead (see `limits::websockets_have_the_long_lived_budget_and_cap`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_websocket_leaves_its_connection_slot_to_ordinary_requests() {
    let options = ServerOptions {
        max_connections: 1,
        drain_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let (addr, stop, server) = serve(options).await;
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/test/ws/echo"))
        .await
        .unwrap();
    // The socket gave its permit back when it was upgraded: a plain request is served.
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(10),
        plexichat_tests::request(addr, "GET", "/health"),
    )
    .await
    .expect("an open WebSocket kept the only connection slot");
    assert_eq!(status, 200);
    drop(socket);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn test_apps_take_a_configuration_an_admin_token_and_typed_sections() {
    use my_awesome_plugin::{AwesomeConfig, AwesomePlugin};
    let app = TestApp::builder()
        .config("disabled = [\"awesome_audit\"]\n[plugins.my_awesome_plugin]\ninterval = 5\n")
        .plugin_config::<AwesomePlugin>(AwesomeConfig {
            interval: 42,
            ..AwesomeConfig::default()
        })
        .admin_token("test-token-0123456789-0123456789ab")
        .start()
        .await;
    // The text applies; the typed section replaces the text's section of that plugin.
    assert_eq!(
        app.runtime.status("awesome_audit").unwrap().name(),
        "disabled"
    );
    assert_eq!(app.runtime.config::<AwesomePlugin>().unwrap().interval, 42);

    let enable = "/api/v1/admin/plugins/awesome_audit/enable";
    let (status, _) = app
        .request("POST", enable)
        .bearer("wrong-token-0123456789")
        .send()
        .await;
    assert_eq!(status, 401);
    let (status, body) = app.request("POST", enable).admin().send().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        app.runtime.status("awesome_audit").unwrap().name(),
        "running"
    );

    // Headers reach the handler as written.
    let (status, _) = app
        .request("POST", "/test/orders")
        .header("content-type", "text/plain")
        .body(TestBody::raw(None, "{}"))
        .send()
        .await;
    assert_eq!(status, 415);
}
