use plexichat::prelude::*;

/// A plugin.
#[plugin]
#[derive(Default)]
pub struct MyPlugin;

// `String` reads the whole body, so it must be the last argument; `#[debug_handler]` says
// which argument is wrong instead of "the trait `Handler` is not implemented".
#[route(POST, "/notes")]
#[plexichat::debug_handler]
async fn add_note(text: String, plugin: PluginState<MyPlugin>) -> Json<Value> {
    let _ = (text, plugin);
    Json(json!({}))
}

fn main() {}
