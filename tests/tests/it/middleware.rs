//! Plugins' `#[middleware]`: global ones around every request in priority order, a plugin's
//! own around its routes only, skipped while their plugin is not running, panics contained.

use plexichat::__private::ErasedLayer;
use plexichat::testing::TestApp;

async fn chain_of(app: &TestApp, path: &str) -> (u16, Option<String>) {
    let response = app.request("GET", path).send_raw().await;
    let chain = response
        .headers()
        .get("x-chain")
        .map(|value| value.to_str().unwrap().to_string());
    (response.status().as_u16(), chain)
}

#[tokio::test]
async fn global_middleware_wraps_every_request_and_a_plugins_own_only_its_routes() {
    let app = TestApp::linked().await;
    // Innermost appends first: the harness's own (its layer inside its function), then the
    // global ones by rising priority.
    assert_eq!(
        chain_of(&app, "/test/items/3").await,
        (200, Some("layer,harness,inner,outer".to_string()))
    );
    // Another plugin's route, a core route and a 404 see the global ones only.
    for path in ["/api/v1/awesome/status", "/health", "/nowhere"] {
        let (_, chain) = chain_of(&app, path).await;
        assert_eq!(chain.as_deref(), Some("inner,outer"), "{path}");
    }
}

#[tokio::test]
async fn a_middleware_can_answer_without_calling_the_route() {
    let app = TestApp::linked().await;
    let (status, body) = app.get("/test/items/0").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "`test_harness` refuses item 0");
}

/// `GET path` with the header that makes a harness middleware panic answers 500 naming the
/// harness, and is its first counted middleware panic.
async fn answers_500_once(app: &TestApp, path: &str, header: &str) {
    let (status, body) = app.request("GET", path).header(header, "1").send().await;
    assert_eq!(status, 500, "{path} with {header}");
    assert_eq!(body["plugin"], "test_harness");
    assert_eq!(app.runtime.route_stats("test_harness").middleware_panics, 1);
}

#[tokio::test]
async fn a_panicking_middleware_is_a_500_for_that_request_counted_against_its_plugin() {
    let app = TestApp::linked().await;
    answers_500_once(&app, "/api/v1/awesome/status", "x-panic-middleware").await;
    assert_eq!(
        app.runtime
            .route_stats("my_awesome_plugin")
            .middleware_panics,
        0
    );
    assert_eq!(
        app.get("/api/v1/awesome/status").await.0,
        200,
        "the next request is served"
    );
}

#[tokio::test]
async fn middleware_of_a_plugin_that_is_not_running_is_passed_over() {
    let app = TestApp::builder()
        .config("disabled = [\"test_harness\"]\n")
        .start()
        .await;
    assert_eq!(chain_of(&app, "/api/v1/awesome/status").await, (200, None));
    assert_eq!(
        chain_of(&app, "/test/items/0").await,
        (503, None),
        "the disabled plugin's route answers 503 without its middleware, its layer too"
    );
}

#[tokio::test]
async fn the_chain_is_in_the_registry_in_order_and_in_the_plugin_description() {
    let app = TestApp::linked().await;
    let chain: Vec<(&str, &str)> = app
        .runtime
        .registry()
        .middleware()
        .iter()
        .map(|m| (m.plugin, m.descriptor.name))
        .collect();
    assert_eq!(
        chain,
        [
            ("test_harness", "chain_outer"),
            ("test_harness", "chain_inner"),
            ("test_harness", "everywhere_layer"),
            ("test_harness", "harness_only"),
            ("test_harness", "harness_layer"),
        ]
    );
    let (_, info) = app.get("/api/v1/plugins/test_harness").await;
    assert_eq!(
        info["middleware"],
        plexichat::serde_json::json!([
            { "name": "chain_outer", "scope": "global", "priority": 10, "form": "function" },
            { "name": "chain_inner", "scope": "global", "priority": 5, "form": "function" },
            { "name": "everywhere_layer", "scope": "global", "priority": 1, "form": "layer" },
            { "name": "harness_only", "scope": "plugin", "priority": 0, "form": "function" },
            { "name": "harness_layer", "scope": "plugin", "priority": -5, "form": "layer" },
        ])
    );
}

