//! The admin API under `/api/v1/admin`: every endpoint needs `Authorization: Bearer <token>`,
//! compared in constant time, or a browser session opened with that token (its cookie and
//! its CSRF token, see [`crate::session`]). Failed authentication and every admin
//! action are logged with the client's address (rate-limited), never with a secret.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::backoff::Backoff;
use crate::core_routes::{Access, CoreRoute, Wiring, json_any};
use crate::input::Json;
use crate::log_limit::LogLimit;
use crate::session::{self, Refusal, Sessions};
use crate::{Hosted, unknown_plugin};
use plexichat_kernel::abi::openapi::Describer;
use plexichat_kernel::abi::route::Method;
use plexichat_kernel::config::secret::Secret;
use plexichat_kernel::error::ApiError;
use plexichat_kernel::runtime::info::{Audience, PluginInfo};
use plexichat_kernel::runtime::vouch::{AdminVouchers, Vouched};
use plexichat_kernel::runtime::{Host, ReloadError, Runtime, TransitionError, behind};

pub(crate) const SESSION: &str = "/api/v1/admin/session";
pub(crate) const PLUGINS: &str = "/api/v1/admin/plugins";
pub(crate) const DISABLE: &str = "/api/v1/admin/plugins/{name}/disable";
pub(crate) const ENABLE: &str = "/api/v1/admin/plugins/{name}/enable";
pub(crate) const RELOAD: &str = "/api/v1/admin/config/reload";
pub(crate) const BACKUPS: &str = "/api/v1/admin/backups";
pub(crate) const BACKUP: &str = "/api/v1/admin/backups/{id}";
pub(crate) const METRICS: &str = "/metrics";
pub(crate) const SETTINGS: &str = "/api/v1/admin/settings";
pub(crate) const PLUGIN_SETTINGS: &str = "/api/v1/admin/settings/{name}";

/// The admin API's routes, guarded by the token (with no token every admin request is
/// refused) but for signing in, and `/metrics` when it is on the main address (bearer token
/// only: a scraper is no browser). The same guard answers for plugin routes that take
/// [`Admin`].
pub(crate) const ROUTES: &[CoreRoute] = &[
    CoreRoute {
        method: Method::Post,
        path: SESSION,
        id: "admin.sign_in",
        doc: "Signs a browser in with the admin token.\n\nSets an `HttpOnly`, `SameSite=Strict` cookie for `/api/v1/admin` and returns the CSRF token that every request with that cookie must carry in `X-CSRF-Token`.",
        access: Access::Public,
        only_with_metrics_on_main: false,
        describe: |d| {
            let body = json!({ "type": "object", "required": ["token"], "properties": { "token": { "type": "string" } }, "additionalProperties": false });
            d.body("application/json", body, true);
            let schema = json!({ "type": "object", "required": ["csrf_token"], "properties": { "csrf_token": { "type": "string" }, "csrf_header": { "type": "string" }, "idle_timeout_secs": { "type": "integer" }, "lifetime_secs": { "type": "integer" } } });
            d.response("201", "signed in", Some(("application/json", schema)));
        },
        handler: |wiring| {
            let guard = Arc::clone(&wiring.guard);
            post(move |request: Request| {
                let guard = Arc::clone(&guard);
                async move { guard.sign_in(request).await }
            })
        },
    },
    CoreRoute {
        method: Method::Get,
        path: SESSION,
        id: "admin.session",
        doc: "Whether the request is an admin's (a live session with its CSRF token, or the bearer token).",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| get(session),
    },
    CoreRoute {
        method: Method::Delete,
        path: SESSION,
        id: "admin.sign_out",
        doc: "Ends the browser session and expires its cookie.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: |d| d.response("204", "signed out", None),
        handler: |wiring| {
            let guard = Arc::clone(&wiring.guard);
            delete(move |request: Request| {
                let guard = Arc::clone(&guard);
                async move { guard.sign_out(&request) }
            })
        },
    },
    CoreRoute {
        method: Method::Get,
        path: PLUGINS,
        id: "admin.plugins",
        doc: "Every plugin with what public answers leave out: init failures, task errors, why each is not ready.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| get(plugins),
    },
    CoreRoute {
        method: Method::Post,
        path: DISABLE,
        id: "admin.disable",
        doc: "Disables a plugin at run time; its dependents stop first.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| post(disable),
    },
    CoreRoute {
        method: Method::Post,
        path: ENABLE,
        id: "admin.enable",
        doc: "Enables a plugin (retrying `init` if it failed) after its dependencies.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| post(enable),
    },
    CoreRoute {
        method: Method::Post,
        path: RELOAD,
        id: "admin.reload",
        doc: "Reloads the configuration file; plugins may veto the new one.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| post(reload),
    },
    CoreRoute {
        method: Method::Get,
        path: SETTINGS,
        id: "admin.settings",
        doc: "Every plugin's settings with their schema: the values in force (secrets `null`), which keys are secrets, and which the settings file (`<data>/settings.toml`) sets.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| get(crate::settings::list),
    },
    CoreRoute {
        method: Method::Put,
        path: PLUGIN_SETTINGS,
        id: "admin.save_settings",
        doc: "Saves some of a plugin's settings and applies them.

The body is a JSON object of the keys to set (`null` removes a key from the settings file). They are written to `<data>/settings.toml`, which is read over `plexichat.toml`, and applied through the configuration reload; if the reload refuses them (400 with the same issues as `plexichat config check`, or 409 when a plugin vetoes them) the file is put back as it was.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: |d| {
            d.body("application/json", json!({ "type": "object" }), true);
            json_any(d);
        },
        handler: |_| axum::routing::put(crate::settings::save),
    },
    CoreRoute {
        method: Method::Delete,
        path: PLUGIN_SETTINGS,
        id: "admin.reset_settings",
        doc: "Removes a plugin's section from the settings file, so `plexichat.toml` and the defaults apply again, and reloads.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| delete(crate::settings::reset),
    },
    CoreRoute {
        method: Method::Get,
        path: BACKUPS,
        id: "admin.backups",
        doc: "The backups in the data folder, newest first.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| get(backups),
    },
    CoreRoute {
        method: Method::Post,
        path: BACKUPS,
        id: "admin.create_backup",
        doc: "Writes a backup while the server keeps serving.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: created_backup,
        handler: |_| post(create_backup),
    },
    CoreRoute {
        method: Method::Get,
        path: BACKUP,
        id: "admin.download_backup",
        doc: "One backup archive, streamed.",
        access: Access::Admin,
        only_with_metrics_on_main: false,
        describe: backup_archive,
        handler: |_| get(download_backup),
    },
    CoreRoute {
        method: Method::Get,
        path: METRICS,
        id: "admin.metrics",
        doc: "Metrics in the Prometheus text format.",
        access: Access::Bearer,
        only_with_metrics_on_main: true,
        describe: |d| {
            d.response(
                "200",
                "the metrics",
                Some(("text/plain", json!({ "type": "string" }))),
            );
        },
        handler: metrics_handler,
    },
];

