//! Helpers for plugin tests: the linked plugins served through `oneshot`, no socket needed.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::Value;
use tower::ServiceExt;

use plexichat_kernel::abi::plugin::Configurable;
use plexichat_kernel::config::Config;
use plexichat_kernel::config::database::DatabaseUrl;
use plexichat_kernel::config::secret::Secret;
use plexichat_kernel::registry::Registry;
use plexichat_kernel::runtime::Runtime;
use plexichat_kernel::storage::{Database, Storage};

/// Every plugin linked into the test binary, with its router: the host's side of a test (a
/// cargo test drives the runtime through [`TestApp::runtime`]) and, through `Deref`, its
/// [`TestClient`] (`app.get("/health")`).
#[derive(Debug)]
pub struct TestApp {
    /// The runtime, for publishing events or reaching plugin state directly.
    pub runtime: Runtime,
    client: TestClient,
}

/// Requests to a server's routes, served in-process exactly as a socket would reach them:
/// what a plugin's own `#[plugin_test]` gets from `context.app()`. Unlike [`TestApp`], it
/// holds no runtime, so a plugin's test can act on the server only as a client could.
#[derive(Debug, Clone)]
pub struct TestClient {
    router: Router,
    admin_token: Option<Secret>,
}

impl std::ops::Deref for TestApp {
    type Target = TestClient;

    fn deref(&self) -> &TestClient {
        &self.client
    }
}

impl TestApp {
    /// Builds the app from the linked registry with the default configuration and starts
    /// it: every plugin's `init` has run, as in a served binary. Panics with the registry's
    /// errors or a plugin's init failure, which is what a test wants.
    ///
    /// Data goes to a fresh in-memory SQLite database and a fresh data folder; with
    /// `PLEXICHAT_TEST_ENGINE=postgres` (as `cargo xtask test` sets for the plugins' second
    /// run) to a fresh database on the PostgreSQL server `PLEXICHAT_TEST_POSTGRES` names.
    pub async fn linked() -> TestApp {
        let registry = Registry::linked().unwrap_or_else(|errors| panic!("{errors}"));
        let mut config = Config::defaults(&registry);
        let storage = test_storage(&mut config).await;
        let app = TestApp::new(Runtime::with_storage(registry, config, None, storage));
        let failures = app.runtime.start().await;
        assert!(failures.is_empty(), "plugins failed to start: {failures:?}");
        app
    }

    /// Builds the app around an existing runtime, without starting it: until
    /// `app.runtime.start().await`, plugin routes answer 503.
    pub fn new(runtime: Runtime) -> TestApp {
        TestApp::with_options(runtime, &plexichat_web::ServerOptions::default())
    }

    /// Builds the app with non-default limits.
    pub fn with_options(runtime: Runtime, options: &plexichat_web::ServerOptions) -> TestApp {
        let client = TestClient::new(&runtime, options);
        TestApp { runtime, client }
    }

    /// Starts building an app with a configuration and an admin token; see [`TestAppBuilder`].
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// Runs every `#[plugin_test]` of `plugin` on this app's runtime, as the test manager
    /// would, and returns the runs in name order; panics when there is no such plugin.
    /// `assert!(app.plugin_tests("hello").await.iter().all(|run| run.status.is_ok()))`.
    pub async fn plugin_tests(&self, plugin: &str) -> Vec<crate::selftest::TestRun> {
        crate::selftest::run_selection(
            &self.runtime,
            &crate::selftest::Selection::Plugin(plugin.to_string()),
            crate::selftest::Priority::Medium,
            crate::selftest::Trigger::Cli,
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"))
    }
}

impl TestClient {
    /// The client of the application `plexichat_web::app_with` builds on `runtime`.
    pub(crate) fn new(runtime: &Runtime, options: &plexichat_web::ServerOptions) -> TestClient {
        let router =
            plexichat_web::app_with(runtime, options).unwrap_or_else(|error| panic!("{error}"));
        TestClient {
            router,
            admin_token: options.admin_token.clone(),
        }
    }

    /// `GET path`; returns the status and the body parsed as JSON (`Null` when empty).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request("GET", path).send().await
    }

    /// `POST path` with `body`: `json!({..})`, `()` for none, or a [`TestBody`].
    pub async fn post(&self, path: &str, body: impl Into<TestBody>) -> (StatusCode, Value) {
        self.request("POST", path).body(body).send().await
    }

    /// A request to build: `app.request("PUT", "/x").json(&item).header("x-a", "b").send()`.
    pub fn request<'a>(&'a self, method: &str, path: &str) -> TestRequest<'a> {
        TestRequest {
            client: self,
            builder: Request::builder().method(method).uri(path),
            body: TestBody::empty(),
        }
    }

    /// Serves these routes on a loopback port for the rest of the test (the task ends with
    /// the test's runtime): for a client that needs a socket, such as a WebSocket's. The
    /// address.
    ///
    /// The routes are served by axum alone: the server's connection limits and drain are
    /// not in front of them.
    pub async fn serve_on_loopback(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("the port's address");
        let service = self
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        address
    }

    /// Sends a request and returns the whole response, headers included.
    pub async fn send_raw(&self, request: Request<Body>) -> axum::response::Response {
        self.router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible")
    }

    /// Sends a request built by the test; returns the status and the body as JSON.
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.send_raw(request).await;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("in-memory body")
            .to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, json)
    }
}

