use plexichat::prelude::*;

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
async fn happen(events: Events) -> Json<Value> {
    events.publish(&Happened { id: 1 }).await;
    Json(json!({}))
}

fn main() {}
