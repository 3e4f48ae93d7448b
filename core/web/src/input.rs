//! The request-input extractors plugins use, `Json`, `Query` and `Path`: axum's, with every
//! rejection answered as the project's JSON error, and a bad JSON body named by the JSON
//! pointer of the offending field and what was expected there.
//!
//! Statuses, deliberately: a body that is not JSON by its `Content-Type` is `415`; one that is
//! malformed, or does not match the handler's type, is `400`; one over the body limit is `413`.
//! axum's own `Json` answers `422` for a type mismatch, which the guide's rule (400 for bad
//! input) does not distinguish from a syntax error; a client cannot act differently on them.

use std::fmt;
use std::ops::{Deref, DerefMut};

use axum::body::Bytes;
use axum::extract::{
    FromRequest, FromRequestParts, OptionalFromRequest, OptionalFromRequestParts, Request,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use plexichat_kernel::config::pointer_token;
use plexichat_kernel::error::ApiError;

/// A JSON request body or response: `Json<T>` as an argument parses the body into `T`, as a
/// return value serialises `T`.
///
/// A body that does not fit `T` gets `400` with the JSON pointer of the bad field and what
/// was expected there (see [`JsonRejection`]); take `Result<Json<T>, JsonRejection>` to answer
/// differently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(value: T) -> Self {
        Json(value)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = JsonRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, JsonRejection> {
        if !is_json(request.headers()) {
            let content_type = request
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            return Err(JsonRejection::content_type(content_type));
        }
        let body = read_body(request, state).await?;
        parse(&body).map(Json)
    }
}

/// An optional body, `Option<Json<T>>`: a request without a `Content-Type` and without a
/// body is `None`; a body sent without the JSON content type is refused as for `Json<T>`.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = JsonRejection;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, JsonRejection> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            return <Self as FromRequest<S>>::from_request(request, state)
                .await
                .map(Some);
        }
        let body = read_body(request, state).await?;
        if body.is_empty() {
            Ok(None)
        } else {
            Err(JsonRejection::content_type(None))
        }
    }
}

/// The whole body, or why it could not be read (too large, cut off).
async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, JsonRejection> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| JsonRejection {
            status: rejection.status(),
            message: rejection.body_text(),
            pointer: None,
            expected: None,
        })
}

/// Parses `body` as `T`, or says where and why it does not fit.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, JsonRejection> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        JsonRejection::from_serde(error.inner(), pointer_of(error.path()), body.is_empty())
    })?;
    // Text after the value (`{} x`) is malformed JSON, not a second value to ignore.
    deserializer
        .end()
        .map_err(|error| JsonRejection::from_serde(&error, String::new(), false))?;
    Ok(value)
}

/// `application/json` or any `application/*+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// Why a [`Json`] body was refused: its status, a sentence, and for a body that does not fit
/// the handler's type, the JSON pointer of the field and what was expected there.
///
/// Answered as `{"error": "...", "pointer": "/items/0/name", "expected": "a string"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonRejection {
    status: StatusCode,
    message: String,
    pointer: Option<String>,
    expected: Option<String>,
}

impl JsonRejection {
    fn content_type(given: Option<String>) -> JsonRejection {
        let message = match &given {
            Some(given) => {
                format!("expected a JSON body with `Content-Type: application/json`, got `{given}`")
            }
            None => "expected a JSON body: set `Content-Type: application/json`".to_string(),
        };
        JsonRejection {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message,
            pointer: None,
            expected: Some("application/json".to_string()),
        }
    }

    fn from_serde(inner: &serde_json::Error, mut pointer: String, empty: bool) -> Self {
        let text = without_position(inner);
        if empty {
            return JsonRejection::bad(
                "the request body is empty; expected a JSON value".to_string(),
                None,
                None,
            );
        }
        if inner.is_syntax() || inner.is_eof() {
            return JsonRejection::bad(
                format!(
                    "the request body is not valid JSON: {text} (line {}, column {})",
                    inner.line(),
                    inner.column()
                ),
                None,
                None,
            );
        }
        // serde names a missing field in the message, with the path of the object that
        // lacks it (an unknown one's path already ends at the key): the pointer is more
        // useful at the field itself.
        if let Some(field) = quoted_after(&text, "missing field ") {
            pointer.push('/');
            pointer.push_str(&pointer_token(field));
        }
        let expected = text
            .rsplit_once(", expected ")
            .map(|(_, expected)| expected.to_string())
            .or_else(|| {
                text.starts_with("missing field ")
                    .then(|| "a value (the field is required)".to_string())
            });
        let message = if pointer.is_empty() {
            format!("invalid body: {text}")
        } else {
            format!("invalid `{pointer}`: {text}")
        };
        JsonRejection::bad(message, Some(pointer), expected)
    }

