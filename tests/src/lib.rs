//! Helpers shared by the integration tests: a tiny HTTP client for tests that use a real
//! socket, and the workspace's location for tests that build the app.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Names the workspace that [`workspace_root`] returns instead of this checkout. The test
/// that adds a plugin to a scratch copy of the workspace sets it to run this suite's
/// composition tests against the copy.
pub const WORKSPACE_VARIABLE: &str = "PLEXICHAT_TESTS_WORKSPACE";

/// The workspace root: this checkout, or the directory in [`WORKSPACE_VARIABLE`].
pub fn workspace_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(WORKSPACE_VARIABLE) {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// A fresh, empty directory `target/test-scratch/<name>-<pid>` for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root()
        .join("target/test-scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    dir
}

/// Sends one request over a fresh TCP connection; returns the status and the JSON body
/// (`Null` when empty).
pub async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, Value) {
    request_with(addr, method, path, &[]).await
}

/// Like [`request`], with extra headers.
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    request_with_body(addr, method, path, headers, Bytes::new()).await
}

/// Like [`request`], with a JSON body and, if given, a bearer token.
pub async fn request_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    request_with_body(addr, method, path, &headers, Bytes::from(body.to_string())).await
}

async fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {addr}: {error}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1 handshake");
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body)).expect("valid request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (status, body)
}
