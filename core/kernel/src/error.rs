//! The one HTTP error type: a status and a problem body (RFC 9457) that names the problem.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answered as `application/problem+json` (RFC 9457): `{"type": "about:blank",
/// "title": "Not Found", "status": 404, "detail": "...", "error": "...", "code": "not_found",
/// ...details}` with its status code. `error` repeats `detail` for clients written before the
/// problem fields; `code` is stable, for programs to branch on (`with_code`, else one per
/// status: `bad_request`, `unauthorized`, `not_found`, `rate_limited`, …).
///
/// Plugins return it from handlers (`Result<Json<T>, ApiError>`); the framework uses it for
/// its own 4xx and 5xx answers so that every error body has the same shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// The stable code, when more precise than the status's.
    code: Option<&'static str>,
    details: Option<Value>,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u32>,
    /// Made from a storage error that could not reach the database: the answer carries
    /// [`DatabaseUnreachable`], from which the server learns of the outage.
    database_unreachable: bool,
}

/// The mark of an answer that failed because the database could not be reached, found by
/// the server's layer in front of plugin routes (which then checks the database).
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnreachable;

/// The message of a 503 for an unreachable database: what a client can do about it.
pub const DATABASE_UNREACHABLE: &str = "the database is unreachable; try again in a few seconds";

/// The `Retry-After` of such a 503, in seconds.
pub const DATABASE_RETRY_AFTER: u32 = 2;

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            code: None,
            details: None,
            retry_after: None,
            database_unreachable: false,
        }
    }

    /// 400: the request is wrong; `message` says how.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: the named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 503: the thing exists but cannot serve now.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500: logs `internal` and answers only a generic message, so internals never leak.
    pub fn internal(internal: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %internal, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// 500 for a request a plugin's code (a handler, a middleware) failed by panicking:
    /// generic, with the plugin's name so the operator knows whose log lines to read.
    pub fn plugin_failed(plugin: &str) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            .with_details(serde_json::json!({ "plugin": plugin }))
    }

    /// Adds fields to the body next to `error`; `details` must be a JSON object.
    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// Sets the stable `code` a program branches on (`mfa_required`, `username_taken`):
    /// lowercase words joined by `_`.
    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    /// The stable code this error answers with.
    pub fn code(&self) -> &'static str {
        self.code.unwrap_or_else(|| default_code(self.status))
    }

    /// 400 naming the field at fault (`field`, a JSON pointer or a parameter's name) with a
    /// stable `code`: `invalid_field` unless given.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::bad_request(message)
            .with_code("invalid_field")
            .with_details(json!({ "field": field }))
    }

    /// Adds a `Retry-After` header of `seconds`.
    pub fn with_retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 503 with `Retry-After` for a database that could not be reached.
    pub fn database_unreachable() -> ApiError {
        let mut error = ApiError::unavailable(DATABASE_UNREACHABLE)
            .with_code("database_unreachable")
            .with_retry_after(DATABASE_RETRY_AFTER);
        error.database_unreachable = true;
        error
    }
}

/// A query's failure: 503 with `Retry-After` when the database could not be reached (so a
/// client retries, and the server notices the outage), otherwise a logged, generic 500.
/// `?` on a `sqlx::Error` in a handler returning `Result<_, ApiError>` does this.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> ApiError {
        if crate::storage::database::is_unreachable(&error) {
            tracing::warn!(error = %error, "a query could not reach the database");
            ApiError::database_unreachable()
        } else {
            ApiError::internal(error)
        }
    }
}

/// A boxed error: what it is if it is one of the above (or an `ApiError`), else a logged,
/// generic 500. So a helper returning `Result<_, BoxError>` can be `?`-ed in a handler and a
/// database outage inside it is still a 503.
impl From<Box<dyn std::error::Error + Send + Sync>> for ApiError {
    fn from(error: Box<dyn std::error::Error + Send + Sync>) -> ApiError {
        let error = match error.downcast::<ApiError>() {
            Ok(error) => return *error,
            Err(error) => error,
        };
        let error = match error.downcast::<sqlx::Error>() {
            Ok(error) => return ApiError::from(*error),
            Err(error) => error,
        };
        match error.downcast::<crate::storage::kv::KvError>() {
            Ok(error) => ApiError::from(*error),
            Err(error) => ApiError::internal(error),
        }
    }
}

/// The key-value store's failures: its database errors as [`From<sqlx::Error>`] answers
/// them, an invalid key as 400, anything else as a logged 500.
impl From<crate::storage::kv::KvError> for ApiError {
    fn from(error: crate::storage::kv::KvError) -> ApiError {
        use crate::storage::kv::KvError;
        match error {
            KvError::Database(error) => ApiError::from(error),
            KvError::InvalidKey(_) => ApiError::bad_request(error.to_string()),
            KvError::Json { .. } => ApiError::internal(error),
        }
    }
}

/// A proposal a plugin rejected: 403 with the reason and the plugin's name; one whose
/// pre-handler panicked is 500 and one that ran out of time 503, both naming the plugin but
/// not the panic message, which is for the log.
impl From<crate::runtime::Rejection> for ApiError {
    fn from(rejection: crate::runtime::Rejection) -> ApiError {
        use crate::runtime::RejectionCause;
        let (status, message) = match rejection.cause {
            RejectionCause::Rejected => (StatusCode::FORBIDDEN, rejection.to_string()),
            RejectionCause::Panicked => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "plugin `{}` failed while deciding on `{}`",
                    rejection.plugin, rejection.event
                ),
            ),
            RejectionCause::TimedOut => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "plugin `{}` did not decide on `{}` in time",
                    rejection.plugin, rejection.event
                ),
            ),
        };
        let reason = match rejection.cause {
            RejectionCause::Rejected => Value::String(rejection.reason),
            _ => Value::Null,
        };
        ApiError::new(status, message).with_details(json!({
            "rejected_by": rejection.plugin,
            "handler": rejection.handler,
            "event": rejection.event,
            "reason": reason,
        }))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The code of an error that set none: its status's, in words.
fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        409 => "conflict",
        410 => "gone",
        411 => "length_required",
        412 => "precondition_failed",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        416 => "range_not_satisfiable",
        422 => "unprocessable",
        428 => "precondition_required",
        429 => "rate_limited",
        431 => "headers_too_large",
        500 => "internal",
        501 => "not_implemented",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "gateway_timeout",
        _ if status.is_client_error() => "client_error",
        _ => "server_error",
    }
}

/// The longest message an error body carries, in characters: a message that quotes what a
/// client sent (a name, a path) is cut there, so an error never echoes input of any size.
const MAX_MESSAGE_CHARS: usize = 1024;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let message = match self.message.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((cut, _)) => format!(
                "{}… (cut at {MAX_MESSAGE_CHARS} characters)",
                &self.message[..cut]
            ),
            None => self.message,
        };
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": message,
            "error": message,
            "code": code,
        });
        if let (Some(Value::Object(details)), Value::Object(map)) = (self.details, &mut body) {
            // Details add fields; they do not replace the problem's own.
            for (key, value) in details {
                map.entry(key).or_insert(value);
            }
        }
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(PROBLEM_JSON),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if self.database_unreachable {
            response.extensions_mut().insert(DatabaseUnreachable);
        }
        response
    }
}
