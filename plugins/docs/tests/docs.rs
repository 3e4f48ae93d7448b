//! `/docs` with the repository's plugins linked in: every doc listed and rendered, every
//! relative link leading somewhere, search finding what only one plugin's docs say.

// Linked so that their docs are in the library, as in the default build (`docs` is linked
// by its use below).
extern crate awesome_audit as _;
extern crate my_awesome_plugin as _;

use http_body_util::BodyExt;
use plexichat::testing::TestApp;

async fn page(app: &TestApp, path: &str) -> (u16, Option<String>, String) {
    let response = app.request("GET", path).send_raw().await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let content_type = headers
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_string());
    (status, content_type, text)
}

#[tokio::test]
async fn every_plugins_docs_are_listed_with_the_repositorys_first() {
    let app = TestApp::linked().await;
    let (status, content_type, html) = page(&app, "/docs").await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
    let position = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} is not on /docs:\n{html}"))
    };
    // The repository's docs first, README first within each group.
    assert!(position("/docs/plexichat/README.md") < position("/docs/plexichat/plugin-guide.md"));
    assert!(
        position("/docs/plexichat/plugin-guide.md") < position("/docs/my_awesome_plugin/README.md")
    );
    assert!(
        position("/docs/my_awesome_plugin/README.md")
            < position("/docs/my_awesome_plugin/configuration.md")
    );
    position("/docs/awesome_audit/README.md");
    position("/plugins/docs/static/docs.css");
    position("role=\"search\"");

    let (status, _, _) = page(&app, "/plugins/docs/static/docs.js").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn markdown_is_rendered_with_anchors_and_raw_html_escaped() {
    let app = TestApp::linked().await;
    let (status, _, html) = page(&app, "/docs/my_awesome_plugin/README.md").await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1 id=\"my_awesome_plugin\">"), "{html}");
    assert!(html.contains("<table>"), "the README has a table: {html}");
    assert!(html.contains("aria-current=\"page\""), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");

    // A plugin's docs' own folder redirects to its README.
    let response = app.request("GET", "/docs/awesome_audit").send_raw().await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/docs/awesome_audit/README.md"
    );
    // The docs plugin's own docs are PlexiChat's: the shell's link to them works.
    let response = app.request("GET", "/docs/docs").send_raw().await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/docs/plexichat/README.md");

    for (path, error) in [
        (
            "/docs/nobody/README.md",
            "no compiled-in plugin named `nobody` has docs",
        ),
        (
            "/docs/my_awesome_plugin/missing.md",
            "`my_awesome_plugin` has no doc `missing.md`",
        ),
        ("/docs/my_awesome_plugin/../../Cargo.toml", "has no doc"),
        (
            "/docs/my_awesome_plugin/%2e%2e/%2e%2e/Cargo.toml",
            "has no doc",
        ),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            body["error"].as_str().unwrap().contains(error),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn an_html_doc_is_shown_in_a_sandboxed_frame_that_runs_no_script() {
    let app = TestApp::linked().await;
    let (status, _, html) = page(&app, "/docs/my_awesome_plugin/API_REFERENCE.html").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<iframe class=\"html-doc\" sandbox src=\"?raw=true\""),
        "{html}"
    );
    let response = app
        .request("GET", "/docs/my_awesome_plugin/API_REFERENCE.html?raw=true")
        .send_raw()
        .await;
    assert_eq!(response.status(), 200);
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.starts_with("sandbox;"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert_eq!(response.headers()["x-frame-options"], "SAMEORIGIN");
}

/// Every file a plugin ships as a doc is served sandboxed: the docs run in the server's own
/// origin (`ui:trusted`), and an SVG with a script opened on its own must not run there.
#[tokio::test]
async fn a_doc_file_is_served_sandboxed() {
    let app = TestApp::linked().await;
    let response = app
        .request("GET", "/docs/my_awesome_plugin/round.svg")
        .send_raw()
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.starts_with("sandbox;"), "{policy}");
}

