//! Tests that ship inside the binary (`#[plugin_test]`): the library and search of the
//! docs this binary embeds, through the routes readers use.

use plexichat::prelude::*;

use crate::Docs;

/// Every page's title, searched for, finds that page among the first results: the index
/// covers every embedded doc.
#[plugin_test(timeout = "30s", tags = ["search"], category = functionality)]
async fn every_page_is_found_by_its_title(context: &TestContext<Docs>) -> Result<(), String> {
    let docs = context.instance().ok_or("the plugin has no instance")?;
    let library = docs.library(context);
    let mut missing = Vec::new();
    for doc in library.docs.iter().filter(|doc| doc.is_page()) {
        if crate::search::words(&doc.title).is_empty() {
            continue;
        }
        let url = doc.url();
        let found = crate::hits(&library, &doc.title, 20)
            .iter()
            .any(|hit| hit.url.split('#').next() == Some(url.as_str()));
        if !found {
            missing.push(format!("{url} (\"{}\")", doc.title));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("not found by their titles: {}", missing.join(", ")))
    }
}

/// `/docs` and every page it links to answer 200.
#[plugin_test(timeout = "60s", tags = ["ui", "links"], category = user_experience)]
async fn every_page_answers(context: &TestContext<Docs>) -> Result<(), String> {
    let (status, _) = context.app().get("/docs").await;
    if status != StatusCode::OK {
        return Err(format!("GET /docs answered {status}"));
    }
    let docs = context.instance().ok_or("the plugin has no instance")?;
    let library = docs.library(context);
    let mut broken = Vec::new();
    for doc in &library.docs {
        let url = doc.url();
        let (status, _) = context.app().get(&url).await;
        if status != StatusCode::OK {
            broken.push(format!("{url} ({status})"));
        }
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "pages that do not answer 200: {}",
            broken.join(", ")
        ))
    }
}

/// A search with no words is refused with 400 naming `q`, not answered with everything.
#[plugin_test(category = functionality, tags = ["search", "api"])]
async fn an_empty_search_is_refused(context: &TestContext<Docs>) -> Result<(), String> {
    let (status, body) = context.app().get("/docs/search?q=%20").await;
    if status == StatusCode::BAD_REQUEST && body.to_string().contains("`q`") {
        Ok(())
    } else {
        Err(format!("GET /docs/search?q=%20 answered {status}: {body}"))
    }
}
