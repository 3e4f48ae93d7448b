use plexichat::prelude::*;
use plexichat::sqlx;
use plexichat::tracing::Instrument;

/// Declares every permission and uses every service from a route, a hook, a task and an
/// event handler.
#[plugin(
    permissions = ["plugin:read", "plugin:write", "database", "events:publish"],
    lifecycle = true
)]
#[derive(Default)]
pub struct Everything;

/// Published by the route.
#[event(name = "everything.done")]
#[derive(Clone)]
pub struct Done;

impl plexichat::Lifecycle for Everything {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        context.kv().set("started", b"yes").await?;
        context.files().write("notes/started.txt", "yes").await?;
        context.spawn("task", |task: TaskContext<Everything>| async move {
            let _ = task.kv().get("started").await?;
            Ok(())
        });
        Ok(())
    }
}

#[route(POST, "/do")]
async fn act(context: PluginContext<Everything>) -> Result<Json<Value>, ApiError> {
    let db = context.db();
    sqlx::query("SELECT 1").execute(db.pool()).await.map_err(ApiError::internal)?;
    let _ = context.files().read("notes/started.txt").await;
    context.publish(&Done).await;
    Ok(Json(json!({ "table": db.table("items") })))
}

#[on_event]
async fn on_done(context: &PluginContext<Everything>, _event: &Done) -> Result<(), BoxError> {
    let kv = context.kv();
    async move { kv.delete("started").await.map(drop) }
        .instrument(context.span())
        .await?;
    Ok(())
}

fn main() {}
