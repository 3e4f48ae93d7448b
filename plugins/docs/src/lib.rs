//! `docs`: the documentation viewer at `/docs`. Every compiled-in plugin's `docs/` folder and
//! the repository's own `docs/` (embedded at compile time by `#[plugin]`), listed by plugin
//! with `README.md` first, Markdown rendered to HTML, `.html` docs in a sandboxed frame, and
//! full-text search: `/docs?q=` as a page, `/docs/search?q=` as JSON.
//!
//! The library is built on the first request (a few milliseconds), not at start-up.

mod api;
mod library;
mod search;
mod self_tests;

use std::sync::{Arc, OnceLock};

use plexichat::http::{HeaderValue, header};
use plexichat::plugin::{EmbeddedFile, PluginDescriptor};
use plexichat::prelude::*;
use plexichat::response::{Html, Redirect, Response, content_type, escape_html as escape};

use crate::library::{CORE_GROUP, Doc, Kind, Library};

/// The documentation viewer: every plugin's docs and the repository's, browsable and
/// searchable at /docs.
#[plugin(
    author = "PlexiChat",
    type = core,
    prefix = "/docs",
    // The repository's docs are this plugin's: they are listed first, as "PlexiChat".
    docs = "../../docs",
    tags = ["docs", "search"],
    // Every plugin's embedded docs and routes (the API reference), read-only.
    permissions = ["plugins:read", "ui:trusted"],
)]
#[derive(Default)]
pub struct Docs {
    library: OnceLock<Arc<Library>>,
    /// The API reference page: the routes cannot change while the server runs.
    api_reference: OnceLock<String>,
}

impl Docs {
    /// The library of every compiled-in plugin's docs, built on first use.
    fn library(&self, context: &PluginContext<Docs>) -> Arc<Library> {
        Arc::clone(self.library.get_or_init(|| {
            let library = Library::of(context.plugins().descriptors(), context.name());
            for link in library.broken_links() {
                plexichat::tracing::warn!(
                    link,
                    "a doc links to a page or heading that does not exist"
                );
            }
            Arc::new(library)
        }))
    }
}

/// Every relative link or anchor in the docs of `plugins` that leads to no doc or heading,
/// as `page → link`; `own` is the plugin whose docs are the repository's. The docs plugin's
/// tests run it over the repository's plugins; `/docs` logs them as warnings when it builds.
pub fn broken_links(plugins: &[&'static PluginDescriptor], own: &str) -> Vec<String> {
    Library::of(plugins, own).broken_links()
}

/// A search over the docs of `plugins`, as `/docs/search` runs it: the library is built
/// once, then each call ranks and snippets. For the search benchmark.
pub fn searcher(
    plugins: &[&'static PluginDescriptor],
    own: &str,
) -> impl Fn(&str, usize) -> Vec<SearchHit> + use<> {
    let library = Library::of(plugins, own);
    move |query, limit| hits(&library, query, limit)
}

/// [`broken_links`] of one Markdown text, as the `README.md` of a plugin named `check`.
pub fn broken_links_in(markdown: &'static str) -> Vec<String> {
    let files: &'static [EmbeddedFile] = Box::leak(Box::new([EmbeddedFile {
        path: "README.md",
        bytes: markdown.as_bytes(),
    }]));
    Library::build(vec![("check", "check".to_string(), files)]).broken_links()
}

/// The most results `/docs/search` returns.
const MAX_LIMIT: usize = 100;

/// `GET /docs/search`'s parameters.
#[payload(request)]
#[derive(Debug)]
pub struct SearchQuery {
    /// The words to look for (at least one letter or digit, at most 16 different words and
    /// 256 bytes); the last one also matches as a prefix.
    #[schemars(length(min = 1, max = 256))]
    pub q: String,
    /// At most this many results, 1 to 100 (default 20).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<usize>,
}

/// `GET /docs`'s parameters: with `q`, the page shows search results.
#[payload(request)]
#[derive(Debug)]
pub struct PageQuery {
    /// Words to search for.
    pub q: Option<String>,
}

/// One search result.
#[payload(response)]
#[derive(Debug)]
pub struct SearchHit {
    /// The plugin whose docs hold it (`plexichat` for the repository's docs).
    pub plugin: String,
    /// The document's title.
    pub title: String,
    /// The section's heading (empty for the part before the first heading).
    pub section: String,
    /// Where to read it, with the section's anchor.
    pub url: String,
    /// BM25 score; higher is better.
    pub score: f32,
    /// About 200 characters around the first match, HTML-escaped, matches in `<mark>`.
    pub snippet: String,
}

/// `GET /docs/search`'s answer.
#[payload(response)]
#[derive(Debug)]
pub struct SearchResults {
    /// The query as received.
    pub query: String,
    /// The results, best first.
    pub results: Vec<SearchHit>,
}

