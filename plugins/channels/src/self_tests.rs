//! Tests shipped in the binary (`plexichat tests run channels`): they read and never write, so
//! they may run on a live server.

use plexichat::prelude::*;

use crate::Channels;

/// Channels and their messages are for people who are signed in.
#[plugin_test(timeout = "5s", tags = ["smoke", "security"])]
async fn anonymous_requests_are_refused(context: &TestContext<Channels>) -> Result<(), String> {
    for path in ["/api/v1/channels", "/api/v1/messages/search?q=hello"] {
        let (status, body) = context.app().get(path).await;
        if status != StatusCode::UNAUTHORIZED || body["code"] != "unauthorized" {
            return Err(format!(
                "GET {path} without a token answered {status}: {body}"
            ));
        }
    }
    Ok(())
}
