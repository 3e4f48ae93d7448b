//! `/metrics`: requests by plugin, route, method and status with latencies, event handlers,
//! plugin states; behind the admin token on the main address, or alone and open on
//! `[server] metrics_bind`.

use std::time::Duration;

use http_body_util::BodyExt;
use plexichat::Registry;
use plexichat::testing::TestApp;
use plexichat_kernel::runtime::Runtime;
use plexichat_web::{self as server, ServerOptions};

const TOKEN: &str = "metrics-token-0123456789-0123456789ab";

async fn scrape(app: &TestApp) -> String {
    let response = app.request("GET", "/metrics").admin().send_raw().await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The value of the sample `name{labels}` (labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

#[tokio::test]
async fn requests_are_counted_by_plugin_route_method_and_status() {
    let app = TestApp::builder().admin_token(TOKEN).start().await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/awesome/status").await.0, 200);
    }
    assert_eq!(app.post("/api/v1/awesome/action", ()).await.0, 200);
    assert_eq!(app.get("/api/v1/plugins/nobody").await.0, 404);
    assert_eq!(app.get("/no/such/route").await.0, 404);
    app.runtime
        .set_enabled("my_awesome_plugin", false)
        .await
        .unwrap();
    assert_eq!(app.get("/api/v1/awesome/status").await.0, 503);

    let text = scrape(&app).await;
    let status = r#"plugin="my_awesome_plugin",route="/api/v1/awesome/status",method="GET""#;
    assert_eq!(
        sample(
            &text,
            &format!("plexichat_http_requests_total{{{status},status=\"200\"}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("plexichat_http_requests_total{{{status},status=\"503\"}}")
        ),
        Some(1.0),
        "a disabled plugin's 503s are its route's: {text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"plexichat_http_requests_total{plugin="(core)",route="/api/v1/plugins/{name}",method="GET",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "plexichat_http_unmatched_requests_total"),
        Some(1.0),
        "{text}"
    );
    // The histogram: cumulative buckets ending in +Inf, which equals the count.
    let inf = sample(
        &text,
        &format!("plexichat_http_request_duration_seconds_bucket{{{status},le=\"+Inf\"}}"),
    );
    assert_eq!(inf, Some(4.0), "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("plexichat_http_request_duration_seconds_count{{{status}}}")
        ),
        Some(4.0)
    );
    let buckets: Vec<f64> = text
        .lines()
        .filter(|line| {
            line.starts_with(&format!(
                "plexichat_http_request_duration_seconds_bucket{{{status},"
            ))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 17);
    assert!(
        buckets.windows(2).all(|pair| pair[0] <= pair[1]),
        "{buckets:?}"
    );

    // The action's event reached awesome_audit's handler.
    let calls = text
        .lines()
        .find(|line| {
            line.starts_with("plexichat_event_handler_calls_total{plugin=\"awesome_audit\"")
                && line.contains("awesome.action.completed")
        })
        .unwrap_or_else(|| panic!("no handler line: {text}"));
    assert!(calls.ends_with(" 1"), "{calls}");

    // States: one-hot per plugin.
    assert_eq!(
        sample(
            &text,
            r#"plexichat_plugin_state{plugin="my_awesome_plugin",state="disabled"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"plexichat_plugin_state{plugin="my_awesome_plugin",state="running"}"#
        ),
        Some(0.0)
    );
    // Every line is a comment or `name{labels} value` (or `name value`).
    for line in text.lines() {
        assert!(
            line.starts_with("# HELP ")
                || line.starts_with("# TYPE ")
                || line
                    .rsplit_once(' ')
                    .is_some_and(|(_, value)| value.parse::<f64>().is_ok()),
            "not in the text format: {line}"
        );
    }
}

#[tokio::test]
async fn on_the_main_address_metrics_need_the_admin_token() {
    let app = TestApp::builder().admin_token(TOKEN).start().await;
    let (status, body) = app.get("/metrics").await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = app
        .request("GET", "/metrics")
        .bearer("metrics-token-0123456788")
        .send()
        .await;
    assert_eq!(status, 401);
    assert!(scrape(&app).await.contains("plexichat_build_info"));
}

/// One GET over a fresh connection; the status and the body as text.
async fn get_text(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_bind_serves_metrics_alone_and_open_and_the_main_address_not_at_all() {
    // A free port for the metrics listener: bound, read, released.
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let options = ServerOptions {
        metrics_bind: Some(metrics_addr),
        admin_token: Some(plexichat::Secret::new(TOKEN)),
        ..ServerOptions::default()
    };
    let runtime = Runtime::new(Registry::linked().expect("registry"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, runtime, options, async {
        stopped.await.ok();
    }));
    // Serving starts once every plugin has started.
    let mut tries = 0;
    while plexichat_tests::request(addr, "GET", "/health").await.0 != 200 {
        tries += 1;
        assert!(tries < 200, "the server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        plexichat_tests::request(addr, "GET", "/api/v1/awesome/status")
            .await
            .0,
        200
    );

    let (status, text) = get_text(metrics_addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(r#"route="/api/v1/awesome/status",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert_eq!(
        get_text(metrics_addr, "/health").await.0,
        404,
        "metrics only"
    );
    let (status, _) = plexichat_tests::request_with(
        addr,
        "GET",
        "/metrics",
        &[("authorization", &format!("Bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(status, 404, "not on the main address when it has its own");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(metrics_addr).await.is_err(),
        "the metrics listener closes with the server"
    );
}
