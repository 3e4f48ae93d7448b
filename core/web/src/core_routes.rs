//! Core's own routes in one list: each row is a method, a path, who may call it, its
//! documentation and its handler. The application's router ([`router`]), the metrics' route
//! table and the OpenAPI document all read [`all`], so no route can be served undocumented,
//! documented and not served, or counted under a path nobody serves.
//!
//! The same recipe as a plugin's `#[route]`: a `'static` row with a `describe` function and a
//! function that makes the axum method router. The public rows are [`PUBLIC`] here, the admin
//! API's are `admin::ROUTES`, next to their handlers.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;

use axum::routing::{MethodRouter, get};
use serde_json::json;

use crate::admin::{self, Guard};
use crate::metrics::HttpMetrics;
use crate::{Hosted, ServerOptions, assets, openapi, paths};
use axum::http::HeaderMap;
use plexichat_kernel::abi::openapi::Describer;
use plexichat_kernel::abi::route::Method;
use plexichat_kernel::runtime::{Host, Runtime};

/// Who may call a core route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone (signing in too: it is the one admin route the guard cannot cover).
    Public,
    /// The admin, checked by the admin API's guard: the token, or a browser session with its
    /// CSRF token.
    Admin,
    /// The admin token as a bearer token, checked by the handler itself (a scraper is no
    /// browser, and a scrape is not logged as an admin action).
    Bearer,
}

impl Access {
    /// Whether the OpenAPI document marks it as needing the admin token.
    pub(crate) fn needs_admin(self) -> bool {
        matches!(self, Access::Admin | Access::Bearer)
    }
}

/// One route of the server's own.
pub(crate) struct CoreRoute {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    /// Its OpenAPI `operationId`.
    pub(crate) id: &'static str,
    /// The summary, then after a blank line the description.
    pub(crate) doc: &'static str,
    pub(crate) access: Access,
    /// Served, and documented, only when `/metrics` is on the main address (no
    /// `[server] metrics_bind`).
    pub(crate) only_with_metrics_on_main: bool,
    /// Adds its parameters, body and responses to the OpenAPI document.
    pub(crate) describe: fn(&mut Describer),
    /// Makes its method router from what the application's handlers share.
    pub(crate) handler: fn(&Wiring) -> MethodRouter<Host>,
}

/// What core's handlers share beyond the router state, made once per application.
pub(crate) struct Wiring {
    /// The admin API's guard (the token and the browser sessions).
    pub(crate) guard: Arc<Guard>,
    /// The request metrics, for `/metrics`.
    pub(crate) metrics: Arc<HttpMetrics>,
    /// `/openapi.json`, rendered on the first request (it generates a schema per route) and
    /// once: the routes cannot change while the application lives.
    pub(crate) openapi: Arc<OnceLock<Bytes>>,
    /// Whether `/metrics` is on the main address.
    pub(crate) metrics_on_main: bool,
    /// When the application was built, for `/api/v1/system/info`.
    pub(crate) started: crate::system::Started,
}

impl Wiring {
    pub(crate) fn new(
        runtime: &Runtime,
        options: &ServerOptions,
        metrics: Arc<HttpMetrics>,
    ) -> Wiring {
        Wiring {
            guard: admin::guard(runtime, options.admin_token.clone()),
            metrics,
            openapi: Arc::default(),
            metrics_on_main: options.metrics_bind.is_none(),
            started: crate::system::Started::now(),
        }
    }
}

/// Every core route a server serves: [`PUBLIC`], then the admin API's and the system areas', `/metrics` only when
/// it is on the main address.
pub(crate) fn all(metrics_on_main: bool) -> impl Iterator<Item = &'static CoreRoute> {
    PUBLIC
        .iter()
        .chain(admin::ROUTES)
        .chain(crate::system::ROUTES)
        .filter(move |route| metrics_on_main || !route.only_with_metrics_on_main)
}

/// The core routes as one router: each path's methods merged into one method router, the
/// admin ones behind the guard.
pub(crate) fn router(wiring: &Wiring) -> Router<Host> {
    let mut open: BTreeMap<&str, MethodRouter<Host>> = BTreeMap::new();
    let mut guarded: BTreeMap<&str, MethodRouter<Host>> = BTreeMap::new();
    for route in all(wiring.metrics_on_main) {
        let group = if route.access == Access::Admin {
            &mut guarded
        } else {
            &mut open
        };
        let handler = (route.handler)(wiring);
        let merged = match group.remove(route.path) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        group.insert(route.path, merged);
    }
    let guarded = admin::behind_guard(
        guarded
            .into_iter()
            .fold(Router::new(), |router, (path, handler)| {
                router.route(path, handler)
            }),
        &wiring.guard,
    );
    open.into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        })
        .merge(guarded)
}

