//! [`Caller`]: the signed-in person a request comes from, for any plugin's route, proven by
//! an access token the database knows and has not revoked.

use plexichat::axum::extract::FromRequestParts;
use plexichat::http::request::Parts;
use plexichat::http::{HeaderMap, HeaderValue, header};
use plexichat::openapi::{Describer, InputDoc};
use plexichat::prelude::*;
use plexichat::response::Response;

use crate::{Accounts, crypto, store};

/// The OpenAPI security scheme of a person's access token.
pub(crate) const SCHEME: &str = "accessToken";
const SCHEME_DOC: &str =
    "A person's access token (`pxa_…`), from `POST /api/v1/auth/login`, `/register` or `/refresh`.";

/// What a person may do beyond their own things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everyone.
    Member,
    /// Manages the server: its settings, invitations, anyone's channels.
    Admin,
}

impl Role {
    /// `member` or `admin`, as stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    pub(crate) fn parse(text: &str) -> Role {
        if text == "admin" {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

/// The signed-in person a request comes from: a route argument `caller: Caller` answers 401
/// (`WWW-Authenticate: Bearer`, code `unauthorized`, or `token_expired` for an access token
/// past its time, which the client renews with its refresh token) unless the request carries
/// `Authorization: Bearer <access token>` of a live session.
///
/// A plugin using it depends on `accounts` (`dependencies = ["accounts"]`), which reads the
/// session from the database on every request: ending a session ends its access at once.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The person's id.
    pub user_id: i64,
    /// Their username.
    pub username: String,
    /// Their role.
    pub role: Role,
    /// The session the token belongs to.
    pub session_id: i64,
}

impl Caller {
    /// Whether the person is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Why a token does not authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Missing,
    Unknown,
    Expired,
}

impl TokenProblem {
    pub(crate) fn into_error(self) -> ApiError {
        let (code, message) = match self {
            TokenProblem::Missing => (
                "unauthorized",
                "sign in first: send `Authorization: Bearer <access token>`",
            ),
            TokenProblem::Unknown => (
                "unauthorized",
                "the access token is not valid (signed out, or never issued); sign in again",
            ),
            TokenProblem::Expired => (
                "token_expired",
                "the access token has expired; renew it with `POST /api/v1/auth/refresh`",
            ),
        };
        ApiError::new(StatusCode::UNAUTHORIZED, message).with_code(code)
    }
}

/// A 401 with the header that says how to authenticate.
pub(crate) fn unauthorized(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"plexichat\""),
    );
    response
}

/// The bearer token of `headers`, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Record a session's use at most this often: a write per request would cost more than the
/// request.
const TOUCH_EVERY_MS: i64 = 60_000;

impl Accounts {
    /// The person an access token belongs to, checked against the database; what [`Caller`]
    /// does, for a caller that has a token without a request (a WebSocket's first frame).
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        let pool = self.pool()?;
        if !token.starts_with("pxa_") {
            return Err(TokenProblem::Unknown.into_error());
        }
        let Some(session) = store::session_by_access(pool, &crypto::digest(token)).await? else {
            return Err(TokenProblem::Unknown.into_error());
        };
        let now = store::now_ms();
        if session.access_expires_ms <= now {
            return Err(TokenProblem::Expired.into_error());
        }
        if now - session.last_used_ms >= TOUCH_EVERY_MS {
            store::touch_session(pool, session.session_id, now).await?;
        }
        Ok(Caller {
            user_id: session.user_id,
            username: session.username,
            role: Role::parse(&session.role),
            session_id: session.session_id,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    PluginState<Accounts>: FromRequestParts<S, Rejection = ApiError>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, Response> {
        let accounts = PluginState::<Accounts>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(token) = bearer(&parts.headers) else {
            return Err(unauthorized(TokenProblem::Missing.into_error()));
        };
        match accounts.authenticate(token).await {
            Ok(caller) => Ok(caller),
            Err(error) if error.status() == StatusCode::UNAUTHORIZED => Err(unauthorized(error)),
            Err(error) => Err(error.into_response()),
        }
    }
}

impl InputDoc for Caller {
    fn describe_input(describer: &mut Describer) {
        describer.requires_bearer(SCHEME, SCHEME_DOC);
    }
}
