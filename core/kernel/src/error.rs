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
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            details: None,
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

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
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
        (self.status, Json(body)).into_response()
    }
}
