//! The admin API under `/api/v1/admin`: every endpoint needs `Authorization: Bearer <token>`,
//! compared in constant time, and changes the running server.

use std::io::Write;
use std::path::{Path as FilePath, PathBuf};
use std::sync::Arc;

use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::runtime::{ReloadError, Runtime};
use crate::server::unknown_plugin;

/// The file, inside the data directory, that holds a generated admin token.
pub const TOKEN_FILE: &str = "admin_token";

/// The admin token in `dir/admin_token`, generated (32 random bytes, hex) and written with
/// mode 0600 if the file does not exist yet. Returns the token, the file, and whether it was
/// created now.
pub fn ensure_token(dir: &FilePath) -> std::io::Result<(String, PathBuf, bool)> {
    let path = dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok((text.trim().to_string(), path, false)),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is empty; delete it to have a new token generated",
                path.display()
            )));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| std::io::Error::other(error.to_string()))?;
    let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    Ok((token, path, true))
}

/// The admin routes, guarded by `token`; with no token every admin request is refused.
pub(crate) fn router(token: Option<Arc<str>>) -> Router {
    Router::new()
        .route("/api/v1/admin/plugins/{name}/disable", post(disable))
        .route("/api/v1/admin/plugins/{name}/enable", post(enable))
        .route("/api/v1/admin/config/reload", post(reload))
        .route_layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let token = token.clone();
                async move { authorize(token.as_deref(), request, next).await }
            },
        ))
}

async fn authorize(token: Option<&str>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let problem = match (token, presented) {
        (None, _) => "the admin API has no token configured",
        (Some(_), None) => "missing `Authorization: Bearer <token>` header",
        // `ct_eq` takes the same time wherever the first difference is, so the answer's
        // timing does not reveal how much of a guess was right.
        (Some(expected), Some(given))
            if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) =>
        {
            return next.run(request).await;
        }
        (Some(_), Some(_)) => "wrong admin token",
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, problem).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn disable(runtime: Extension<Runtime>, name: Path<String>) -> Result<Json<Value>, ApiError> {
    switch(runtime, name, false)
}

async fn enable(runtime: Extension<Runtime>, name: Path<String>) -> Result<Json<Value>, ApiError> {
    switch(runtime, name, true)
}

fn switch(
    Extension(runtime): Extension<Runtime>,
    Path(name): Path<String>,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let changed = runtime
        .set_enabled(&name, enabled)
        .ok_or_else(|| unknown_plugin(runtime.registry(), &name))?;
    let changed: Vec<Value> = changed
        .into_iter()
        .map(|(plugin, status)| json!({ "plugin": plugin, "status": status }))
        .collect();
    Ok(Json(json!({
        "plugin": name,
        "status": runtime.status(&name),
        "changed": changed,
    })))
}

async fn reload(Extension(runtime): Extension<Runtime>) -> Result<Json<Value>, ApiError> {
    match runtime.reload().await {
        Ok(report) => Ok(Json(json!({ "reloaded": true, "report": report }))),
        Err(ReloadError::NoSource) => Err(ApiError::unavailable(
            "this server was started without a configuration source to reload",
        )),
        Err(ReloadError::Invalid(errors)) => Err(ApiError::bad_request(format!(
            "{} is invalid; the previous configuration stays in effect",
            errors.source
        ))
        .with_details(json!({ "issues": errors.issues }))),
        Err(ReloadError::Vetoed(failures)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "a plugin refused the new configuration; the previous configuration stays in effect",
        )
        .with_details(json!({ "failures": failures }))),
    }
}