/// A created backup's answer, in the document.
pub(crate) fn created_backup(describer: &mut Describer) {
    describer.response(
        "201",
        "the backup, described",
        Some(("application/json", json!({}))),
    );
}

/// A backup archive's answer, in the document.
pub(crate) fn backup_archive(describer: &mut Describer) {
    describer.response("200", "the archive", Some(("application/x-tar", json!({}))));
}

/// `/metrics` on the main address: checked like the admin API, but scraped every few seconds,
/// so not logged as an action.
fn metrics_handler(wiring: &Wiring) -> MethodRouter<Host> {
    let (scraping, metrics) = (Arc::clone(&wiring.guard), Arc::clone(&wiring.metrics));
    get(
        move |Hosted(runtime): Hosted, request: Request| async move {
            let presented = bearer(&request);
            match scraping.judge(peer(&request), presented.is_some(), || {
                scraping.token_problem(presented)
            }) {
                Err(denial) => scraping.deny(client(&request), METRICS, denial),
                Ok(()) => super::metrics::exposition(&metrics, &runtime),
            }
        },
    )
}

/// The admin API's guard for `token`. The first application built on a runtime is the
/// server's, and its guard is the one [`Admin`] asks; the ones plugin tests build later to
/// reach its routes in-process must not replace it (and its sessions).
pub(crate) fn guard(runtime: &Runtime, token: Option<Secret>) -> Arc<Guard> {
    let guard = Arc::new(Guard {
        token,
        failures: LogLimit::new(Duration::from_secs(1)),
        backoff: Backoff::default(),
        sessions: Sessions::default(),
        vouchers: runtime.admin_vouchers(),
    });
    runtime
        .extension(Gate::default)
        .0
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert_with(|| Arc::clone(&guard));
    guard
}

