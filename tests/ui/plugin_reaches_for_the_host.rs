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

// Nor the admin token file beside its data folder, nor the storage and server the host
// builds: the facade does not re-export the host's side.
#[route(GET, "/token")]
async fn token() -> Json<Value> {
    let _ = plexichat::data_dir::read_token(std::path::Path::new("data"));
    let _ = plexichat::storage::Storage::open;
    let _ = plexichat::server::serve;
    Json(json!({}))
}

// Nor through generated code's hidden path: a descriptor's function pointers, written by
// hand, receive the host closed, and `__private` does not name the runtime.
fn hand_written_shim(host: &plexichat::__private::Host) {
    let _ = host.runtime();
    let _: Option<plexichat::__private::Runtime> = None;
}

// A plugin's own test reaches the server as a client does, never its runtime.
#[plugin_test]
async fn reaches(context: &TestContext<Snoop>) -> Result<(), String> {
    context.app().runtime.shutdown().await;
    Ok(())
}

fn main() {
    let _ = hand_written_shim;
}
