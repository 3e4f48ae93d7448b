use plexichat::prelude::*;

#[route(GET, "/status")]
fn status() -> Json<Value> {
    Json(json!({}))
}

fn main() {}
