//! A route may use its own plugin's state and a declared dependency's state and configuration.

use plexichat::prelude::*;

/// Reads its dependency.
#[plugin(dependencies = [my_awesome_plugin::AwesomePlugin])]
#[derive(Default)]
pub struct Reader;

#[route(GET, "/theirs")]
async fn theirs(
    awesome: PluginState<my_awesome_plugin::AwesomePlugin>,
    config: PluginConfig<my_awesome_plugin::AwesomePlugin>,
    reader: PluginState<Reader>,
) -> Json<Value> {
    let _ = (awesome, config, reader);
    Json(json!({}))
}

fn main() {}
