//! What the registry refuses before anything starts, each error naming both parties.

use std::any::{Any, TypeId};
use std::sync::Arc;

use plexichat::event::{EventHandlerDescriptor, HandlerFn};
use plexichat::plugin::PluginDescriptor;
use plexichat::route::{Method, RouteDescriptor};
use plexichat::{PluginType, Registry, RegistryError};

pub(crate) fn plugin(
    name: &'static str,
    crate_name: &'static str,
    deps: &[&'static str],
) -> &'static PluginDescriptor {
    plugin_at(
        name,
        crate_name,
        deps,
        Box::leak(format!("/api/v1/{name}").into_boxed_str()),
    )
}

pub(crate) fn plugin_at(
    name: &'static str,
    crate_name: &'static str,
    deps: &[&'static str],
    prefix: &'static str,
) -> &'static PluginDescriptor {
    fn construct() -> Arc<dyn Any + Send + Sync> {
        Arc::new(())
    }
    Box::leak(Box::new(PluginDescriptor {
        name,
        version: "1.0.0",
        description: "",
        author: "",
        kind: PluginType::Feature,
        dependencies: Box::leak(deps.to_vec().into_boxed_slice()),
        permissions: &[],
        api_version: "1.0",
        min_plexichat_version: "0.1.0",
        category: "",
        tags: &[],
        homepage: None,
        repository: None,
        license: None,
        icon: None,
        ui_pages: &[],
        ui_files: &[],
        docs: &[],
        webhooks: &[],
        auto_start: true,
        prefix,
        config: None,
        lifecycle: None,
        backup: None,
        migrations: &[],
        crate_name,
        type_name: Box::leak(format!("{crate_name}::Plugin").into_boxed_str()),
        type_id: TypeId::of::<()>,
        construct,
    }))
}

pub(crate) fn route(
    crate_name: &'static str,
    method: Method,
    path: &'static str,
    handler: &'static str,
) -> &'static RouteDescriptor {
    Box::leak(Box::new(RouteDescriptor {
        method,
        path,
        handler,
        crate_name,
        location: "src/lib.rs:1",
        make: || axum_get(),
        doc: "",
        describe: |_| {},
    }))
}

fn axum_get() -> plexichat::axum::routing::MethodRouter<plexichat_kernel::runtime::Host> {
    plexichat::axum::routing::get(|| async {})
}

fn handler(crate_name: &'static str, handler: &'static str) -> &'static EventHandlerDescriptor {
    fn call(
        _: &plexichat_kernel::runtime::Host,
        _: &(dyn Any + Send + Sync),
    ) -> Result<(), String> {
        Ok(())
    }
    Box::leak(Box::new(EventHandlerDescriptor {
        event: "test.event",
        event_type: TypeId::of::<()>,
        handler,
        crate_name,
        location: "src/lib.rs:1",
        priority: 0,
        call: HandlerFn::Sync(call),
    }))
}