/// Every path a core route may be served at, once each, for the metrics' labels.
pub(crate) fn paths() -> impl Iterator<Item = &'static str> {
    let mut seen = std::collections::BTreeSet::new();
    all(true).filter_map(move |route| seen.insert(route.path).then_some(route.path))
}

/// A JSON answer the document does not detail.
pub(crate) fn json_any(describer: &mut Describer) {
    describer.response("200", "the result", Some(("application/json", json!({}))));
}

/// The server's public routes.
const PUBLIC: &[CoreRoute] = &[
    CoreRoute {
        method: Method::Get,
        path: paths::HEALTH,
        id: "core.health",
        doc: "Liveness: the process answers.",
        access: Access::Public,
        only_with_metrics_on_main: false,
        describe: |d| {
            let schema = json!({ "type": "object", "required": ["status"], "properties": { "status": { "const": "ok" } } });
            d.response("200", "alive", Some(("application/json", schema)));
        },
        handler: |_| get(super::health),
    },
    CoreRoute {
        method: Method::Get,
        path: paths::READY,
        id: "core.ready",
        doc: "Readiness: every running plugin's `ready` hook and readiness checks, cached for `[server] ready_cache`.\n\n503 names the plugins that are not ready.",
        access: Access::Public,
        only_with_metrics_on_main: false,
        describe: |d| {
            let schema = json!({ "type": "object", "required": ["ready"], "properties": { "ready": { "type": "boolean" } } });
            d.response("200", "ready", Some(("application/json", schema)));
        },
        handler: |_| get(super::ready),
    },
    CoreRoute {
        method: Method::Get,
        path: paths::PLUGINS,
        id: "core.list_plugins",
        doc: "Every compiled-in plugin: manifest, state, routes, event handlers, commands and counters.",
        access: Access::Public,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| get(super::list_plugins),
    },
    CoreRoute {
        method: Method::Get,
        path: paths::PLUGIN,
        id: "core.plugin_info",
        doc: "One plugin's description, as in the list.",
        access: Access::Public,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| get(super::plugin_info),
    },
    CoreRoute {
        method: Method::Get,
        path: paths::PLUGIN_HEALTH,
        id: "core.plugin_health",
        doc: "One plugin's readiness: 200 when ready, 503 naming why not.",
        access: Access::Public,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: |_| get(super::plugin_health),
    },
    CoreRoute {
        method: Method::Get,
        path: paths::OPENAPI,
        id: "core.openapi",
        doc: "This document.",
        access: Access::Public,
        only_with_metrics_on_main: false,
        describe: json_any,
        handler: openapi_handler,
    },
    CoreRoute {
        method: Method::Get,
        path: paths::UI_CSS,
        id: "core.ui_stylesheet",
        doc: "The stylesheet every page of the server links: one look for the shell, the docs, the dashboards and the plugins' pages.",
        access: Access::Public,
        only_with_metrics_on_main: false,
        describe: |d| {
            d.response(
                "200",
                "the stylesheet",
                Some(("text/css", json!({ "type": "string" }))),
            )
        },
        handler: |_| {
            get(|headers: HeaderMap| async move { assets::shared(paths::UI_CSS, &headers) })
        },
    },
    CoreRoute {
        method: Method::Get,
        path: paths::UI_JS,
        id: "core.ui_script",
        doc: "The script every page of the server loads: the bar at the top of the page, and times shown in the reader's zone with how long ago or how soon.",
        access: Access::Public,
        only_with_metrics_on_main: false,
        describe: |d| {
            d.response(
                "200",
                "the script",
                Some(("text/javascript", json!({ "type": "string" }))),
            )
        },
        handler: |_| {
            get(|headers: HeaderMap| async move { assets::shared(paths::UI_JS, &headers) })
        },
    },
];

/// `/openapi.json`: the document of this server's routes, rendered once.
fn openapi_handler(wiring: &Wiring) -> MethodRouter<Host> {
    let (rendered, metrics_on_main) = (Arc::clone(&wiring.openapi), wiring.metrics_on_main);
    get(move |Hosted(runtime): Hosted| async move {
        let document = rendered.get_or_init(|| {
            let document = openapi::document(runtime.registry(), metrics_on_main);
            serde_json::to_vec_pretty(&document)
                .expect("a JSON value serialises")
                .into()
        });
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            document.clone(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_route_is_on_a_path_no_plugin_may_take() {
        // A plugin route there would fail the application's build (axum refuses the
        // overlap), or shadow core's: the registry must refuse it first, by name.
        for route in all(true) {
            assert!(
                plexichat_rules::reserved_path(route.path).is_some(),
                "{} {} is not under plexichat_rules::CORE_PATHS",
                route.method,
                route.path
            );
        }
    }

    #[test]
    fn each_method_and_path_is_one_row() {
        let mut seen = std::collections::BTreeSet::new();
        for route in all(true) {
            assert!(
                seen.insert((route.method, route.path)),
                "{} {}",
                route.method,
                route.path
            );
        }
    }
}