/// Searches every doc: JSON results ranked by BM25, with highlighted snippets.
#[route(GET, "/search")]
async fn search_json(
    context: PluginContext<Docs>,
    docs: PluginState<Docs>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_LIMIT} (got {limit})"
        )));
    }
    if let Some(refusal) = search::refusal("q", &query.q) {
        return Err(ApiError::bad_request(refusal));
    }
    let library = docs.library(&context);
    let results = hits(&library, &query.q, limit);
    Ok(Json(SearchResults {
        query: query.q,
        results,
    }))
}

fn hits(library: &Library, query: &str, limit: usize) -> Vec<SearchHit> {
    library
        .index
        .search(query, limit)
        .into_iter()
        .map(|hit| {
            let doc = &library.docs[hit.doc];
            let section = &doc.sections[hit.section];
            let url = if section.anchor.is_empty() {
                doc.url()
            } else {
                format!("{}#{}", doc.url(), section.anchor)
            };
            SearchHit {
                plugin: doc.segment.to_string(),
                title: doc.title.clone(),
                section: section.heading.clone(),
                url,
                score: hit.score,
                snippet: search::snippet(&section.text, query),
            }
        })
        .collect()
}

/// The API reference: every route of this binary, from its OpenAPI document.
#[route(GET, "/api")]
async fn api_reference(context: PluginContext<Docs>, docs: PluginState<Docs>) -> Html<String> {
    let page = docs.api_reference.get_or_init(|| {
        let document = plexichat::openapi::served(&context.plugins());
        let library = docs.library(&context);
        layout(&library, "API reference", "", None, &api::render(&document))
    });
    Html(page.clone())
}

/// The list of every plugin's docs, or search results with `?q=`.
#[route(GET, "/")]
async fn index(
    context: PluginContext<Docs>,
    docs: PluginState<Docs>,
    Query(query): Query<PageQuery>,
) -> (StatusCode, Html<String>) {
    let library = docs.library(&context);
    let query = query.q.unwrap_or_default();
    if !query.trim().is_empty() {
        if let Some(refusal) = search::refusal("q", &query) {
            // A page for a person, who retypes the query: every error status would be turned
            // into a JSON body by the server (`/docs/search` answers 400).
            let main = format!(
                "<h1>Search</h1>\n<p class=\"error\">{}</p>\n",
                escape(&refusal)
            );
            let shown: String = query.trim().chars().take(80).collect();
            return (
                StatusCode::OK,
                Html(layout(&library, "Search", &shown, None, &main)),
            );
        }
        let results = hits(&library, &query, 50);
        let mut main = format!("<h1>Search results for “{}”</h1>\n", escape(query.trim()));
        if results.is_empty() {
            main.push_str("<p>No doc mentions these words.</p>\n");
        } else {
            main.push_str("<ol class=\"results\">\n");
            for hit in &results {
                main.push_str(&result_item(hit));
            }
            main.push_str("</ol>\n");
        }
        return (
            StatusCode::OK,
            Html(layout(&library, "Search", &query, None, &main)),
        );
    }
    let mut main = String::from(
        "<h1>Documentation</h1>\n<p>Every compiled-in plugin's docs, and PlexiChat's own. Search them with the box above.</p>\n",
    );
    for group in &library.groups {
        main.push_str(&format!(
            "<section><h2><a href=\"/docs/{}\">{}</a></h2>\n<ul>\n",
            escape(group.segment),
            escape(&group.title)
        ));
        for &index in &group.docs {
            let doc = &library.docs[index];
            main.push_str(&format!(
                "<li><a href=\"{}\">{}</a></li>\n",
                escape(&doc.url()),
                escape(&doc.title)
            ));
        }
        main.push_str("</ul></section>\n");
    }
    (
        StatusCode::OK,
        Html(layout(&library, "Documentation", "", None, &main)),
    )
}

pub(crate) fn result_item(hit: &SearchHit) -> String {
    let section = if hit.section.is_empty() {
        String::new()
    } else {
        format!(" › {}", escape(&hit.section))
    };
    format!(
        "<li><a href=\"{}\">{}{section}</a> <span class=\"plugin\">{}</span><p>{}</p></li>\n",
        escape(&hit.url),
        escape(&hit.title),
        escape(&hit.plugin),
        hit.snippet
    )
}

/// `/docs/<plugin>`: its `README.md`, or its first doc. This plugin's own docs are
/// PlexiChat's, so `/docs/docs` (where a listing of plugins links) leads there.
#[route(GET, "/{plugin}")]
async fn group(
    context: PluginContext<Docs>,
    docs: PluginState<Docs>,
    Path(plugin): Path<String>,
) -> Result<Redirect, ApiError> {
    let library = docs.library(&context);
    let segment = if plugin == <Docs as plexichat::Plugin>::NAME {
        CORE_GROUP.0
    } else {
        &plugin
    };
    let first = library
        .group(segment)
        .and_then(|group| group.docs.first())
        .ok_or_else(|| ApiError::not_found(no_docs(&plugin)))?;
    Ok(Redirect::to(&library.docs[*first].url()))
}

