//! Routes through `oneshot` and through a real socket, and the core endpoints.

use std::net::SocketAddr;

use plexichat::Registry;
use plexichat::testing::TestApp;
use plexichat_kernel::runtime::Runtime;
use plexichat_tests::request;
use plexichat_web as server;
use serde_json::json;

use crate::Harness;

#[tokio::test]
async fn the_tutorial_routes_behave_as_the_seed_describes() {
    let app = TestApp::linked().await;
    let (status, body) = app.get("/api/v1/awesome/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "awesome");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["config"], json!({ "enabled": true, "interval": 60 }));
    assert_eq!(body["stats"]["actions_performed"], 0);
    assert_eq!(body["stats"]["last_action"], serde_json::Value::Null);

    let (status, body) = app.post("/api/v1/awesome/action", ()).await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Awesome action performed!");
    let (_, status_body) = app.get("/api/v1/awesome/status").await;
    assert_eq!(status_body["stats"]["actions_performed"], 1);
    assert_eq!(status_body["stats"]["last_action"], body["timestamp"]);
}

#[tokio::test]
async fn plugins_are_listed_with_their_registrations() {
    let app = TestApp::linked().await;
    let (status, body) = app.get("/api/v1/plugins").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["plugins"]
        .as_array()
        .expect("plugins array")
        .iter()
        .map(|plugin| plugin["name"].as_str().unwrap())
        .collect();
    // Start order: dependencies first, ties by name.
    assert_eq!(
        names,
        ["my_awesome_plugin", "awesome_audit", "test_harness"]
    );

    let (status, awesome) = app.get("/api/v1/plugins/my_awesome_plugin").await;
    assert_eq!(status, 200);
    assert_eq!(awesome["type"], "feature");
    assert_eq!(awesome["prefix"], "/api/v1/awesome");
    assert_eq!(awesome["description"], "An awesome plugin for PlexiChat.");
    assert_eq!(awesome["state"], "running");
    assert_eq!(
        awesome["routes"],
        json!([
            { "method": "POST", "path": "/api/v1/awesome/action", "handler": "perform_action" },
            { "method": "GET", "path": "/api/v1/awesome/status", "handler": "get_status" },
        ])
    );
    assert_eq!(awesome["ui_pages"][0]["title"], "Awesome Dashboard");

    let (_, audit) = app.get("/api/v1/plugins/awesome_audit").await;
    assert_eq!(audit["dependencies"], json!(["my_awesome_plugin"]));
    assert_eq!(audit["type"], "monitoring");
}

#[tokio::test]
async fn unknown_things_are_404_with_a_json_body_naming_them() {
    let app = TestApp::linked().await;
    let (status, body) = app.get("/api/v1/plugins/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "unknown plugin `nope`");
    assert_eq!(
        body["known"],
        json!(["my_awesome_plugin", "awesome_audit", "test_harness"])
    );

    let (status, body) = app.get("/no/such/route").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no route for GET /no/such/route");
}

#[tokio::test]
async fn a_path_with_a_trailing_slash_leads_to_the_route_without_it() {
    let app = TestApp::linked().await;
    let response = app.request("GET", "/test/items/42/?x=1").send_raw().await;
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], "/test/items/42?x=1");
    // Never to another site, and never for a method that would lose its body.
    for path in ["//evil.example/", "/\\evil.example/"] {
        let response = app.request("GET", path).send_raw().await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = app.request("POST", "/test/items/42/").send_raw().await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn path_parameters_are_extracted_and_checked() {
    let app = TestApp::linked().await;
    assert_eq!(
        app.get("/test/items/42").await,
        (200.try_into().unwrap(), json!({ "id": 42 }))
    );
    let (status, _) = app.get("/test/items/not-a-number").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_real_socket_serves_until_shutdown_and_lifecycle_events_fire() {
    let runtime = Runtime::new(Registry::linked().expect("registry"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = server::ServerOptions::default();
    let server = tokio::spawn(server::serve(listener, runtime.clone(), options, async {
        stopped.await.ok();
    }));

    assert_eq!(
        request(addr, "GET", "/health").await,
        (200, json!({ "status": "ok" }))
    );
    let (status, body) = request(addr, "POST", "/api/v1/awesome/action").await;
    assert_eq!((status, body["success"].clone()), (200, json!(true)));
    let (status, body) = request(addr, "GET", "/api/v1/awesome-audit/events").await;
    assert_eq!((status, body["total"].clone()), (200, json!(1)));
    let (status, _) = request(addr, "GET", "/api/v1/awesome/action").await;
    assert_eq!(status, 405, "POST-only route answers GET with 405");

    stop.send(()).unwrap();
    server.await.unwrap().expect("clean shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the socket is closed after shutdown"
    );
    let log = runtime.plugin::<Harness>().unwrap().log();
    assert_eq!(
        log,
        [
            "starting my_awesome_plugin,awesome_audit,test_harness",
            "startup my_awesome_plugin,awesome_audit,test_harness",
            "action 1",
            "shutdown",
            "stopped, stuck: 0",
        ]
    );
}

/// A server on loopback that answers with the `User-Agent` it received, and one that accepts
/// connections and never answers.
async fn upstreams() -> (std::net::SocketAddr, std::net::SocketAddr) {
    use plexichat::axum::{Router, routing::get};
    let echo = Router::new().route(
        "/agent",
        get(|headers: plexichat::http::HeaderMap| async move {
            headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { plexichat::axum::serve(listener, echo).await });
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    (echo_addr, silent_addr)
}

#[tokio::test]
async fn a_plugin_with_http_client_reaches_other_servers_naming_itself_and_time_bounded() {
    let app = TestApp::linked().await;
    let (echo, silent) = upstreams().await;

    let (status, body) = app
        .post(
            "/test/fetch",
            json!({ "url": format!("http://{echo}/agent") }),
        )
        .await;
    assert_eq!(status, plexichat::http::StatusCode::OK, "{body}");
    assert_eq!(body["status"], 200);
    assert_eq!(
        body["body"],
        format!("plexichat/{} (test_harness)", env!("CARGO_PKG_VERSION"))
    );

    // A server that never answers: the request's own deadline ends it, as an error.
    let (status, body) = app
        .post(
            "/test/fetch",
            json!({ "url": format!("http://{silent}/"), "timeout_ms": 200 }),
        )
        .await;
    assert_eq!(status, plexichat::http::StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("timed out"),
        "{body}"
    );

    // Nothing listening: refused at once.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (status, body) = app
        .post("/test/fetch", json!({ "url": format!("http://{closed}/") }))
        .await;
    assert_eq!(status, plexichat::http::StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("could not connect"),
        "{body}"
    );
}
