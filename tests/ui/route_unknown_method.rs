use plexichat::prelude::*;

#[route(FETCH, "/status")]
async fn status() -> Json<Value> {
    Json(json!({}))
}

#[route(get, "/other")]
async fn other() -> Json<Value> {
    Json(json!({}))
}

fn main() {}