fn no_docs(plugin: &str) -> String {
    format!(
        "no compiled-in plugin named `{plugin}` has docs; `/docs` lists those that do (`{}` is PlexiChat's own)",
        CORE_GROUP.0
    )
}

/// `GET /docs/<plugin>/<path>`'s parameters.
#[payload(request)]
#[derive(Debug)]
pub struct DocQuery {
    /// Serve an `.html` doc itself (what the page's sandboxed frame loads).
    #[serde(default)]
    pub raw: bool,
}

/// One doc: Markdown rendered in the page, an HTML doc in a sandboxed frame, any other file
/// as it is.
#[route(GET, "/{plugin}/{*path}")]
async fn page(
    context: PluginContext<Docs>,
    docs: PluginState<Docs>,
    Path((plugin, path)): Path<(String, String)>,
    Query(query): Query<DocQuery>,
) -> Result<Response, ApiError> {
    let library = docs.library(&context);
    if library.group(&plugin).is_none() {
        return Err(ApiError::not_found(no_docs(&plugin)));
    }
    let doc = library.doc(&plugin, &path).ok_or_else(|| {
        ApiError::not_found(format!(
            "`{plugin}` has no doc `{path}`; `/docs/{plugin}` lists its docs"
        ))
    })?;
    Ok(match (&doc.kind, query.raw) {
        (Kind::Markdown(html), _) => {
            let main = format!("<article class=\"doc\">\n{html}</article>\n");
            Html(layout(&library, &doc.title, "", Some(doc), &main)).into_response()
        }
        (Kind::Html, false) => {
            let main = format!(
                "<h1 class=\"visually-hidden\">{title}</h1>\n<iframe class=\"html-doc\" sandbox src=\"?raw=true\" title=\"{title}\"></iframe>\n",
                title = escape(&doc.title)
            );
            Html(layout(&library, &doc.title, "", Some(doc), &main)).into_response()
        }
        (Kind::Html, true) => raw(doc, true),
        (Kind::File, _) => raw(doc, false),
    })
}

/// The file as it is, always sandboxed: the docs plugin serves its pages in the server's own
/// origin (`ui:trusted`), and a plugin's doc file (an SVG with a script, an HTML doc opened on
/// its own) must never run there, where the admin session lives. An HTML doc may be framed
/// by the docs page only; anything that reads as HTML but is not a readable HTML doc is sent
/// as bytes to download.
fn raw(doc: &Doc, html: bool) -> Response {
    let mut response = doc.bytes.into_response();
    let headers = response.headers_mut();
    let content_type = match (html, content_type(doc.path)) {
        (true, _) => "text/html; charset=utf-8",
        (false, kind) if kind.starts_with("text/html") => "application/octet-stream",
        (false, kind) => kind,
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'",
        ),
    );
    if html {
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    }
    response
}

/// The page around every view: a header with the search box, the docs of every plugin as
/// navigation, and `main`.
fn layout(
    library: &Library,
    title: &str,
    query: &str,
    current: Option<&Doc>,
    main: &str,
) -> String {
    let mut nav = String::new();
    for group in &library.groups {
        nav.push_str(&format!("<h2>{}</h2>\n<ul>\n", escape(&group.title)));
        for &index in &group.docs {
            let doc = &library.docs[index];
            if !doc.is_page() {
                continue;
            }
            let here = current.is_some_and(|current| std::ptr::eq(current, doc));
            nav.push_str(&format!(
                "<li><a href=\"{}\"{}>{}</a></li>\n",
                escape(&doc.url()),
                if here { " aria-current=\"page\"" } else { "" },
                escape(&doc.title)
            ));
        }
        nav.push_str("</ul>\n");
    }
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · PlexiChat docs</title>
<link rel="icon" href="/plugins/docs/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/plexichat.css">
<link rel="stylesheet" href="/plugins/docs/static/docs.css">
<script src="/plugins/docs/static/docs.js" defer></script>
</head>
<body>
<a class="skip" href="#content">Skip to the content</a>
<header class="px-bar">
<a class="px-brand" href="/">PlexiChat</a>
<a href="/docs">Docs</a>
<a href="/docs/api">API reference</a>
<form role="search" action="/docs" method="get">
<label for="q">Search the docs</label>
<input id="q" name="q" type="search" value="{query}" autocomplete="off" aria-controls="live-results">
<button type="submit">Search</button>
</form>
</header>
<div id="live-results" class="live-results" aria-live="polite"></div>
<div class="layout">
<nav aria-label="Documentation">
{nav}</nav>
<main id="content">
{main}</main>
</div>
</body>
</html>
"##,
        title = escape(title),
        query = escape(query),
    )
}
