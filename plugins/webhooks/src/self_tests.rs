//! Tests shipped in the binary (`plexichat tests run webhooks`): they read and never write, so
//! they may run on a live server.

use plexichat::prelude::*;

use crate::Webhooks;

/// Endpoints and their deliveries are for operators; a hook's URL needs its token.
#[plugin_test(timeout = "5s", tags = ["smoke", "security"])]
async fn strangers_are_refused(context: &TestContext<Webhooks>) -> Result<(), String> {
    for path in [
        "/api/v1/webhooks",
        "/api/v1/webhooks/event-types",
        "/api/v1/webhooks/incoming",
    ] {
        let (status, body) = context.app().get(path).await;
        if status != StatusCode::UNAUTHORIZED {
            return Err(format!(
                "GET {path} without a token answered {status}: {body}"
            ));
        }
    }
    let (status, body) = context
        .app()
        .post("/hooks/pxh_not-a-hook", json!({ "text": "hello" }))
        .await;
    if status != StatusCode::NOT_FOUND || body["code"] != "hook_not_found" {
        return Err(format!("a made-up hook token answered {status}: {body}"));
    }
    Ok(())
}
