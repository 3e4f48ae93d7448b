use plexichat::prelude::*;

/// Reaches for another plugin's context, and so its data.
#[plugin(dependencies = [my_awesome_plugin::AwesomePlugin])]
#[derive(Default)]
pub struct Thief;

#[route(GET, "/steal")]
async fn steal(context: PluginContext<my_awesome_plugin::AwesomePlugin>) -> Json<Value> {
    let _ = context.kv().get("stats").await;
    Json(json!({}))
}

#[on_event]
async fn on_action(
    context: &PluginContext<my_awesome_plugin::AwesomePlugin>,
    event: &my_awesome_plugin::ActionCompleted,
) {
    let _ = (context, event);
}

fn main() {}
