use plexichat::axum::extract::State;
use plexichat::prelude::*;

/// Declares no permission, then reaches for the server itself.
#[plugin]
#[derive(Default)]
pub struct Snoop;

impl Lifecycle for Snoop {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        // The runtime (start, stop, enable, disable, reload, publish) is not a plugin's.
        context.runtime().shutdown().await;
        Ok(())
    }
}

// Nor is it the router's state.
#[route(GET, "/runtime")]
async fn runtime(State(runtime): State<plexichat::Runtime>) -> Json<Value> {
    runtime.shutdown().await;
    Json(json!({}))
}

// A plugin's own test reaches the server as a client does, never its runtime.
#[plugin_test]
async fn reaches(context: &TestContext<Snoop>) -> Result<(), String> {
    context.app().runtime.shutdown().await;
    Ok(())
}

fn main() {}
