//! Plugins' UI pages: embedded at compile time, served under `/plugins/<name>/` with content
//! types, ETags, compression and caching, guarded like the plugin's routes, and nothing
//! outside the embedded set reachable.

use std::io::Read;

use http_body_util::BodyExt;
use plexichat::axum::response::Response;
use plexichat::testing::TestApp;

const PAGE: &str = "/plugins/my_awesome_plugin/dashboard/";

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

async fn body(response: Response) -> Vec<u8> {
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = app.request("GET", path);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send_raw().await
}

#[tokio::test]
async fn the_awesome_dashboard_is_served_with_its_files() {
    let app = TestApp::linked().await;
    let page = get(&app, PAGE, &[]).await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&page, "cache-control"), Some("no-cache"));
    let html = String::from_utf8(body(page).await).unwrap();
    assert!(html.contains("<title>Awesome Dashboard</title>"), "{html}");
    assert!(html.contains("Perform Action"), "{html}");
    // The page's own files, and the plugin's shared folder its links reach with `../static/`.
    for (path, content_type, contains) in [
        (
            "/plugins/my_awesome_plugin/dashboard/script.js",
            "text/javascript; charset=utf-8",
            "/api/v1/awesome/action",
        ),
        (
            "/plugins/my_awesome_plugin/dashboard/style.css",
            "text/css; charset=utf-8",
            "--accent",
        ),
        (
            "/plugins/my_awesome_plugin/static/star.svg",
            "image/svg+xml",
            "<svg",
        ),
        (
            "/plugins/my_awesome_plugin/dashboard/index.html",
            "text/html; charset=utf-8",
            "Awesome Dashboard",
        ),
    ] {
        let response = get(&app, path, &[]).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            Some(content_type),
            "{path}"
        );
        let text = String::from_utf8(body(response).await).unwrap();
        assert!(text.contains(contains), "{path}: {text}");
    }
    // Core's shared stylesheet and page script, which every page links.
    for (path, content_type, contains) in [
        ("/ui/plexichat.css", "text/css; charset=utf-8", ".px-bar"),
        (
            "/ui/plexichat.js",
            "text/javascript; charset=utf-8",
            "PlexiChat",
        ),
    ] {
        let response = get(&app, path, &[]).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            Some(content_type),
            "{path}"
        );
        assert!(header(&response, "etag").is_some(), "{path}");
        let text = String::from_utf8(body(response).await).unwrap();
        assert!(text.contains(contains), "{path}");
    }
    // HEAD: the same headers, no body.
    let head = app.request("HEAD", PAGE).send_raw().await;
    assert_eq!(head.status(), 200);
    assert!(header(&head, "etag").is_some());
    assert!(body(head).await.is_empty());
}

#[tokio::test]
async fn a_page_without_its_slash_is_redirected_so_relative_links_work() {
    let app = TestApp::linked().await;
    let response = get(&app, "/plugins/my_awesome_plugin/dashboard?tab=2", &[]).await;
    assert_eq!(response.status(), 308);
    assert_eq!(
        header(&response, "location"),
        Some("/plugins/my_awesome_plugin/dashboard/?tab=2")
    );
    let unknown = get(&app, "/plugins/my_awesome_plugin/nothing", &[]).await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_known_version_is_answered_304_and_each_encoding_is_its_own_version() {
    let app = TestApp::linked().await;
    let script = "/plugins/my_awesome_plugin/dashboard/script.js";
    let plain = get(&app, script, &[]).await;
    let tag = header(&plain, "etag").unwrap().to_string();
    assert!(tag.starts_with('"') && tag.len() > 20, "{tag}");
    assert_eq!(header(&plain, "vary"), Some("accept-encoding"));
    let original = body(plain).await;

    for sent in [tag.clone(), format!("W/{tag}"), format!("\"other\", {tag}")] {
        let again = get(&app, script, &[("if-none-match", &sent)]).await;
        assert_eq!(again.status(), 304, "{sent}");
        assert_eq!(header(&again, "etag"), Some(tag.as_str()));
        assert!(body(again).await.is_empty());
    }
    let changed = get(&app, script, &[("if-none-match", "\"stale\"")]).await;
    assert_eq!(changed.status(), 200);

    let br = get(&app, script, &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(br.status(), 200);
    assert_eq!(header(&br, "content-encoding"), Some("br"));
    let br_tag = header(&br, "etag").unwrap().to_string();
    assert_ne!(br_tag, tag);
    let mut decoded = Vec::new();
    brotli::BrotliDecompress(&mut &body(br).await[..], &mut decoded).unwrap();
    assert_eq!(decoded, original);

    let gz = get(&app, script, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&gz, "content-encoding"), Some("gzip"));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&body(gz).await[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, original);

    // The compressed version's own tag gives 304 to a client holding it.
    let again = get(
        &app,
        script,
        &[("accept-encoding", "br"), ("if-none-match", &br_tag)],
    )
    .await;
    assert_eq!(again.status(), 304);

    // An image is sent as it is, whatever the client accepts.
    let svg_path = "/plugins/my_awesome_plugin/static/star.svg";
    let svg = get(&app, svg_path, &[("accept-encoding", "br")]).await;
    assert_eq!(svg.status(), 200);
}

#[tokio::test]
async fn no_path_reaches_anything_outside_the_embedded_files() {
    let app = TestApp::linked().await;
    for path in [
        "/plugins/my_awesome_plugin/dashboard/../../../Cargo.toml",
        "/plugins/my_awesome_plugin/dashboard/%2e%2e/%2e%2e/src/lib.rs",
        "/plugins/my_awesome_plugin/dashboard/..%2f..%2fsrc%2flib.rs",
        "/plugins/my_awesome_plugin/dashboard/..%5c..%5csrc%5clib.rs",
        "/plugins/my_awesome_plugin/dashboard/%5c..%5cCargo.toml",
        "/plugins/my_awesome_plugin/dashboard/index.html%00",
        "/plugins/my_awesome_plugin/dashboard/index.html%00.js",
        "/plugins/my_awesome_plugin/static/../dashboard/index.html",
        "/plugins/my_awesome_plugin/static/%2e%2e/%2e%2e/Cargo.toml",
        "/plugins/my_awesome_plugin/dashboard//etc/passwd",
        "/plugins/my_awesome_plugin/dashboard/%2fetc%2fpasswd",
        "/plugins/my_awesome_plugin/ui/dashboard/index.html",
        "/plugins/my_awesome_plugin/src/lib.rs",
        "/plugins/my_awesome_plugin/static/",
        "/plugins/awesome_audit/dashboard/",
        "/plugins/nobody/dashboard/",
    ] {
        let response = get(&app, path, &[]).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        let text = String::from_utf8(body(response).await).unwrap();
        assert!(
            !text.contains("[package]") && !text.contains("root:"),
            "{path}: {text}"
        );
    }
}

#[tokio::test]
async fn pages_answer_503_while_their_plugin_is_not_running() {
    let app = TestApp::linked().await;
    app.runtime
        .set_enabled("my_awesome_plugin", false)
        .await
        .unwrap();
    let (status, body) = app.get(PAGE).await;
    assert_eq!(status, 503);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("my_awesome_plugin"),
        "{body}"
    );
    app.runtime
        .set_enabled("my_awesome_plugin", true)
        .await
        .unwrap();
    assert_eq!(get(&app, PAGE, &[]).await.status(), 200);
}