/// A `#[middleware(layer)]` is built once per application: the routes it wraps share its
/// state. A panic in it is contained like a function's, and it sees only its plugin's routes.
#[tokio::test]
async fn a_layer_is_one_for_all_its_routes_and_its_panics_are_contained() {
    let app = TestApp::linked().await;
    let seen = async |path: &str| {
        let response = app.request("GET", path).send_raw().await;
        response
            .headers()
            .get("x-layer-seen")
            .map(|value| value.to_str().unwrap().parse::<u64>().unwrap())
    };
    assert_eq!(seen("/test/items/1").await, Some(1));
    assert_eq!(
        seen("/test/audit-plugin").await,
        Some(2),
        "one counter for both routes"
    );
    assert_eq!(
        seen("/api/v1/awesome/status").await,
        None,
        "another plugin's route"
    );

    answers_500_once(&app, "/test/items/1", "x-panic-layer").await;
    assert_eq!(
        app.get("/test/items/1").await.0,
        200,
        "the next request is served"
    );

    // A global layer wraps everything: core routes, other plugins' routes, 404s.
    for path in [
        "/health",
        "/api/v1/awesome/status",
        "/nowhere",
        "/test/items/2",
    ] {
        let response = app.request("GET", path).send_raw().await;
        assert_eq!(
            response
                .headers()
                .get("x-global-layer")
                .map(|v| v.as_bytes()),
            Some(&b"1"[..]),
            "{path}"
        );
    }
}

/// A plugin `layered` with one route, `GET /api/v1/layered/x`, behind one layer made by
/// `make`.
async fn layered(make: fn(plexichat_kernel::runtime::Host) -> ErasedLayer) -> TestApp {
    use plexichat::middleware::{MiddlewareCall, MiddlewareDescriptor, MiddlewareScope};
    use plexichat_kernel::registry::Registrations;
    let registry = plexichat::Registry::from_registrations(Registrations {
        plugins: vec![crate::registry::plugin("layered", "layered", &[])],
        routes: vec![crate::registry::route(
            "layered",
            plexichat::route::Method::Get,
            "/x",
            "x",
        )],
        middleware: vec![Box::leak(Box::new(MiddlewareDescriptor {
            name: "broken",
            crate_name: "layered",
            location: "src/lib.rs:1",
            scope: MiddlewareScope::PluginRoutes,
            priority: 0,
            call: MiddlewareCall::Layer(make),
        }))],
        ..Registrations::default()
    })
    .unwrap();
    let app = TestApp::new(plexichat_kernel::runtime::Runtime::new(registry));
    app.runtime.start().await;
    app
}

/// A layer function or a layer's `layer` that panics while the application is built does not
/// stop the server: the panic is logged and counted, and the routes it wraps answer 500
/// naming the plugin (503 while the plugin is not running, like any of its routes).
#[tokio::test]
async fn a_layer_that_panics_while_the_application_is_built_fails_only_its_routes() {
    fn panics_when_made(_: plexichat_kernel::runtime::Host) -> ErasedLayer {
        panic!("cannot make the layer");
    }
    fn panics_when_wrapping(_: plexichat_kernel::runtime::Host) -> ErasedLayer {
        std::sync::Arc::new(|_route| panic!("cannot wrap a route"))
    }
    for make in [panics_when_made, panics_when_wrapping] {
        let app = layered(make).await;
        let (status, body) = app.get("/api/v1/layered/x").await;
        assert_eq!(status, 500);
        assert_eq!(body["plugin"], "layered");
        assert!(app.runtime.route_stats("layered").middleware_panics >= 1);
        assert_eq!(app.get("/health").await.0, 200, "the rest is served");
        app.runtime.set_enabled("layered", false).await.unwrap();
        assert_eq!(app.get("/api/v1/layered/x").await.0, 503);
    }
}