/// `router`'s routes, each admitting only the admin.
pub(crate) fn behind_guard(router: Router<Host>, guard: &Arc<Guard>) -> Router<Host> {
    let guard = Arc::clone(guard);
    router.route_layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let guard = Arc::clone(&guard);
            async move { guard.authorize(request, next).await }
        },
    ))
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive
/// (RFC 9110, section 11.1).
fn bearer(request: &Request) -> Option<&str> {
    bearer_of(request.headers())
}

fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
}

/// What a bearer token that is not the admin token is told (unless a plugin vouches for it).
const WRONG_TOKEN: &str = "wrong admin token";

/// The admin API's check: the token, the browser sessions, and how refusals are logged.
pub(crate) struct Guard {
    token: Option<Secret>,
    /// At most one "failed admin authentication" line per second, with a count of the rest.
    failures: LogLimit,
    /// Wrong tokens and sessions, per client address: guessing costs time.
    backoff: Backoff,
    sessions: Sessions,
    /// Plugins that vouch for other bearer tokens as admins' (an `admin` user's session).
    vouchers: Arc<AdminVouchers>,
}

/// Why a request is not an admin's.
#[derive(Debug, Clone, Copy)]
enum Denial {
    /// What is wrong with its credentials.
    Problem(&'static str),
    /// Its address guessed wrong too often: it must wait this long before the next attempt
    /// is even compared.
    Backoff(Duration),
}

/// Where plugin routes find the admin API's guard: set by the first application built on the
/// runtime (the server's).
#[derive(Default)]
struct Gate(std::sync::RwLock<Option<Arc<Guard>>>);

/// Proof that a request is an admin's: a plugin route that takes `_admin: Admin` answers 401
/// (JSON, `WWW-Authenticate: Bearer`) unless the request carries the admin token as a bearer
/// token, or a browser session's cookie with its CSRF token, exactly as the admin API
/// demands. Every admitted request is logged as an admin action with the client's address.
///
/// The token and sessions are those of the first application built on the runtime: the
/// server's, which in-process clients (a plugin test's `context.app()`) share.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<Host> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, host: &Host) -> Result<Admin, Response> {
        let runtime = behind::of_host(host);
        let guard = runtime
            .extension(Gate::default)
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let connected = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        let client = connected.map_or_else(|| "unknown".to_string(), |info| info.0.to_string());
        let peer = connected.map(|info| info.0.ip());
        let path = parts.uri.path();
        let Some(guard) = guard else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the admin API has no token configured",
            )
            .into_response());
        };
        let vouched = guard.vouched(peer, &parts.headers).await;
        let verdict = guard.judge(peer, presents(&parts.headers), || {
            guard.problem_unless(vouched.as_ref(), &parts.headers)
        });
        match verdict {
            Ok(()) => {
                let by = vouched
                    .as_ref()
                    .map(|vouched| (vouched.plugin, vouched.who.as_str()));
                tracing::info!(%client, action = path, admin = ?by, "admin action");
                Ok(Admin)
            }
            Err(denial) => Err(guard.deny(client, path, denial)),
        }
    }
}

/// The body of `POST /api/v1/admin/session`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

/// The client's IP address, when the request came through a socket (in-process clients have
/// none, and no backoff).
fn peer(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Whether a request presents a token: only a token can be a guess, so only a wrong one
/// counts against the client's backoff (a session cookie is 128 random bits, and a stale one
/// in a polling dashboard is no attack).
fn presents(headers: &HeaderMap) -> bool {
    bearer_of(headers).is_some()
}

/// The client's address, or `unknown` when the request did not come through a socket.
fn client(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |info| info.0.to_string())
}

