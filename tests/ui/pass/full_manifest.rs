//! Every manifest key, both event handler forms, and routes with parameters compile.

use plexichat::prelude::*;

/// A plugin using every key.
#[plugin(
    name = "full",
    version = "2.0.0",
    description = "Overrides the doc comment",
    author = "Tester",
    type = micro_app,
    dependencies = [],
    permissions = ["plugin:read"],
    api_version = "1.0",
    min_plexichat_version = "0.1.0",
    category = "utility",
    tags = ["a", "b"],
    homepage = "https://example.invalid",
    repository = "https://example.invalid/repo",
    license = "MIT",
    icon = "star",
    // trybuild compiles the cases in target/tests/trybuild/plexichat-tests.
    ui_pages = [{ name = "main", path = "../../../../tests/ui/pages/main", title = "Main" }],
    docs = "../../../../tests/ui/pages/docs",
    webhooks = [Done],
    auto_start = false,
    prefix = "/full",
)]
#[derive(Default)]
struct Full;

#[event(name = "full.done")]
struct Done {
    id: u32,
}

#[on_event(priority = -3)]
fn plain(done: &Done) {
    let _ = done.id;
}

#[on_event]
async fn with_state(_plugin: &Full, _done: &Done) -> Result<(), String> {
    Ok(())
}

#[route(DELETE, "/items/{id}/{*rest}")]
async fn delete(Path((id, rest)): Path<(u32, String)>) -> Json<Value> {
    Json(json!({ "id": id, "rest": rest }))
}

fn main() {}
