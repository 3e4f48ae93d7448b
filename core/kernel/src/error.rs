//! The one HTTP error type: a status and a JSON body that names the problem.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answered as `{"error": "...", ...details}` with its status code.
///
/// Plugins return it from handlers (`Result<Json<T>, ApiError>`); the framework uses it for
/// its own 4xx and 5xx answers so that every error body has the same shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
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
            .with_details(json!({ "code": "database_unreachable" }))
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

/// The longest message an error body carries, in characters: a message that quotes what a
/// client sent (a name, a path) is cut there, so an error never echoes input of any size.
const MAX_MESSAGE_CHARS: usize = 1024;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match self.message.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((cut, _)) => format!(
                "{}… (cut at {MAX_MESSAGE_CHARS} characters)",
                &self.message[..cut]
            ),
            None => self.message,
        };
        let mut body = json!({ "error": message });
        if let (Some(Value::Object(details)), Value::Object(map)) = (self.details, &mut body) {
            map.extend(details);
        }
        let mut response = (self.status, Json(body)).into_response();
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
