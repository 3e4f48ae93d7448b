use plexichat::prelude::*;

/// The plugin's settings.
#[config]
#[derive(Default)]
struct Settings {
    level: u32,
}

/// One misspelt key is the only error, although the type is used below as a plugin, as a
/// configurable plugin and as a lifecycle plugin.
#[plugin(autor = "me", config = Settings, lifecycle = true)]
#[derive(Default)]
struct MyPlugin;

impl Lifecycle for MyPlugin {}

#[route(GET, "/status")]
async fn status(state: PluginState<MyPlugin>, config: PluginConfig<MyPlugin>) -> Json<Value> {
    let _: &MyPlugin = &state;
    Json(json!({ "level": config.level }))
}

#[on_event]
fn on_startup(_plugin: &MyPlugin, _event: &Startup) {}

fn main() {}