/// The variable that selects the engine of [`TestApp`]s: `sqlite` (the default) or
/// `postgres`.
pub const ENGINE_VAR: &str = "PLEXICHAT_TEST_ENGINE";
/// The variable that names the PostgreSQL server tests use (`cargo xtask test` starts one).
pub const POSTGRES_VAR: &str = "PLEXICHAT_TEST_POSTGRES";

/// Fresh storage for one test app: a new data folder (set in `config.data.dir`) and an
/// in-memory SQLite database, or a new PostgreSQL database when [`ENGINE_VAR`] says so.
async fn test_storage(config: &mut Config) -> Storage {
    config.data.dir = fresh_dir("data");
    match std::env::var(ENGINE_VAR).as_deref() {
        Ok("postgres") => Storage::new(fresh_postgres_database().await, &config.data.dir),
        Ok("sqlite") | Err(_) => Storage::memory(&config.data.dir),
        Ok(other) => panic!("{ENGINE_VAR}={other}: expected `sqlite` or `postgres`"),
    }
}

/// A new, unique folder path under the system's temporary folder (not created).
///
/// Unique within this process; a folder an earlier process with the same id left at that path
/// (process ids are reused, and tests do not always clean up) is removed first, so the test
/// never starts on someone else's data.
pub fn fresh_dir(what: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "plexichat-test-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path);
    path
}

/// A new, empty database on the server [`POSTGRES_VAR`] names; panics, saying how to get
/// one, when the variable is missing or the server refuses.
pub async fn fresh_postgres_database() -> Database {
    let server = std::env::var(POSTGRES_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_VAR} is not set: these tests need PostgreSQL; run them with `cargo xtask test`, which starts a throwaway server, or set it to a server URL"
        )
    });
    let admin_url =
        DatabaseUrl::parse(&server).unwrap_or_else(|error| panic!("{POSTGRES_VAR}: {error}"));
    let admin = Database::open(&admin_url)
        .await
        .unwrap_or_else(|error| panic!("{POSTGRES_VAR}: {error}"));
    let name = fresh_dir("db")
        .file_name()
        .map(|name| name.to_string_lossy().replace('-', "_"))
        .unwrap_or_default();
    // The name is ours (letters, digits, underscores), not input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(admin.pool())
        .await
        .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
    admin.close().await;
    let mut url = url::Url::parse(admin_url.expose()).unwrap_or_else(|error| panic!("{error}"));
    url.set_path(&format!("/{name}"));
    let url = DatabaseUrl::parse(url.as_str()).unwrap_or_else(|error| panic!("{error}"));
    Database::open(&url)
        .await
        .unwrap_or_else(|error| panic!("test database {name}: {error}"))
}

/// A request body for [`TestApp::post`] and [`TestRequest::body`].
#[derive(Debug, Clone)]
pub struct TestBody {
    content_type: Option<&'static str>,
    bytes: Vec<u8>,
}

impl TestBody {
    /// No body.
    pub fn empty() -> TestBody {
        TestBody {
            content_type: None,
            bytes: Vec::new(),
        }
    }

    /// `value` as JSON, with `Content-Type: application/json`.
    pub fn json(value: &impl Serialize) -> TestBody {
        TestBody {
            content_type: Some("application/json"),
            bytes: serde_json::to_vec(value).expect("a test body serialises"),
        }
    }

    /// Raw bytes with the given content type (or none), to test what clients get wrong.
    pub fn raw(content_type: Option<&'static str>, bytes: impl Into<Vec<u8>>) -> TestBody {
        TestBody {
            content_type,
            bytes: bytes.into(),
        }
    }
}

impl From<Value> for TestBody {
    fn from(value: Value) -> TestBody {
        TestBody::json(&value)
    }
}

impl From<()> for TestBody {
    fn from((): ()) -> TestBody {
        TestBody::empty()
    }
}

/// A request being built by [`TestClient::request`]. Its `Debug` shows the method and URI
/// only: headers may carry the admin token.
#[must_use = "a request does nothing until `.send().await`"]
pub struct TestRequest<'a> {
    client: &'a TestClient,
    builder: axum::http::request::Builder,
    body: TestBody,
}

impl std::fmt::Debug for TestRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRequest")
            .field("method", &self.builder.method_ref())
            .field("uri", &self.builder.uri_ref())
            .finish_non_exhaustive()
    }
}

