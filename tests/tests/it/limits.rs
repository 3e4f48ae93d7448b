//! Fault containment and request limits: a panicking handler costs one request, slow and
//! oversized requests get clear JSON errors, and every error body is JSON.

use std::net::SocketAddr;
use std::time::Duration;

use plexichat::Registry;
use plexichat::axum::body::Body;
use plexichat::axum::http::Request;
use plexichat::testing::TestApp;
use plexichat_kernel::runtime::Runtime;
use plexichat_tests::request;
use plexichat_web::{self as server, ServerOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_route_fails_only_its_own_requests_under_concurrency() {
    let runtime = Runtime::new(Registry::linked().expect("registry"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        runtime.clone(),
        ServerOptions::default(),
        async {
            stopped.await.ok();
        },
    ));

    let requests = (0..40u32).map(|index| {
        tokio::spawn(async move {
            if index % 2 == 0 {
                (index, request(addr, "GET", "/test/panic").await)
            } else {
                (
                    index,
                    request(addr, "GET", &format!("/test/items/{index}")).await,
                )
            }
        })
    });
    let mut answered = 0;
    for task in requests.collect::<Vec<_>>() {
        let (index, (status, body)) = task.await.unwrap();
        if index % 2 == 0 {
            assert_eq!(status, 500);
            assert_eq!(
                body,
                json!({ "error": "internal server error", "plugin": "test_harness" })
            );
        } else {
            assert_eq!((status, body), (200, json!({ "id": index })));
        }
        answered += 1;
    }
    assert_eq!(answered, 40);
    assert_eq!(runtime.route_stats("test_harness").panics, 20);
    assert_eq!(runtime.route_stats("my_awesome_plugin").panics, 0);
    let (status, plugin) = request(addr, "GET", "/api/v1/plugins/test_harness").await;
    assert_eq!(
        (status, &plugin["route_stats"]),
        (200, &json!({ "panics": 20, "middleware_panics": 0 }))
    );

    stop.send(()).unwrap();
    server.await.unwrap().expect("server survived the panics");
}

#[tokio::test]
async fn a_request_over_the_timeout_gets_408() {
    let options = ServerOptions {
        request_timeout: Duration::from_millis(50),
        ..ServerOptions::default()
    };
    let app = TestApp::with_options(Runtime::new(Registry::linked().unwrap()), &options);
    app.runtime.start().await;
    let (status, body) = app.get("/test/slow").await;
    assert_eq!(status, 408);
    assert_eq!(body, json!({ "error": "request not answered within 50ms" }));
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 200, "fast requests are unaffected");
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let options = ServerOptions {
        body_limit: 16,
        ..ServerOptions::default()
    };
    let app = TestApp::with_options(Runtime::new(Registry::linked().unwrap()), &options);
    app.runtime.start().await;
    let post = |bytes: usize| {
        Request::post("/test/echo")
            .body(Body::from(vec![b'x'; bytes]))
            .unwrap()
    };
    assert_eq!(
        app.send(post(16)).await,
        (200.try_into().unwrap(), json!({ "length": 16 }))
    );
    let (status, body) = app.send(post(17)).await;
    assert_eq!(status, 413);
    let message = body["error"].as_str().expect("a JSON error");
    assert!(message.contains("length limit exceeded"), "{message}");
}

#[tokio::test]
async fn errors_from_axum_itself_get_json_bodies() {
    let app = TestApp::linked().await;
    let (status, body) = app.get("/api/v1/awesome/action").await;
    assert_eq!(status, 405);
    assert_eq!(body, json!({ "error": "method not allowed" }));

    let (status, body) = app.get("/test/items/not-a-number").await;
    assert_eq!(status, 400);
    let message = body["error"].as_str().expect("a JSON error");
    assert!(message.contains("Cannot parse"), "{message}");
}

/// The decision for a request timeout that strikes while the route is publishing: the
/// client gets its 408, and the dispatch, which runs on a task of its own, still runs every
/// handler in order. The 10 s bound only turns a lost handler into a failure.
#[tokio::test]
async fn a_request_timeout_does_not_cut_an_event_dispatch_short() {
    let options = ServerOptions {
        request_timeout: Duration::from_millis(50),
        ..ServerOptions::default()
    };
    let app = TestApp::with_options(Runtime::new(Registry::linked().unwrap()), &options);
    app.runtime.start().await;
    let (status, _) = app.post("/test/publish-slow", ()).await;
    assert_eq!(status, 408);
    let harness = app.runtime.plugin::<crate::Harness>().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while harness.log().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(harness.log(), ["slow first", "slow second"]);
}