/// Builds a registry and returns its errors as messages (empty when it is valid).
fn check(
    plugins: Vec<&'static PluginDescriptor>,
    routes: Vec<&'static RouteDescriptor>,
    handlers: Vec<&'static EventHandlerDescriptor>,
) -> Vec<String> {
    match Registry::from_parts(plugins, routes, handlers) {
        Ok(_) => vec![],
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn duplicate_plugin_names_name_both_types() {
    let errors = check(
        vec![plugin("chat", "a", &[]), plugin("chat", "b", &[])],
        vec![],
        vec![],
    );
    assert_eq!(
        errors,
        ["duplicate plugin name `chat`: declared by `a::Plugin` and by `b::Plugin`"]
    );
}

#[test]
fn two_plugins_in_one_crate_are_refused() {
    let errors = check(
        vec![plugin("one", "c", &[]), plugin("two", "c", &[])],
        vec![],
        vec![],
    );
    assert_eq!(
        errors,
        ["crate `c` declares two plugins, `one` and `two`; a crate is one plugin"]
    );
}

#[test]
fn duplicate_routes_name_both_handlers_even_with_different_parameter_names() {
    // Both plugins share a prefix, so their routes can collide.
    let first = plugin_at("first", "first", &[], "/api");
    let second = plugin_at("second", "second", &[], "/api");
    let errors = check(
        vec![first, second],
        vec![
            route("first", Method::Get, "/items/{id}", "get_item"),
            route("second", Method::Get, "/items/{key}", "fetch"),
            route("second", Method::Post, "/items/{key}", "create"),
        ],
        vec![],
    );
    assert_eq!(
        errors,
        [
            "duplicate route GET /api/items/{key}: `first::get_item (src/lib.rs:1)` and `second::fetch (src/lib.rs:1)`"
        ]
    );
}

#[test]
fn a_missing_dependency_names_the_feature_to_enable() {
    let errors = check(vec![plugin("audit", "audit", &["awesome"])], vec![], vec![]);
    assert_eq!(
        errors,
        [
            "plugin `audit` depends on `awesome`, which is not compiled in; enable the `awesome` feature"
        ]
    );
}

#[test]
fn a_dependency_cycle_is_named() {
    let errors = check(
        vec![
            plugin("a", "a", &["b"]),
            plugin("b", "b", &["c"]),
            plugin("c", "c", &["a"]),
            plugin("d", "d", &["a"]),
        ],
        vec![],
        vec![],
    );
    assert_eq!(errors, ["dependency cycle: a -> b -> c -> a"]);
}

#[test]
fn start_order_puts_dependencies_first_and_is_deterministic() {
    let registry = Registry::from_parts(
        vec![
            plugin("zeta", "zeta", &[]),
            plugin("audit", "audit", &["zeta", "base"]),
            plugin("base", "base", &[]),
        ],
        vec![],
        vec![],
    )
    .unwrap();
    let order: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
    assert_eq!(order, ["base", "zeta", "audit"]);
    assert_eq!(registry.plugin("audit").map(|p| p.name), Some("audit"));
}

#[test]
fn routes_and_handlers_outside_a_plugin_crate_are_refused() {
    let errors = check(
        vec![],
        vec![route("loose", Method::Get, "/x", "x")],
        vec![handler("loose", "on_x")],
    );
    assert_eq!(
        errors,
        [
            "route `x` (src/lib.rs:1) is in crate `loose`, which declares no `#[plugin]`",
            "event handler `on_x` (src/lib.rs:1) is in crate `loose`, which declares no `#[plugin]`",
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = check(
        vec![plugin("x", "x", &["gone"]), plugin("x", "y", &[])],
        vec![route("loose", Method::Get, "/x", "x")],
        vec![],
    );
    assert_eq!(
        errors,
        [
            "duplicate plugin name `x`: declared by `x::Plugin` and by `y::Plugin`",
            "plugin `x` depends on `gone`, which is not compiled in; enable the `gone` feature",
            "route `x` (src/lib.rs:1) is in crate `loose`, which declares no `#[plugin]`",
        ]
    );
}

#[test]
fn the_enabled_set_must_equal_the_registered_set() {
    let registry = Registry::from_parts(
        vec![plugin("a", "a", &[]), plugin("b", "b", &[])],
        vec![],
        vec![],
    )
    .unwrap();
    assert_eq!(registry.expect_exactly(&["b", "a"]), Ok(()));
    let error = registry.expect_exactly(&["a", "c"]).unwrap_err();
    assert_eq!(
        error,
        RegistryError::Mismatch {
            missing: vec!["c".into()],
            unexpected: vec!["b".into()],
        }
    );
    let message = error.to_string();
    assert!(
        message.contains("enabled plugins missing from the registry: c"),
        "{message}"
    );
    assert!(message.contains("extern crate"), "{message}");
    assert!(
        message.contains(
            "registered plugins that were not enabled: b (an enabled plugin depends on it,"
        ),
        "{message}"
    );
    assert!(
        message.contains("run `cargo xtask codegen` and rebuild"),
        "a registered plugin that was not enabled means stale wiring; the message names the fix: {message}"
    );
    assert!(message.contains("`#[plugin(name = ...)]`"), "{message}");

    // Only unexpected plugins: the stale-wiring fix, without the name hint.
    let message = registry.expect_exactly(&["a"]).unwrap_err().to_string();
    assert!(message.contains("cargo xtask codegen"), "{message}");
    assert!(!message.contains("#[plugin(name"), "{message}");
}

/// Whichever backend this build uses (the suite runs under both), it collects exactly the
/// registrations linked into this binary.
#[test]
fn the_linked_registry_holds_exactly_what_this_binary_declares() {
    let registry = Registry::linked().expect("linked registry");
    let names: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        ["my_awesome_plugin", "awesome_audit", "test_harness"]
    );
    let routes: Vec<&str> = registry
        .routes()
        .iter()
        .map(|r| r.full_path.as_str())
        .collect();
    assert_eq!(
        routes,
        [
            "/api/v1/awesome-audit/events",
            "/api/v1/awesome/action",
            "/api/v1/awesome/status",
            "/test/audit-plugin",
            "/test/echo",
            "/test/events",
            "/test/fetch",
            "/test/files/{*path}",
            "/test/files/{*path}",
            "/test/forged-context",
            "/test/items/{id}",
            "/test/kv/{key}",
            "/test/orders",
            "/test/panic",
            "/test/publish-slow",
            "/test/slow",
            "/test/ws/echo",
        ]
    );
}

/// `routes_of`, `commands_of` and the others find a plugin's items by binary search in an
/// index; they must give exactly what filtering the whole list would, in list order. The
/// linked plugins interleave (handlers are ordered by event, middleware by scope and
/// priority), which is what an index can get wrong.
#[test]
fn each_plugins_items_are_exactly_its_share_of_every_list() {
    fn same<T: std::fmt::Debug>(plugin: &str, what: &str, found: Vec<&T>, expected: Vec<&T>) {
        let found: Vec<String> = found.iter().map(|item| format!("{item:?}")).collect();
        let expected: Vec<String> = expected.iter().map(|item| format!("{item:?}")).collect();
        assert_eq!(found, expected, "{what} of {plugin}");
    }
    let registry = Registry::linked().expect("linked registry");
    let mut counted = 0;
    for plugin in registry.plugins().iter().map(|p| p.name).chain(["no_such"]) {
        macro_rules! share {
            ($what:literal, $of:ident, $all:ident, |$item:ident| $mine:expr) => {{
                let found: Vec<_> = registry.$of(plugin).collect();
                let expected: Vec<_> = registry.$all().iter().filter(|$item| $mine).collect();
                counted += expected.len();
                same(plugin, $what, found, expected);
            }};
        }
        share!("routes", routes_of, routes, |r| r.plugin == plugin);
        share!("commands", commands_of, commands, |c| c.plugin == plugin);
        share!("handlers", handlers_of, handlers, |h| h.plugin == plugin);
        share!("middleware", middleware_of, middleware, |m| m.plugin
            == plugin);
        share!("events", events_of, events, |e| e.plugin == Some(plugin));
        share!("health checks", health_checks_of, health_checks, |c| c
            .plugin
            == plugin);
    }
    // Every item belongs to a plugin here, so the shares add up to the lists.
    let total = registry.routes().len()
        + registry.commands().len()
        + registry.handlers().len()
        + registry.middleware().len()
        + registry
            .events()
            .iter()
            .filter(|e| e.plugin.is_some())
            .count()
        + registry.health_checks().len();
    assert_eq!(counted, total);
    assert!(registry.handlers().len() > 3 && registry.commands().len() > 3);
}

#[test]
fn plugin_paths_on_or_under_core_paths_are_refused_naming_both() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "/api/v1/admin",
            "/x",
            "prefix /api/v1/admin of plugin `p` would shadow core's `/api/v1/admin`; choose another prefix",
        ),
        (
            "/api/v1/plugins/p",
            "/x",
            "prefix /api/v1/plugins/p of plugin `p` would shadow core's `/api/v1/plugins`; choose another prefix",
        ),
        (
            "/",
            "/health",
            "route `h` (src/lib.rs:1) /health of plugin `p` would shadow core's `/health`; choose another prefix",
        ),
        (
            "/",
            "/ready/{rest}",
            "route `h` (src/lib.rs:1) /ready/{rest} of plugin `p` would shadow core's `/ready`; choose another prefix",
        ),
        (
            "/api/v1",
            "/admin/x",
            "route `h` (src/lib.rs:1) /api/v1/admin/x of plugin `p` would shadow core's `/api/v1/admin`; choose another prefix",
        ),
        ("/api/v1", "/pluginsx", ""),
        ("/healthz", "/", ""),
        ("/api/v1/p", "/health", ""),
    ];
    for (prefix, path, expected) in cases {
        let prefix: &'static str = Box::leak(prefix.to_string().into_boxed_str());
        let path: &'static str = Box::leak(path.to_string().into_boxed_str());
        let errors = check(
            vec![plugin_at("p", "p", &[], prefix)],
            vec![route("p", Method::Get, path, "h")],
            vec![],
        );
        let expected: Vec<&str> = [*expected].into_iter().filter(|e| !e.is_empty()).collect();
        assert_eq!(errors, expected, "prefix {prefix}, route {path}");
    }
}
