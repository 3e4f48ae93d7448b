//! The bounds `#[debug_handler]` checks one at a time, each at its own span, against the
//! runtime as router state: what `axum::debug_handler` checks, reachable through the facade.

use std::future::Future;

use axum::extract::{FromRequest, FromRequestParts};
use axum::response::IntoResponse;

use crate::runtime::Host;

/// An argument before the last: it reads the request's head.
pub fn check_argument<T: FromRequestParts<Host> + Send>() {}

/// The last argument: it may also consume the body.
pub fn check_last_argument<T: FromRequest<Host, M> + Send, M>() {}

/// The return type becomes a response.
pub fn check_response<T: IntoResponse>() {}

/// The handler's future can move between threads, as a server task must.
pub fn check_send<F: Future + Send>(_future: F) {}
