//! `GET /openapi.json`: every route the application serves is in it, nothing else is, and
//! the schemas come from the handlers' types.

use std::collections::BTreeSet;

use plexichat::Registry;
use plexichat::testing::TestApp;
use serde_json::{Value, json};

const TOKEN: &str = "openapi-token-0123456789-0123456789ab";

/// The server's own routes: what the document must hold besides the plugins'.
const CORE: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/openapi.json"),
    ("GET", "/api/v1/plugins"),
    ("GET", "/api/v1/plugins/{name}"),
    ("GET", "/api/v1/plugins/{name}/health"),
    ("POST", "/api/v1/admin/session"),
    ("GET", "/api/v1/admin/session"),
    ("DELETE", "/api/v1/admin/session"),
    ("GET", "/api/v1/admin/plugins"),
    ("POST", "/api/v1/admin/plugins/{name}/disable"),
    ("POST", "/api/v1/admin/plugins/{name}/enable"),
    ("POST", "/api/v1/admin/config/reload"),
    ("GET", "/api/v1/admin/backups"),
    ("POST", "/api/v1/admin/backups"),
    ("GET", "/api/v1/admin/backups/{id}"),
    ("GET", "/api/v1/admin/settings"),
    ("PUT", "/api/v1/admin/settings/{name}"),
    ("DELETE", "/api/v1/admin/settings/{name}"),
    ("GET", "/api/v1/system/info"),
    ("GET", "/api/v1/performance"),
    ("GET", "/api/v1/backup"),
    ("POST", "/api/v1/backup"),
    ("GET", "/api/v1/backup/{id}"),
    ("POST", "/api/v1/backup/{id}/verify"),
    ("GET", "/metrics"),
    ("GET", "/ui/plexichat.css"),
    ("GET", "/ui/plexichat.js"),
];

/// axum's `{*rest}` is OpenAPI's `{rest}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// Every (method, path) the document should have: the core routes, every `#[route]`, and
/// every UI page route.
fn expected(registry: &Registry) -> BTreeSet<(String, String)> {
    let mut expected: BTreeSet<(String, String)> = CORE
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    for route in registry.routes() {
        expected.insert((
            route.descriptor.method.as_str().to_string(),
            openapi_path(&route.full_path),
        ));
    }
    for plugin in registry.plugins() {
        if !plugin.ui_files.is_empty() {
            for suffix in ["/{page}", "/{page}/", "/{page}/{rest}"] {
                expected.insert(("GET".into(), format!("/plugins/{}{suffix}", plugin.name)));
            }
        }
    }
    expected
}

async fn document(app: &TestApp) -> Value {
    let (status, document) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    document
}

#[tokio::test]
async fn every_route_is_documented_once_and_nothing_else_is() {
    let registry = Registry::linked().unwrap();
    // Every plugin disabled: a plugin route then answers 503 without running its handler,
    // which proves the route is served without doing what it does.
    let names: Vec<String> = registry
        .plugins()
        .iter()
        .map(|plugin| format!("{:?}", plugin.name))
        .collect();
    let app = TestApp::builder()
        .config(&format!("disabled = [{}]\n", names.join(", ")))
        .admin_token(TOKEN)
        .start()
        .await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    let operations: Vec<(String, String)> = plexichat::openapi::operations(&document);
    let documented: BTreeSet<(String, String)> = operations.iter().cloned().collect();
    assert_eq!(documented.len(), operations.len());
    assert_eq!(documented, expected(&registry));

    let mut ids = BTreeSet::new();
    for (method, path) in &operations {
        let operation = &document["paths"][path][method.to_ascii_lowercase()];
        let id = operation["operationId"].as_str().unwrap();
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
        assert!(!operation["summary"].as_str().unwrap().is_empty(), "{id}");
        assert!(operation["responses"]["default"].is_object(), "{id}");
        // Served: a request (parameters filled in) reaches a route, not the fallback.
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let (status, body) = app.request(method, &concrete).send().await;
        let unrouted = status == 405
            || body["error"]
                .as_str()
                .is_some_and(|error| error.starts_with("no route for"));
        assert!(
            !unrouted,
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
}

#[tokio::test]
async fn schemas_summaries_and_tags_come_from_the_handlers() {
    let app = TestApp::builder().admin_token(TOKEN).start().await;
    let document = document(&app).await;
    let paths = &document["paths"];

    // `Json<Order>` in, `Json<OrderSummary>` out, documented by their doc comments.
    let order = &paths["/test/orders"]["post"];
    assert_eq!(order["tags"], json!(["test_harness"]));
    let body = &order["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["required"], json!(["items"]), "{body}");
    let item = &body["properties"]["items"]["items"];
    assert_eq!(item["properties"]["count"]["maximum"], 255, "{item}");
    assert_eq!(
        item["additionalProperties"], false,
        "deny_unknown_fields: {item}"
    );
    let answer = &order["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(
        answer["properties"]["total"]["description"],
        "Total number of items."
    );
    assert_eq!(answer["properties"]["status"]["type"], "string");

    // `Path<u32>`: the parameter is an integer.
    let item = &paths["/test/items/{id}"]["get"]["parameters"][0];
    assert_eq!(
        (&item["name"], &item["in"], &item["required"]),
        (&json!("id"), &json!("path"), &json!(true))
    );
    assert_eq!(item["schema"]["type"], "integer", "{item}");
    assert_eq!(item["schema"]["minimum"], 0, "{item}");

    // Admin routes need the bearer token; public ones do not.
    assert_eq!(
        paths["/api/v1/admin/plugins/{name}/disable"]["post"]["security"],
        json!([{ "adminToken": [] }])
    );
    assert!(paths["/api/v1/plugins"]["get"].get("security").is_none());
    assert_eq!(
        document["components"]["securitySchemes"]["adminToken"]["scheme"],
        "bearer"
    );
    // One tag per plugin, described by its manifest.
    let tags: Vec<&str> = document["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag["name"].as_str().unwrap())
        .collect();
    for plugin in Registry::linked().unwrap().plugins() {
        assert!(tags.contains(&plugin.name), "{tags:?}");
    }
}