#[tokio::test]
async fn search_finds_what_only_one_plugins_docs_say_with_marked_snippets() {
    let app = TestApp::linked().await;
    // `refused_words` is documented by awesome_audit alone.
    let (status, body) = app.get("/docs/search?q=refused%20words").await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty(), "{body}");
    assert_eq!(results[0]["plugin"], "awesome_audit", "{body}");
    let url = results[0]["url"].as_str().unwrap();
    assert!(url.starts_with("/docs/awesome_audit/"), "{url}");
    assert!(
        results[0]["snippet"].as_str().unwrap().contains("<mark>"),
        "{body}"
    );
    // The result leads to a page that exists, at a heading that exists.
    let (path, anchor) = url.split_once('#').unwrap_or((url, ""));
    let (status, _, html) = page(&app, path).await;
    assert_eq!(status, 200, "{path}");
    if !anchor.is_empty() {
        assert!(html.contains(&format!("id=\"{anchor}\"")), "{url}");
    }

    // The page form of the same search, for browsers without JavaScript.
    let (status, _, html) = page(&app, "/docs?q=refused+words").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Search results for “refused words”"),
        "{html}"
    );
    assert!(html.contains(url), "{html}");

    // Typing: a prefix finds the word.
    let (_, typed) = app.get("/docs/search?q=refus").await;
    assert_eq!(typed["results"][0]["plugin"], "awesome_audit", "{typed}");
    let (_, limited) = app.get("/docs/search?q=plugin&limit=2").await;
    assert_eq!(limited["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_search_parameters_are_refused_naming_the_parameter() {
    let app = TestApp::linked().await;
    for (path, named) in [
        ("/docs/search", "q"),
        ("/docs/search?q=", "`q`"),
        ("/docs/search?q=%20%2C", "`q`"),
        ("/docs/search?q=a&limit=0", "`limit`"),
        ("/docs/search?q=a&limit=5000", "`limit`"),
        ("/docs/search?q=a&limit=many", "limit"),
        // An anonymous client's CPU lever: thousands of words, or a query of any length.
        (&huge_query(), "a search takes at most 256"),
        (
            &many_words(),
            "`q` has 17 different words; a search takes at most 16",
        ),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(named),
            "{path}: {body}"
        );
    }
}

/// `/docs/search?q=` with 5,000 different words (a tester sent 12,000).
fn huge_query() -> String {
    let words: Vec<String> = (0..5_000).map(|n| format!("w{n}")).collect();
    format!("/docs/search?q={}", words.join("+"))
}

/// `/docs/search?q=` with 17 short, different words.
fn many_words() -> String {
    let words: Vec<String> = (0..17).map(|n| format!("w{n}")).collect();
    format!("/docs/search?q={}", words.join("+"))
}

/// The search page refuses the same queries, as a page saying why.
#[tokio::test]
async fn the_search_page_refuses_a_query_of_thousands_of_words() {
    let app = TestApp::linked().await;
    let path = huge_query().replace("/docs/search?", "/docs?");
    let (status, _, body) = page(&app, &path).await;
    assert_eq!(status, 200);
    assert!(body.contains("a search takes at most 256"), "{body}");
    assert!(!body.contains("Search results"), "{body}");
    let path = many_words().replace("/docs/search?", "/docs?");
    let (status, _, body) = page(&app, &path).await;
    assert_eq!(status, 200);
    assert!(body.contains("a search takes at most 16"), "{body}");
    let (status, _, body) = page(&app, "/docs?q=configuration+configuration").await;
    assert_eq!(status, 200);
    assert!(body.contains("Search results"), "{body}");
}

#[tokio::test]
async fn no_relative_link_in_any_doc_leads_nowhere() {
    let app = TestApp::linked().await;
    // Every doc page, as listed, renders; the library checks every relative link and
    // heading anchor of each against the docs that exist.
    let (_, _, index) = page(&app, "/docs").await;
    let mut pages = 0;
    for link in index.split("href=\"").skip(1) {
        let url = &link[..link.find('"').unwrap()];
        if url.starts_with("/docs/") && url.matches('/').count() >= 3 {
            let (status, _, _) = page(&app, url).await;
            assert_eq!(status, 200, "{url}");
            pages += 1;
        }
    }
    assert!(pages >= 8, "only {pages} pages listed:\n{index}");
    let registry = plexichat::Registry::linked().unwrap();
    assert_eq!(
        docs::broken_links(registry.plugins(), "docs"),
        Vec::<String>::new()
    );
    // The check itself finds a broken link.
    let broken = docs::broken_links_in("[gone](missing.md) [ok](#here)\n\n# Here\n");
    assert_eq!(broken, ["/docs/check/README.md → missing.md"]);
}

#[tokio::test]
async fn the_search_is_in_the_openapi_document_with_its_query_parameters() {
    let app = TestApp::linked().await;
    let (status, document) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    // `Query<SearchQuery>`: one parameter per field, required as the type says; the summary
    // is the handler's doc comment's first paragraph.
    let search = &document["paths"]["/docs/search"]["get"];
    assert_eq!(search["tags"], plexichat::serde_json::json!(["docs"]));
    assert_eq!(
        search["summary"],
        "Searches every doc: JSON results ranked by BM25, with highlighted snippets."
    );
    let parameters = search["parameters"].as_array().unwrap();
    let q = parameters.iter().find(|p| p["name"] == "q").unwrap();
    assert_eq!(
        (&q["in"], &q["required"]),
        (&"query".into(), &true.into()),
        "{q}"
    );
    let limit = parameters.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["required"], false, "{limit}");
    let results = &search["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(
        results["properties"]["results"]["type"], "array",
        "{results}"
    );
}

#[tokio::test]
async fn the_tests_it_ships_pass_on_a_fresh_server() {
    let app = TestApp::linked().await;
    let runs = app.plugin_tests("docs").await;
    assert!(runs.len() >= 2, "{runs:?}");
    for run in runs {
        assert_eq!(run.status, plexichat::tests::RunStatus::Passed, "{run:?}");
    }
}
