//! Tests shipped in the binary (`plexichat tests run files`): they read and never write, so
//! they may run on a live server.

use plexichat::prelude::*;

use crate::Files;

/// Files are for people who are signed in; a share link that was never made finds nothing.
#[plugin_test(timeout = "5s", tags = ["smoke", "security"])]
async fn anonymous_requests_are_refused(context: &TestContext<Files>) -> Result<(), String> {
    let (status, body) = context.app().get("/api/v1/files").await;
    if status != StatusCode::UNAUTHORIZED {
        return Err(format!(
            "GET /api/v1/files without a token answered {status}: {body}"
        ));
    }
    let (status, body) = context
        .app()
        .get("/api/v1/files/shared/pxs_never-made")
        .await;
    if status != StatusCode::NOT_FOUND || body["code"] != "share_not_found" {
        return Err(format!("an unknown share link answered {status}: {body}"));
    }
    Ok(())
}
