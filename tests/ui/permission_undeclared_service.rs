use plexichat::prelude::*;

/// Declares only `plugin:read`, then writes, queries SQL, publishes and calls out.
#[plugin(permissions = ["plugin:read"])]
#[derive(Default)]
pub struct Notes;

/// Published by the route.
#[event(name = "notes.saved")]
#[derive(Clone)]
pub struct Saved;

#[route(POST, "/save")]
async fn save(context: PluginContext<Notes>) -> Json<Value> {
    // Reading is declared: fine.
    let _ = context.kv().get("note").await;
    // Writing is not.
    let _ = context.kv().set("note", b"text").await;
    // Neither is the SQL pool.
    let _ = context.db();
    // Nor publishing.
    context.publish(&Saved).await;
    // Nor outbound HTTP.
    let _ = context.http();
    Json(json!({}))
}

fn main() {}
