//! Helpers for plugin tests: the linked plugins served through `oneshot`, no socket needed.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = plexichat::testing::TestApp::linked().await;
//! let (status, body) = app.get("/health").await;
//! assert_eq!(status, 200);
//! assert_eq!(body["status"], "ok");
//! # }
//! ```

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::server;

/// Every plugin linked into the test binary, with its router.
#[derive(Debug)]
pub struct TestApp {
    /// The runtime, for publishing events or reaching plugin state directly.
    pub runtime: Runtime,
    router: Router,
}

impl TestApp {
    /// Builds the app from the linked registry with the default configuration and starts
    /// it: every plugin's `init` has run, as in a served binary. Panics with the registry's
    /// errors or a plugin's init failure, which is what a test wants.
    pub async fn linked() -> TestApp {
        let registry = Registry::linked().unwrap_or_else(|errors| panic!("{errors}"));
        let app = TestApp::new(Runtime::new(registry));
        let failures = app.runtime.start().await;
        assert!(failures.is_empty(), "plugins failed to start: {failures:?}");
        app
    }

    /// Builds the app around an existing runtime, without starting it: until
    /// `app.runtime.start().await`, plugin routes answer 503.
    pub fn new(runtime: Runtime) -> TestApp {
        TestApp::with_options(runtime, &server::ServerOptions::default())
    }

    /// Builds the app with non-default limits.
    pub fn with_options(runtime: Runtime, options: &server::ServerOptions) -> TestApp {
        let router = server::app_with(&runtime, options).unwrap_or_else(|error| panic!("{error}"));
        TestApp { runtime, router }
    }

    /// `GET path`; returns the status and the body parsed as JSON (`Null` when empty).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request("GET", path, None).await
    }

    /// `POST path` with an optional JSON body.
    pub async fn post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.request("POST", path, body).await
    }

    /// Any method, optional JSON body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("valid test request"))
            .await
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
