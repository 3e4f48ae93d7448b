use plexichat::middleware::{Next, Request};
use plexichat::prelude::*;

/// Guards the gate.
#[plugin]
#[derive(Default)]
struct GatePlugin;

// Not async, and a scope that does not exist: both reported at once.
#[middleware(scope = everywhere)]
fn not_async(request: Request, next: Next) -> plexichat::response::Response {
    let _ = (request, next);
    unimplemented!()
}

// The first of three arguments must be the plugin's context.
#[middleware]
async fn wrong_context(
    plugin: &GatePlugin,
    request: Request,
    next: Next,
) -> plexichat::response::Response {
    let _ = plugin;
    next.run(request).await
}

// Whatever it returns must be a response.
#[middleware(scope = global, priority = 3)]
async fn not_a_response(request: Request, next: Next) -> u8 {
    let _ = next.run(request).await;
    7
}

// Fine: a context, and an error type that is a response.
#[middleware]
async fn fine(
    context: PluginContext<GatePlugin>,
    request: Request,
    next: Next,
) -> Result<plexichat::response::Response, ApiError> {
    let _ = context.name();
    Ok(next.run(request).await)
}

// A layer function must return a tower layer.
#[middleware(layer)]
fn not_a_layer() -> u32 {
    7
}

// A layer function is called once, not per request: `async` is a mistake.
#[middleware(layer, scope = global)]
async fn async_layer() -> u32 {
    7
}

// Fine: any tower layer.
#[middleware(layer, scope = global)]
fn fine_layer() -> plexichat::tower::layer::util::Identity {
    plexichat::tower::layer::util::Identity::new()
}

fn main() {}