impl TestRequest<'_> {
    /// Sets a header; panics on a name or value that HTTP does not allow.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name).expect("a valid header name");
        let value = HeaderValue::try_from(value).expect("a valid header value");
        self.builder = self.builder.header(name, value);
        self
    }

    /// `Authorization: Bearer <token>`, marked sensitive.
    pub fn bearer(mut self, token: &str) -> Self {
        let mut value =
            HeaderValue::try_from(format!("Bearer {token}")).expect("a valid header value");
        value.set_sensitive(true);
        self.builder = self.builder.header(header::AUTHORIZATION, value);
        self
    }

    /// As if the request came over a socket from `peer` (`ConnectInfo`, which
    /// `ClientAddress` and the admin API's backoff read); in-process requests have no peer.
    pub fn peer(mut self, peer: std::net::SocketAddr) -> Self {
        self.builder = self.builder.extension(axum::extract::ConnectInfo(peer));
        self
    }

    /// The app's admin token as the bearer; panics when the app was built without one.
    pub fn admin(self) -> Self {
        let token = self.client.admin_token.clone().expect(
            "this client has no admin token: build the app with `TestApp::builder().admin_token(..)`, or, in a plugin test, use `context.admin_app()` (permission `admin:api`)",
        );
        self.bearer(token.expose())
    }

    /// `value` as a JSON body.
    pub fn json(self, value: &impl Serialize) -> Self {
        self.body(TestBody::json(value))
    }

    /// Any body: `json!({..})`, `()` or a [`TestBody`].
    pub fn body(mut self, body: impl Into<TestBody>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends it; returns the status and the body parsed as JSON (a string when it is not).
    pub async fn send(self) -> (StatusCode, Value) {
        let client = self.client;
        client.send(self.build()).await
    }

    /// Sends it and returns the whole response, headers included.
    pub async fn send_raw(self) -> axum::response::Response {
        let client = self.client;
        client.send_raw(self.build()).await
    }

    fn build(self) -> Request<Body> {
        let mut builder = self.builder;
        if let Some(content_type) = self.body.content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        builder
            .body(Body::from(self.body.bytes))
            .expect("a valid test request")
    }
}

/// Builds a started [`TestApp`] from the linked plugins with a configuration and an admin
/// token: `TestApp::builder().config(toml).plugin_config::<MyPlugin>(cfg).admin_token(t)`.
#[derive(Debug, Default)]
pub struct TestAppBuilder {
    text: String,
    sections: Vec<(&'static str, toml::Value)>,
    admin_token: Option<Secret>,
}

impl TestAppBuilder {
    /// The configuration file's text, TOML, as an operator would write it.
    ///
    /// Checking a configuration needs plexichat's `validation` feature; a plugin crate
    /// turns it on for its tests only: `plexichat = { workspace = true, features =
    /// ["validation"] }` under `[dev-dependencies]`.
    pub fn config(mut self, toml: &str) -> Self {
        self.text = toml.to_string();
        self
    }

    /// Plugin `P`'s section as a typed value; replaces that section of [`config`](Self::config).
    pub fn plugin_config<P: Configurable>(mut self, config: P::Config) -> Self
    where
        P::Config: Serialize,
    {
        let value = toml::Value::try_from(&config)
            .unwrap_or_else(|error| panic!("`{}`'s configuration as TOML: {error}", P::NAME));
        self.sections.push((P::NAME, value));
        self
    }

    /// The bearer token of `/api/v1/admin/*`; [`TestRequest::admin`] sends it.
    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(Secret::new(token));
        self
    }

    /// Validates the configuration (panicking with every problem, as `config check` would
    /// print them) and starts every plugin (panicking with any `init` failure).
    pub async fn start(self) -> TestApp {
        let registry = Registry::linked().unwrap_or_else(|errors| panic!("{errors}"));
        let mut table: toml::Table = self
            .text
            .parse()
            .unwrap_or_else(|error| panic!("the test configuration is not TOML: {error}"));
        if !self.sections.is_empty() {
            let plugins = table
                .entry("plugins")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(plugins) = plugins else {
                panic!("`plugins` in the test configuration is not a table");
            };
            for (name, value) in self.sections {
                plugins.insert(name.to_string(), value);
            }
        }
        let mut config = Config::parse(&table.to_string(), &[], &registry, "test configuration")
            .unwrap_or_else(|errors| panic!("invalid test configuration:\n{errors}"));
        let storage = test_storage(&mut config).await;
        let options = plexichat_web::ServerOptions {
            admin_token: self.admin_token,
            ..plexichat_web::ServerOptions::from(&config.server)
        };
        let runtime = Runtime::with_storage(registry, config, None, storage);
        let app = TestApp::with_options(runtime, &options);
        let failures = app.runtime.start().await;
        assert!(failures.is_empty(), "plugins failed to start: {failures:?}");
        app
    }
}

/// The `application/problem+json` body (RFC 9457) a route's error becomes: the standard
/// members for `status` with `detail`, the stable `code`, the `error` kept for older clients,
/// and `extra`'s members (an object) beside them. For asserting a whole error body.
pub fn problem(status: u16, code: &str, detail: &str, extra: Value) -> Value {
    let title = StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Error");
    let mut body = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "error": detail,
        "code": code,
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body
}
