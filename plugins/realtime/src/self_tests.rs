//! Tests shipped in the binary (`plexichat tests run realtime`).

use plexichat::prelude::*;

use crate::Realtime;

/// `GET /api/v1/ws` is a WebSocket: a plain request is told to upgrade.
#[plugin_test(timeout = "5s", tags = ["smoke"])]
async fn the_websocket_wants_an_upgrade(context: &TestContext<Realtime>) -> Result<(), String> {
    let (status, body) = context.app().get("/api/v1/ws").await;
    if !status.is_client_error() {
        return Err(format!(
            "GET /api/v1/ws without an upgrade answered {status}: {body}"
        ));
    }
    Ok(())
}
