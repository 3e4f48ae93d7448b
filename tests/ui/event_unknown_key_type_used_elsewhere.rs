use plexichat::prelude::*;

/// Publishes.
#[plugin(permissions = ["events:publish"])]
#[derive(Default)]
struct Thing;

/// One misspelt key is the only error, although the type is handled and published below.
#[event(nmae = "my.thing.happened")]
#[derive(Clone)]
struct Happened {
    id: u32,
}

#[on_event]
fn on_happened(event: &Happened) {
    let _ = event.id;
}

#[route(POST, "/happen")]
async fn happen(context: PluginContext<Thing>) -> Json<Value> {
    context.publish(&Happened { id: 1 }).await;
    Json(json!({}))
}

fn main() {}