impl Guard {
    /// Whether `given` is the admin token. `ct_eq` takes the same time wherever the first
    /// difference is, so the answer's timing does not reveal how much of a guess was right.
    fn token_problem(&self, given: Option<&str>) -> Option<&'static str> {
        match (&self.token, given) {
            (None, _) => Some("the admin API has no token configured"),
            (Some(_), None) => Some("missing `Authorization: Bearer <token>` header"),
            (Some(expected), Some(given))
                if bool::from(expected.expose().as_bytes().ct_eq(given.as_bytes())) =>
            {
                None
            }
            (Some(_), Some(_)) => Some(WRONG_TOKEN),
        }
    }

    /// Which plugin vouches for the request's bearer token as an admin's, when it presents
    /// one that is not the admin token and its address is not waiting out a backoff.
    async fn vouched(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<Vouched> {
        let token = bearer_of(headers)?;
        if self.token_problem(Some(token)) != Some(WRONG_TOKEN) {
            return None;
        }
        if peer.and_then(|peer| self.backoff.wait(peer)).is_some() {
            return None;
        }
        self.vouchers.vouch(token).await
    }

    /// [`Guard::problem`], or none for a request a plugin vouched for.
    fn problem_unless(
        &self,
        vouched: Option<&Vouched>,
        headers: &HeaderMap,
    ) -> Option<&'static str> {
        if vouched.is_some() {
            None
        } else {
            self.problem(headers)
        }
    }

    /// What keeps a request with these headers from being an admin's, if anything.
    fn problem(&self, headers: &HeaderMap) -> Option<&'static str> {
        let presented = bearer_of(headers);
        // A bearer token, when given, decides alone; without one, a browser session may.
        match presented {
            Some(_) => self.token_problem(presented),
            None if self.token.is_none() => self.token_problem(None),
            None => match self.sessions.check(headers) {
                Ok(()) => None,
                // Neither a token nor a session: say what the API expects.
                Err(Refusal::NoCookie) => self.token_problem(None),
                Err(refusal) => Some(refusal.message()),
            },
        }
    }

    /// `check`'s verdict on a request from `peer`, unless `peer` is waiting out a backoff, in
    /// which case nothing is compared; a wrong credential `presented` counts against `peer`,
    /// and a right one clears it.
    fn judge(
        &self,
        peer: Option<IpAddr>,
        presented: bool,
        check: impl FnOnce() -> Option<&'static str>,
    ) -> Result<(), Denial> {
        if let Some(wait) = peer.and_then(|peer| self.backoff.wait(peer)) {
            return Err(Denial::Backoff(wait));
        }
        match (check(), peer) {
            (None, Some(peer)) => {
                self.backoff.succeeded(peer);
                Ok(())
            }
            (None, None) => Ok(()),
            (Some(problem), peer) => {
                if let (true, Some(peer)) = (presented, peer) {
                    self.backoff.failed(peer);
                }
                Err(Denial::Problem(problem))
            }
        }
    }

    /// The answer to a denied request: 401 naming the problem, or 429 with `Retry-After`
    /// while its address waits out a backoff.
    fn deny(&self, client: String, path: &str, denial: Denial) -> Response {
        match denial {
            Denial::Problem(problem) => self.refuse(client, path, problem),
            Denial::Backoff(wait) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                if let Some(suppressed) = self.failures.allow() {
                    tracing::warn!(
                        %client,
                        path,
                        seconds,
                        suppressed,
                        "admin authentication refused: too many wrong attempts from this address"
                    );
                }
                let mut response = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many wrong admin credentials from this address; try again in {seconds} s"
                    ),
                )
                .with_details(json!({ "retry_after_seconds": seconds }))
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
        }
    }

    async fn authorize(&self, request: Request, next: Next) -> Response {
        let presented = presents(request.headers());
        let vouched = self.vouched(peer(&request), request.headers()).await;
        match self.judge(peer(&request), presented, || {
            self.problem_unless(vouched.as_ref(), request.headers())
        }) {
            Ok(()) => {
                let (client, action) = (client(&request), request.uri().path().to_string());
                let response = next.run(request).await;
                let by = vouched
                    .as_ref()
                    .map(|vouched| (vouched.plugin, vouched.who.as_str()));
                tracing::info!(%client, action, admin = ?by, status = response.status().as_u16(), "admin action");
                response
            }
            Err(denial) => self.deny(client(&request), request.uri().path(), denial),
        }
    }

    /// 401 naming `problem`, logged at most once a second.
    fn refuse(&self, client: String, path: &str, problem: &'static str) -> Response {
        if let Some(suppressed) = self.failures.allow() {
            tracing::warn!(
                %client,
                path,
                problem,
                suppressed,
                "admin authentication failed"
            );
        }
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, problem).into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }

    /// `POST /api/v1/admin/session` with `{"token": "…"}`: the session cookie and, in the
    /// body, the CSRF token. Only a JSON body is accepted, which a page on another site
    /// cannot send without this server's consent (CORS preflight), so no other site can
    /// sign a browser in.
    async fn sign_in(&self, request: Request) -> Response {
        let client = client(&request);
        let peer = peer(&request);
        let sign_in = match <Json<SignIn> as FromRequest<()>>::from_request(request, &()).await {
            Ok(Json(sign_in)) => sign_in,
            Err(rejection) => return rejection.into_response(),
        };
        if let Err(denial) = self.judge(peer, true, || self.token_problem(Some(&sign_in.token))) {
            return self.deny(client, "/api/v1/admin/session", denial);
        }
        let issued = self.sessions.sign_in();
        tracing::info!(%client, "admin signed in");
        let mut response = (
            StatusCode::CREATED,
            Json(json!({
                "csrf_token": issued.csrf,
                "csrf_header": "X-CSRF-Token",
                "idle_timeout_secs": session::IDLE.as_secs(),
                "lifetime_secs": session::LIFETIME.as_secs(),
            })),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::SET_COOKIE, issued.cookie);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// `DELETE /api/v1/admin/session`: ends the browser session (a bearer request has none).
    fn sign_out(&self, request: &Request) -> Response {
        self.sessions.sign_out(request.headers());
        let mut response = StatusCode::NO_CONTENT.into_response();
        response
            .headers_mut()
            .insert(header::SET_COOKIE, Sessions::expired_cookie());
        response
    }
}

