use plexichat::prelude::*;

/// Reads another plugin's state without declaring it.
#[plugin]
#[derive(Default)]
pub struct Reader;

#[route(GET, "/theirs")]
async fn theirs(awesome: PluginState<my_awesome_plugin::AwesomePlugin>) -> Json<Value> {
    let _ = awesome;
    Json(json!({}))
}

#[route(GET, "/config")]
async fn config(config: PluginConfig<my_awesome_plugin::AwesomePlugin>) -> Json<Value> {
    let _ = config;
    Json(json!({}))
}

#[route(GET, "/mine")]
async fn mine(reader: PluginState<Reader>) -> Json<Value> {
    let _ = reader;
    Json(json!({}))
}

fn main() {}
