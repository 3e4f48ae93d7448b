//! Plugin states and the admin API: disabled plugins answer 503 and take their dependents
//! with them, and every admin endpoint needs the bearer token.

use plexichat::axum::body::Body;
use plexichat::axum::http::Request;
use plexichat::testing::{TestApp, problem};
use serde_json::{Value, json};

use crate::Harness;
use my_awesome_plugin::ActionCompleted;

const TOKEN: &str = "test-token-0123456789-0123456789ab";

/// A started app with `config_text` and the admin token [`TOKEN`].
async fn app_with(config_text: &str) -> TestApp {
    TestApp::builder()
        .config(config_text)
        .admin_token(TOKEN)
        .start()
        .await
}

async fn admin(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app.request("POST", path);
    if let Some(token) = token {
        request = request.bearer(token);
    }
    let (status, body) = request.send().await;
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
    let app = app_with("disabled = [\"my_awesome_plugin\"]\n").await;
    let (status, body) = app.get("/api/v1/awesome/status").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        problem(
            503,
            "unavailable",
            "plugin `my_awesome_plugin` is disabled",
            json!({ "plugin": "my_awesome_plugin", "state": { "state": "disabled" } })
        )
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
            note: String::new(),
        })
        .await;
    assert_eq!((report.succeeded, report.failures.len()), (0, 0));
    assert!(app.runtime.plugin::<Harness>().unwrap().log().is_empty());
    assert_eq!(app.get("/health").await.0, 200, "the core keeps serving");
}

