//! Plugin states and the admin API: disabled plugins answer 503 and take their dependents
//! with them, and every admin endpoint needs the bearer token.

use std::sync::Arc;

use plexichat::axum::body::Body;
use plexichat::axum::http::Request;
use plexichat::config::Config;
use plexichat::server::ServerOptions;
use plexichat::testing::TestApp;
use plexichat::{Registry, Runtime};
use serde_json::{Value, json};

use crate::Harness;
use my_awesome_plugin::ActionCompleted;

const TOKEN: &str = "test-token-0123456789";

fn app_with(config_text: &str) -> TestApp {
    let registry = Registry::linked().unwrap();
    let config = Config::parse(config_text, &[], &registry, "test.toml").unwrap();
    let options = ServerOptions {
        admin_token: Some(Arc::from(TOKEN)),
        ..config.server_options()
    };
    TestApp::with_options(Runtime::with_config(registry, config), &options)
}

async fn admin(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = Request::post(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, body) = app.send(request.body(Body::empty()).unwrap()).await;
    (status.as_u16(), body)
}

fn states(body: &Value) -> Vec<(String, String)> {
    body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["state"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_disabled_plugin_answers_503_and_takes_its_dependents_with_it() {
    let app = app_with("disabled = [\"my_awesome_plugin\"]\n");
    let (status, body) = app.get("/api/v1/awesome/status").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({
            "error": "plugin `my_awesome_plugin` is disabled",
            "plugin": "my_awesome_plugin",
            "state": { "state": "disabled" },
        })
    );
    let (status, body) = app.get("/api/v1/awesome-audit/events").await;
    assert_eq!(status, 503);
    assert_eq!(
        body["error"],
        "plugin `awesome_audit` is disabled because its dependency `my_awesome_plugin` is not running"
    );

    let (_, list) = app.get("/api/v1/plugins").await;
    assert_eq!(
        states(&list),
        [
            ("my_awesome_plugin".into(), "disabled".into()),
            ("awesome_audit".into(), "disabled_because_dependency".into()),
            ("test_harness".into(), "disabled_because_dependency".into()),
        ]
    );
    let (_, audit) = app.get("/api/v1/plugins/awesome_audit").await;
    assert_eq!(audit["dependency"], "my_awesome_plugin");

    // Handlers of plugins that do not run receive nothing.
    let report = app
        .runtime
        .publish(&ActionCompleted {
            action_number: 1,
            timestamp: String::new(),
        })
        .await;
    assert_eq!((report.succeeded, report.failures.len()), (0, 0));
    assert!(app.runtime.plugin::<Harness>().unwrap().log().is_empty());
    assert_eq!(app.get("/health").await.0, 200, "the core keeps serving");
}

#[tokio::test]
async fn admin_endpoints_refuse_missing_and_wrong_tokens() {
    let app = app_with("");
    let path = "/api/v1/admin/plugins/my_awesome_plugin/disable";
    assert_eq!(
        admin(&app, path, None).await,
        (
            401,
            json!({ "error": "missing `Authorization: Bearer <token>` header" })
        )
    );
    assert_eq!(
        admin(&app, path, Some("test-token-0123456788")).await,
        (401, json!({ "error": "wrong admin token" }))
    );
    assert_eq!(admin(&app, path, Some("")).await.0, 401);
    assert_eq!(
        app.get("/api/v1/awesome/status").await.0,
        200,
        "nothing changed"
    );

    let request = Request::post(path).body(Body::empty()).unwrap();
    let response = www_authenticate(&app, request).await;
    assert_eq!(
        response,
        Some("Bearer".to_string()),
        "401 carries WWW-Authenticate"
    );

    // A server without a token refuses everyone.
    let untokened = TestApp::linked();
    assert_eq!(
        admin(&untokened, path, Some(TOKEN)).await,
        (
            401,
            json!({ "error": "the admin API has no token configured" })
        )
    );
}

/// The `WWW-Authenticate` header of the answer.
async fn www_authenticate(app: &TestApp, request: Request<Body>) -> Option<String> {
    app.send_raw(request)
        .await
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_string())
}

#[tokio::test]
async fn plugins_are_disabled_and_enabled_at_run_time() {
    let app = app_with("");
    let (status, body) = admin(
        &app,
        "/api/v1/admin/plugins/my_awesome_plugin/disable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], json!({ "state": "disabled" }));
    let changed: Vec<&str> = body["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["plugin"].as_str().unwrap())
        .collect();
    assert_eq!(
        changed,
        ["my_awesome_plugin", "awesome_audit", "test_harness"]
    );
    assert_eq!(app.post("/api/v1/awesome/action", None).await.0, 503);

    let (status, body) = admin(
        &app,
        "/api/v1/admin/plugins/my_awesome_plugin/enable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!({ "state": "running" }))
    );
    assert_eq!(app.post("/api/v1/awesome/action", None).await.0, 200);
    assert_eq!(app.runtime.plugin::<Harness>().unwrap().log(), ["action 1"]);

    let (status, body) = admin(&app, "/api/v1/admin/plugins/nope/disable", Some(TOKEN)).await;
    assert_eq!(
        (status, &body["error"]),
        (404, &json!("unknown plugin `nope`"))
    );
}

#[test]
fn a_generated_token_is_private_and_stable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = plexichat_tests::workspace_root()
        .join("target/admin-token-test")
        .join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (token, path, created) = plexichat::admin::ensure_token(&dir).unwrap();
    assert!(created);
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (again, _, created) = plexichat::admin::ensure_token(&dir).unwrap();
    assert_eq!((again, created), (token, false));
    std::fs::remove_dir_all(&dir).unwrap();
}
