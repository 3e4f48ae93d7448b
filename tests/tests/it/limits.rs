//! Fault containment and request limits: a panicking handler costs one request, slow and
//! oversized requests get clear JSON errors, and every error body is JSON.

use std::net::SocketAddr;
use std::time::Duration;

use plexichat::Registry;
use plexichat::axum::body::Body;
use plexichat::axum::http::Request;
use plexichat::testing::{TestApp, problem};
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
                problem(
                    500,
                    "internal",
                    "internal server error",
                    json!({ "plugin": "test_harness" })
                )
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
    assert_eq!(
        body,
        problem(
            408,
            "request_timeout",
            "request not answered within 50ms",
            json!({})
        )
    );
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
    assert_eq!(
        body,
        problem(405, "method_not_allowed", "method not allowed", json!({}))
    );

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

/// Opens `GET path` from the loopback address `from` and reads the response head: the
/// status, the head as text, and the connection (still open on a stream).
async fn open_stream(
    addr: SocketAddr,
    from: [u8; 4],
    path: &str,
) -> (u16, String, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((from, 0)))
        .unwrap_or_else(|error| panic!("cannot bind {from:?}: {error}"));
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).await.unwrap();
        assert_eq!(
            read, 1,
            "the connection closed before a response head: {head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, stream)
}

/// Reads `stream` to its end; panics if that takes a minute (the server never ended it).
async fn read_to_end(mut stream: tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut rest))
        .await
        .expect("the server never ended the connection")
        .unwrap();
    String::from_utf8_lossy(&rest).into_owned()
}

/// Event streams have a budget of their own: streams held open by one client (as a tester
/// held 1,100 of them) take none of the ordinary connection slots, so `/health` is still
/// answered; past its cap a client gets 429 and past the server's budget 503, each with a
/// problem body and a closed connection; and shutdown ends the streams as it starts
/// draining, instead of waiting out `drain_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_have_their_own_budget_and_never_starve_ordinary_requests() {
    let options = ServerOptions {
        max_connections: 2,
        max_streams: 4,
        max_streams_per_client: 3,
        drain_timeout: Duration::from_secs(120),
        ..ServerOptions::default()
    };
    let (addr, stop, server) = crate::facade::serve(options).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let (status, head, stream) = open_stream(addr, [127, 0, 0, 1], "/test/events").await;
        assert_eq!(status, 200, "{head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        held.push(stream);
    }
    // Three streams and only two connection slots: ordinary requests are still served.
    for _ in 0..5 {
        let answer = tokio::time::timeout(Duration::from_secs(30), request(addr, "GET", "/health"))
            .await
            .expect("/health was not answered while streams were open");
        assert_eq!(answer.0, 200);
    }
    let (status, head, refused) = open_stream(addr, [127, 0, 0, 1], "/test/events").await;
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("retry-after: 5"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let body = read_to_end(refused).await;
    assert!(body.contains("holds 3 long-lived connections"), "{body}");
    let (status, head, other) = open_stream(addr, [127, 0, 0, 2], "/test/events").await;
    assert_eq!(status, 200, "another address has its own cap: {head}");
    held.push(other);
    let (status, head, full) = open_stream(addr, [127, 0, 0, 3], "/test/events").await;
    assert_eq!(status, 503, "{head}");
    assert!(read_to_end(full).await.contains("long-lived connections"));
    // Closing a stream gives its slot back.
    drop(held.pop());
    let mut answered = None;
    for _ in 0..50 {
        let (status, _, stream) = open_stream(addr, [127, 0, 0, 3], "/test/events").await;
        if status == 200 {
            answered = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    held.push(answered.expect("a closed stream's slot was never given back"));

    // Shutdown ends every stream as the drain begins: far sooner than the drain timeout.
    stop.send(()).unwrap();
    for stream in held {
        let rest = read_to_end(stream).await;
        assert!(rest.contains("data: hello"), "{rest}");
    }
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("the server waited out its drain timeout for the streams")
        .unwrap()
        .unwrap();
}

/// WebSockets share the long-lived budget: an upgraded socket trades its connection slot for
/// a stream slot, so sockets held open leave ordinary requests served, and past its cap a
/// client's handshake is answered 429 (with the request's headers) instead of switching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_have_the_long_lived_budget_and_cap() {
    let options = ServerOptions {
        max_connections: 2,
        max_streams: 8,
        max_streams_per_client: 3,
        drain_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let (addr, stop, server) = crate::facade::serve(options).await;
    let url = format!("ws://{addr}/test/ws/echo");
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let (socket, response) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("a socket within the cap is accepted");
        assert_eq!(response.status(), 101);
        sockets.push(socket);
    }
    // Three sockets and only two connection slots: ordinary requests are still served.
    for _ in 0..3 {
        let answer = tokio::time::timeout(Duration::from_secs(30), request(addr, "GET", "/health"))
            .await
            .expect("/health was not answered while sockets were open");
        assert_eq!(answer.0, 200);
    }
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "5");
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("holds 3 long-lived connections"), "{body}");
        }
        other => panic!("a fourth socket from one address was not refused: {other:?}"),
    }
    // Closing a socket gives its slot back.
    drop(sockets.pop());
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok((socket, _)) = tokio_tungstenite::connect_async(&url).await {
            reopened = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sockets.push(reopened.expect("a closed socket's slot was never given back"));
    stop.send(()).unwrap();
    drop(sockets);
    server.await.unwrap().unwrap();
}

/// A stream ends at `stream_lifetime`, so no client holds a slot forever; the client
/// reconnects, as `EventSource` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_ends_at_its_lifetime() {
    let options = ServerOptions {
        stream_lifetime: Duration::from_millis(500),
        ..ServerOptions::default()
    };
    let (addr, stop, server) = crate::facade::serve(options).await;
    let (status, head, stream) = open_stream(addr, [127, 0, 0, 1], "/test/events").await;
    assert_eq!(status, 200, "{head}");
    let rest = read_to_end(stream).await;
    assert!(rest.contains("data: hello"), "{rest}");
    let (status, _, stream) = open_stream(addr, [127, 0, 0, 1], "/test/events").await;
    assert_eq!(status, 200, "the ended stream gave its slot back");
    read_to_end(stream).await;
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// An error that quotes what the client sent never echoes input of any size: a 10,000-byte
/// plugin name comes back cut, saying so.
#[tokio::test]
async fn error_bodies_cut_what_they_quote_from_the_request() {
    let app = TestApp::linked().await;
    let name = "x".repeat(10_000);
    let (status, body) = app.get(&format!("/api/v1/plugins/{name}")).await;
    assert_eq!(status, 404, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.len() < 1_100, "{} bytes", error.len());
    assert!(error.ends_with("(cut at 1024 characters)"), "{error}");
}