/// `GET /api/v1/admin/session`: answers only when the request is an admin's, so a page can
/// ask whether the session it holds is still live.
async fn session() -> Json<Value> {
    Json(json!({ "signed_in": true }))
}

/// Every plugin with what public answers leave out: init failures, task errors, and why
/// each plugin is not ready.
async fn plugins(Hosted(runtime): Hosted) -> Json<Value> {
    let readiness = runtime.readiness().await;
    Json(json!({
        "plugins": PluginInfo::all_running(&runtime, Audience::Admin),
        "readiness": readiness,
    }))
}

async fn disable(Hosted(runtime): Hosted, name: Path<String>) -> Result<Json<Value>, ApiError> {
    switch(runtime, name, false).await
}

async fn enable(Hosted(runtime): Hosted, name: Path<String>) -> Result<Json<Value>, ApiError> {
    switch(runtime, name, true).await
}

async fn switch(
    runtime: Runtime,
    Path(name): Path<String>,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let changed = runtime
        .set_enabled(&name, enabled)
        .await
        .map_err(|error| match error {
            TransitionError::UnknownPlugin(_) => unknown_plugin(runtime.registry(), &name),
            TransitionError::ShuttingDown => ApiError::new(StatusCode::CONFLICT, error.to_string()),
        })?;
    let changed: Vec<Value> = changed
        .into_iter()
        .map(|(plugin, status)| json!({ "plugin": plugin, "status": status }))
        .collect();
    Ok(Json(json!({
        "plugin": name,
        "status": runtime.status(&name),
        "error": runtime.failure(&name),
        "changed": changed,
    })))
}

async fn reload(Hosted(runtime): Hosted) -> Result<Json<Value>, ApiError> {
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

/// `POST /api/v1/admin/backups`: writes a backup into `<data>/backups/` while the server
/// keeps serving, and describes it.
pub(crate) async fn create_backup(
    Hosted(runtime): Hosted,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    use plexichat_backup as backup;
    let storage = runtime.storage().clone();
    let folder = backup::folder(storage.data_dir());
    plexichat_kernel::storage::data_dir::create(&folder).map_err(ApiError::internal)?;
    let id = backup::new_id(plexichat_kernel::storage::database::now_millis());
    let path = folder.join(format!("{id}.tar"));
    let manifest = backup::create(&runtime, &path)
        .await
        .map_err(ApiError::internal)?;
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    tracing::info!(id = %id, size, "backup created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "size": size,
            "download": format!("/api/v1/admin/backups/{id}"),
            "manifest": manifest,
        })),
    ))
}

/// `GET /api/v1/admin/backups`: the backups in `<data>/backups/`, newest first.
pub(crate) async fn backups(Hosted(runtime): Hosted) -> Result<Json<Value>, ApiError> {
    let listed =
        plexichat_backup::list(runtime.storage().data_dir()).map_err(ApiError::internal)?;
    Ok(Json(json!({ "backups": listed })))
}

/// `GET /api/v1/admin/backups/{id}`: the archive, streamed.
pub(crate) async fn download_backup(
    Hosted(runtime): Hosted,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use plexichat_backup as backup;
    if !backup::valid_id(&id) {
        return Err(ApiError::not_found(format!(
            "no backup `{id}`: identifiers are letters, digits and `-`, as `GET /api/v1/admin/backups` lists them"
        )));
    }
    let path = backup::folder(runtime.storage().data_dir()).join(format!("{id}.tar"));
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!(
                "no backup `{id}`; `GET /api/v1/admin/backups` lists them"
            )));
        }
        Err(error) => return Err(ApiError::internal(error)),
    };
    let size = file.metadata().await.map_err(ApiError::internal)?.len();
    let body =
        axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 16));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.tar\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
