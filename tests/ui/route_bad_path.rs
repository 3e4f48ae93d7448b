use plexichat::prelude::*;

#[route(GET, "/items/:id")]
async fn item() -> Json<Value> {
    Json(json!({}))
}

#[route(GET, "status")]
async fn status() -> Json<Value> {
    Json(json!({}))
}

fn main() {}