#[tokio::test]
async fn admin_endpoints_refuse_missing_and_wrong_tokens() {
    let app = app_with("").await;
    let path = "/api/v1/admin/plugins/my_awesome_plugin/disable";
    assert_eq!(
        admin(&app, path, None).await,
        (
            401,
            problem(
                401,
                "unauthorized",
                "missing `Authorization: Bearer <token>` header",
                json!({})
            )
        )
    );
    assert_eq!(
        admin(&app, path, Some("test-token-0123456788")).await,
        (
            401,
            problem(401, "unauthorized", "wrong admin token", json!({}))
        )
    );
    assert_eq!(admin(&app, path, Some("")).await.0, 401);
    // The scheme is case-insensitive.
    let request = Request::get("/api/v1/admin/plugins")
        .header("authorization", format!("bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.0, 200);
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
    let untokened = TestApp::linked().await;
    assert_eq!(
        admin(&untokened, path, Some(TOKEN)).await,
        (
            401,
            problem(
                401,
                "unauthorized",
                "the admin API has no token configured",
                json!({})
            )
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
    let app = app_with("").await;
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
    assert_eq!(app.post("/api/v1/awesome/action", ()).await.0, 503);

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
    assert_eq!(app.post("/api/v1/awesome/action", ()).await.0, 200);
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
    let dir = plexichat_tests::scratch("generated");
    let (token, path, created) = plexichat_kernel::storage::data_dir::ensure_token(&dir).unwrap();
    assert!(created);
    assert_eq!(token.expose().len(), 64);
    assert!(token.expose().bytes().all(|b| b.is_ascii_hexdigit()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (again, _, created) = plexichat_kernel::storage::data_dir::ensure_token(&dir).unwrap();
    assert_eq!((again, created), (token, false));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_route_gets_only_its_own_plugins_context_and_its_dependencies_state() {
    let app = app_with("").await;
    // `PluginState` of a plugin that is not a dependency, hidden behind a type alias: the
    // macro cannot see it, the extractor refuses it (500 naming the route's plugin).
    let (status, body) = app.get("/test/audit-plugin").await;
    assert_eq!(status.as_u16(), 500, "{body}");
    assert_eq!(body["plugin"], "test_harness");
    // Another plugin's context built by hand from the router state: refused too, while the
    // route's own plugin's context is given.
    let (status, body) = app.post("/test/forged-context", ()).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(
        body,
        json!({ "from_nothing": false, "from_the_request": false, "own": true })
    );
}

#[test]
fn a_token_file_that_others_could_read_or_replace_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = plexichat_tests::scratch("unsafe");
    let file = dir.join("admin_token");

    std::fs::write(&file, "0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = plexichat_kernel::storage::data_dir::ensure_token(&dir)
        .unwrap_err()
        .to_string();
    assert!(
        error.ends_with(
            "its mode 0644 lets group or others read or write it; run `chmod 600` on it"
        ),
        "{error}"
    );
    assert!(!error.contains("0123456789abcdef"), "{error}");

    std::fs::remove_file(&file).unwrap();
    let elsewhere = dir.join("elsewhere");
    std::fs::write(&elsewhere, "0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    let error = plexichat_kernel::storage::data_dir::ensure_token(&dir)
        .unwrap_err()
        .to_string();
    assert!(error.contains("it is a symbolic link"), "{error}");

    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, "  \n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let error = plexichat_kernel::storage::data_dir::ensure_token(&dir)
        .unwrap_err()
        .to_string();
    assert!(error.contains("the file is empty"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_data_directory_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = plexichat_tests::scratch("data-dir").join("nested/data");
    plexichat_kernel::storage::data_dir::create(&dir).unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Signs a browser in: the session cookie (`name=value`) and the CSRF token.
async fn sign_in(app: &TestApp) -> (String, String) {
    let response = app
        .request("POST", "/api/v1/admin/session")
        .json(&json!({ "token": TOKEN }))
        .send_raw()
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/;"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = serde_json::from_slice(
        &plexichat::axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap(),
    )
    .unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    (cookie, body["csrf_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_browser_session_acts_only_with_its_cookie_and_its_csrf_token() {
    let app = app_with("").await;
    let (cookie, csrf) = sign_in(&app).await;
    let disable = "/api/v1/admin/plugins/awesome_audit/disable";

    // The cookie alone, as a script of a plugin page on this origin would send it, is refused,
    // for reading as much as for acting: backups are admin data.
    for (method, path) in [("POST", disable), ("GET", "/api/v1/admin/backups")] {
        let (status, body) = app
            .request(method, path)
            .header("cookie", &cookie)
            .send()
            .await;
        assert_eq!(status.as_u16(), 401, "{method} {path}");
        assert!(
            body["error"].as_str().unwrap().contains("X-CSRF-Token"),
            "{body}"
        );
    }
    // The CSRF token without the cookie is nothing.
    let (status, _) = app
        .request("POST", disable)
        .header("x-csrf-token", &csrf)
        .send()
        .await;
    assert_eq!(status.as_u16(), 401);
    assert_eq!(
        app.get("/api/v1/plugins/awesome_audit").await.1["state"],
        "running"
    );

    // Both together act.
    let (status, body) = app
        .request("POST", disable)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(body["status"]["state"], "disabled", "{body}");
    let (status, body) = app
        .request("GET", "/api/v1/admin/session")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await;
    assert_eq!((status.as_u16(), body), (200, json!({ "signed_in": true })));

    // Signing out ends it, and the browser is told to forget the cookie.
    let response = app
        .request("DELETE", "/api/v1/admin/session")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send_raw()
        .await;
    assert_eq!(response.status().as_u16(), 204);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, body) = app
        .request("POST", "/api/v1/admin/plugins/awesome_audit/enable")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await;
    assert_eq!(status.as_u16(), 401);
    assert!(
        body["error"].as_str().unwrap().contains("sign in again"),
        "{body}"
    );
}

/// `POST /api/v1/admin/session` with `body` as JSON: the status and the answer.
async fn try_sign_in(app: &TestApp, body: Value) -> (u16, Value) {
    let (status, body) = app
        .request("POST", "/api/v1/admin/session")
        .json(&body)
        .send()
        .await;
    (status.as_u16(), body)
}

#[tokio::test]
async fn signing_in_needs_the_admin_token_in_a_json_body() {
    let app = app_with("").await;
    assert_eq!(
        try_sign_in(&app, json!({ "token": "test-token-0123456788" })).await,
        (
            401,
            problem(401, "unauthorized", "wrong admin token", json!({}))
        )
    );
    // A form post, the one kind of body another site can make a browser send without asking,
    // is refused before the token is looked at.
    let response = app
        .request("POST", "/api/v1/admin/session")
        .body(plexichat::testing::TestBody::raw(
            Some("application/x-www-form-urlencoded"),
            format!("token={TOKEN}"),
        ))
        .send_raw()
        .await;
    assert_eq!(response.status().as_u16(), 415);
    assert!(response.headers().get("set-cookie").is_none());
    let (status, body) = try_sign_in(&app, json!({ "token": TOKEN, "remember": true })).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("remember"),
        "{body}"
    );

    // Without a configured token nobody signs in.
    let untokened = TestApp::linked().await;
    assert_eq!(
        try_sign_in(&untokened, json!({ "token": "" })).await,
        (
            401,
            problem(
                401,
                "unauthorized",
                "the admin API has no token configured",
                json!({})
            )
        )
    );
}

/// Guessing the admin token costs time: after five wrong tokens from one address, every
/// admin surface (the admin API, `/metrics`, sign-in) answers that address 429 with
/// `Retry-After` before comparing anything, the right token included; when the wait is over
/// the right token works and clears the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_the_admin_token_backs_off_per_address() {
    const RIGHT: &str = "backoff-token-0123456789-0123456789-ab";
    let options = plexichat_web::ServerOptions {
        admin_token: Some(plexichat::Secret::new(RIGHT)),
        ..Default::default()
    };
    let (addr, stop, server) = crate::facade::serve(options).await;
    let with = |token: &str| format!("Bearer {token}");
    let get = |path: &'static str, token: String| async move {
        plexichat_tests::request_with(addr, "GET", path, &[("authorization", &token)]).await
    };
    for guess in 0..6 {
        let (status, body) = get("/api/v1/admin/plugins", with(&format!("guess-{guess}"))).await;
        assert_eq!(status, 401, "guess {guess}: {body}");
    }
    let (status, body) = get("/api/v1/admin/plugins", with("guess-7")).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many wrong admin credentials"),
        "{body}"
    );
    let wait = body["retry_after_seconds"].as_u64().unwrap();
    assert!((1..=2).contains(&wait), "{body}");
    // Not compared while waiting, wherever the token is checked.
    assert_eq!(get("/api/v1/admin/plugins", with(RIGHT)).await.0, 429);
    assert_eq!(get("/metrics", with(RIGHT)).await.0, 429);
    let (status, body) = plexichat_tests::request(addr, "GET", "/api/v1/admin/plugins").await;
    assert_eq!(status, 429, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 200)).await;
    assert_eq!(get("/api/v1/admin/plugins", with(RIGHT)).await.0, 200);
    // The right token cleared the record: the next wrong one is an ordinary 401.
    assert_eq!(get("/api/v1/admin/plugins", with("guess-8")).await.0, 401);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
