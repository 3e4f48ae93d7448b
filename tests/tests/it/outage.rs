//! A PostgreSQL outage while serving: `/ready` says so within a bounded time, routes that use
//! storage answer 503 with a problem body and `Retry-After` at once (not after the pool's
//! acquire timeout, as a 500), and both recover when the server is back, without a restart.
//!
//! The outage is a loopback proxy between the server and the suite's PostgreSQL that the
//! test closes (new connections refused, open ones cut), as a stopped PostgreSQL would; the
//! suite's own cluster keeps serving the other tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plexichat::Registry;
use plexichat::testing::{fresh_dir, fresh_postgres_database};
use plexichat_kernel::config::{Config, DataSection};
use plexichat_kernel::runtime::Runtime;
use plexichat_kernel::storage::Storage;
use plexichat_kernel::storage::database::DatabaseUrl;
use plexichat_tests::request;
use plexichat_web::{self as server, ServerOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy on a fixed loopback port that can be taken down and brought back.
struct Proxy {
    port: u16,
    target: SocketAddr,
    /// The accept loop and every forwarding task, aborted when the proxy goes down.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            target,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = Arc::clone(&self.tasks);
        let target = self.target;
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(forward);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Refuses new connections and cuts the open ones.
    fn down(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn up(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

/// `GET path`, with how long the answer took.
async fn timed(addr: SocketAddr, path: &str) -> (u16, serde_json::Value, Duration) {
    let started = Instant::now();
    let (status, body) = request(addr, "GET", path).await;
    (status, body, started.elapsed())
}

/// The `Retry-After` header of `GET path`.
async fn retry_after(addr: SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().to_string())
    })
}

/// Polls `path` until it answers `status`, for at most `within`; the last answer otherwise.
async fn until(
    addr: SocketAddr,
    path: &str,
    status: u16,
    within: Duration,
) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + within;
    loop {
        let (got, body, _) = timed(addr, path).await;
        if got == status || Instant::now() > deadline {
            return (got, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_not_ready_and_503_at_once_and_recovers_without_a_restart() {
    let database = fresh_postgres_database().await;
    let url = database.url().expose().to_string();
    database.close().await;
    // `postgres://user@host:port/name?…`: the proxy takes the place of `host:port`.
    let authority_start = url.find('@').map_or("postgres://".len(), |at| at + 1);
    let authority_end = authority_start + url[authority_start..].find('/').unwrap();
    let authority = &url[authority_start..authority_end];
    let target: SocketAddr = tokio::net::lookup_host(authority)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let url = format!(
        "{}127.0.0.1:{}{}",
        &url[..authority_start],
        proxy.port,
        &url[authority_end..]
    );

    let registry = Registry::linked().unwrap();
    let data = DataSection {
        dir: fresh_dir("outage"),
        database: Some(DatabaseUrl::parse(&url).unwrap()),
    };
    let storage = Storage::open(&data).await.expect("open through the proxy");
    let mut config = Config::defaults(&registry);
    config.data = data;
    let runtime = Runtime::with_storage(registry, config, None, storage);
    runtime.migrate().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        runtime,
        ServerOptions::default(),
        async {
            stopped.await.ok();
        },
    ));
    let (status, _) = until(addr, "/ready", 200, Duration::from_secs(10)).await;
    assert_eq!(status, 200, "ready before the outage");
    let (status, body, _) = timed(addr, "/test/kv/greeting").await;
    assert_eq!(status, 200, "{body}");

    proxy.down();
    // `/ready` notices within its check timeout plus the watch interval, each answer bounded.
    let noticed = Instant::now();
    let (status, body) = until(addr, "/ready", 503, Duration::from_secs(15)).await;
    assert_eq!(
        status,
        503,
        "still ready {:?} into the outage: {body}",
        noticed.elapsed()
    );
    assert_eq!(body["database"], "unreachable", "{body}");
    // A route that reads storage: 503 with the problem's code, without waiting out the pool.
    let (status, body, took) = timed(addr, "/test/kv/greeting").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "database_unreachable", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("database"),
        "{body}"
    );
    assert!(
        took < Duration::from_secs(5),
        "answered after {took:?}: the pool's acquire timeout is 10 s"
    );
    assert_eq!(
        retry_after(addr, "/test/kv/greeting").await.as_deref(),
        Some("2")
    );
    // So is every other route of a plugin that uses storage (the circuit is per plugin, as
    // its routes share its stores); core's routes and storage-free plugins' serve as usual.
    let (status, body, _) = timed(addr, "/test/items/7").await;
    assert_eq!(status, 503, "{body}");
    let (status, _, _) = timed(addr, "/health").await;
    assert_eq!(status, 200);

    proxy.up().await;
    let (status, body) = until(addr, "/ready", 200, Duration::from_secs(20)).await;
    assert_eq!(status, 200, "not ready again after the outage: {body}");
    let (status, body) = until(addr, "/test/kv/greeting", 200, Duration::from_secs(10)).await;
    assert_eq!(status, 200, "{body}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