    fn bad(message: String, pointer: Option<String>, expected: Option<String>) -> Self {
        JsonRejection {
            status: StatusCode::BAD_REQUEST,
            message,
            pointer,
            expected,
        }
    }

    /// `400`, `413` or `415`.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What is wrong, in a sentence.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON pointer (RFC 6901) of the field that did not fit; `""` is the whole body.
    pub fn pointer(&self) -> Option<&str> {
        self.pointer.as_deref()
    }

    /// What was expected there, in serde's words (`u8`, `a string`, one of the variants).
    pub fn expected(&self) -> Option<&str> {
        self.expected.as_deref()
    }
}

impl fmt::Display for JsonRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JsonRejection {}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let mut details = serde_json::Map::new();
        if let Some(pointer) = rejection.pointer {
            details.insert("pointer".to_string(), Value::String(pointer));
        }
        if let Some(expected) = rejection.expected {
            details.insert("expected".to_string(), Value::String(expected));
        }
        ApiError::new(rejection.status, rejection.message).with_details(Value::Object(details))
    }
}

impl IntoResponse for JsonRejection {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// serde_json's message without its " at line L column C" suffix, which a pointer replaces.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// The text between the backticks that follow `prefix` at the start of `text`.
fn quoted_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(field, _)| field)
}

/// A serde path as an RFC 6901 JSON pointer: `items[0].name` → `/items/0/name`.
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        let token = match segment {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } => pointer_token(key),
            Segment::Enum { variant } => pointer_token(variant),
            Segment::Unknown => continue,
        };
        pointer.push('/');
        pointer.push_str(&token);
    }
    pointer
}

/// Query-string parameters: `Query<Filter>` deserialises `?page=2&tag=a` into `Filter`. A
/// query that does not fit answers `400` with a JSON body naming the problem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T> Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        <axum::extract::Query<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| {
                ApiError::new(rejection.status(), rejection.body_text())
                    .with_details(json!({ "in": "query" }))
            })
    }
}

impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        if parts.uri.query().is_none_or(str::is_empty) {
            return Ok(None);
        }
        <Query<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// Path parameters: `Path(id): Path<u64>` for `/items/{id}`, a tuple or a struct for several.
/// A segment that does not fit answers `400` with a JSON body naming the parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T> Deref for Path<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        <axum::extract::Path<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| {
                ApiError::new(rejection.status(), rejection.body_text())
                    .with_details(json!({ "in": "path" }))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
        note: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        count: u8,
    }

    fn reject(body: &str) -> JsonRejection {
        parse::<Order>(body.as_bytes()).expect_err(body)
    }

    /// `(body, pointer, expected, start of the message)`.
    #[test]
    fn each_bad_body_names_its_field_and_what_was_expected() {
        let cases: &[(&str, Option<&str>, Option<&str>, &str)] = &[
            (
                r#"{"items": [{"name": "a", "count": "x"}]}"#,
                Some("/items/0/count"),
                Some("u8"),
                "invalid `/items/0/count`: invalid type: string \"x\"",
            ),
            (
                r#"{"items": [{"count": 1}]}"#,
                Some("/items/0/name"),
                Some("a value (the field is required)"),
                "invalid `/items/0/name`: missing field `name`",
            ),
            (
                r#"{"items": [], "nite": "x"}"#,
                Some("/nite"),
                Some("`items` or `note`"),
                "invalid `/nite`: unknown field `nite`",
            ),
            (
                r#"{"items": [{"name": "a", "count": 300}]}"#,
                Some("/items/0/count"),
                Some("u8"),
                "invalid `/items/0/count`: invalid value: integer `300`",
            ),
            (
                r#""x""#,
                Some(""),
                Some("struct Order"),
                "invalid body: invalid type: string \"x\"",
            ),
            (
                r#"{"items": ["#,
                None,
                None,
                "the request body is not valid JSON",
            ),
            (
                r#"{"items": []} x"#,
                None,
                None,
                "the request body is not valid JSON: trailing characters",
            ),
            ("", None, None, "the request body is empty"),
        ];
        for (body, pointer, expected, message) in cases {
            let rejection = reject(body);
            assert_eq!(rejection.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(rejection.pointer(), *pointer, "{body}");
            assert_eq!(rejection.expected(), *expected, "{body}");
            assert!(
                rejection.message().starts_with(message),
                "{body}: {}",
                rejection.message()
            );
        }
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }

    #[test]
    fn json_content_types() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
