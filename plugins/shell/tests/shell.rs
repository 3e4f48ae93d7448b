//! The shell at `/` with the repository's plugins linked in: every plugin listed with its
//! state, links to its pages and docs, no asset from elsewhere.

extern crate docs as _;
extern crate my_awesome_plugin as _;
extern crate shell as _;

use http_body_util::BodyExt;
use plexichat::testing::TestApp;

async fn home(app: &TestApp) -> String {
    let response = app.request("GET", "/").send_raw().await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The `<li>` of one plugin.
fn card<'a>(html: &'a str, plugin: &str) -> &'a str {
    let start = html
        .find(&format!("data-plugin=\"{plugin}\""))
        .unwrap_or_else(|| panic!("`{plugin}` is not listed:\n{html}"));
    let end = html[start..]
        .find("</li>\n</ul>")
        .map_or(html.len(), |end| start + end);
    let next = html[start + 1..]
        .find("data-plugin=")
        .map_or(end, |next| start + 1 + next);
    &html[start..next.min(end)]
}

#[tokio::test]
async fn every_compiled_in_plugin_is_listed_with_its_state_and_links() {
    let app = TestApp::linked().await;
    let html = home(&app).await;
    let registry = plexichat::Registry::linked().unwrap();
    for plugin in registry.plugins() {
        let card = card(&html, plugin.name);
        assert!(card.contains(plugin.version), "{card}");
        assert!(card.contains(plugin.kind.as_str()), "{card}");
        assert!(card.contains(">running</span>"), "{card}");
    }
    assert!(html.contains(&format!("({} compiled in", registry.plugins().len())));
    let awesome = card(&html, "my_awesome_plugin");
    assert!(
        awesome.contains("href=\"/plugins/my_awesome_plugin/dashboard/\">Awesome Dashboard</a>"),
        "{awesome}"
    );
    assert!(
        awesome.contains("href=\"/docs/my_awesome_plugin\""),
        "{awesome}"
    );
    assert!(
        awesome.contains("An awesome plugin for PlexiChat."),
        "{awesome}"
    );
    assert!(html.contains("href=\"/docs\""), "{html}");
    // Every link stays on this server; no inline script or style for the CSP to refuse.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    for asset in [
        "/plugins/shell/static/shell.css",
        "/plugins/shell/static/shell.js",
    ] {
        assert!(html.contains(asset), "{asset}");
        assert_eq!(
            app.request("GET", asset).send_raw().await.status(),
            200,
            "{asset}"
        );
    }
    // Pages that name no icon get the shell's, not a 404 in their console.
    let response = app.request("GET", "/favicon.ico").send_raw().await;
    assert_eq!(response.status(), 308);
    let icon = response.headers()["location"].to_str().unwrap().to_string();
    let response = app.request("GET", &icon).send_raw().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    // The admin controls are in the page but hidden until the script has signed in.
    assert!(
        html.contains(
            "<section id=\"admin\" class=\"admin\" aria-label=\"Administration\" hidden>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<p class=\"plugin-actions\" data-admin hidden>"),
        "{html}"
    );
}

#[tokio::test]
async fn a_disabled_plugin_is_shown_disabled() {
    let app = TestApp::linked().await;
    app.runtime
        .set_enabled("my_awesome_plugin", false)
        .await
        .unwrap();
    let html = home(&app).await;
    let awesome = card(&html, "my_awesome_plugin");
    assert!(awesome.contains(">disabled</span>"), "{awesome}");
    assert!(awesome.contains("class=\"reason\""), "{awesome}");
}

#[tokio::test]
async fn the_tests_it_ships_pass_on_a_fresh_server() {
    let app = TestApp::linked().await;
    let runs = app.plugin_tests("shell").await;
    assert!(runs.len() >= 2, "{runs:?}");
    for run in runs {
        assert_eq!(run.status, plexichat::tests::RunStatus::Passed, "{run:?}");
    }
}
