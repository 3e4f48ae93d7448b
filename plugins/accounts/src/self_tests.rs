//! Tests shipped in the binary (`plexichat tests run accounts`): they read and never write, so
//! they may run on a live server.

use plexichat::prelude::*;

use crate::Accounts;

/// A request without a token is refused with the header that says how to authenticate, and
/// the problem's stable code.
#[plugin_test(timeout = "5s", tags = ["smoke", "security"])]
async fn anonymous_requests_are_refused(context: &TestContext<Accounts>) -> Result<(), String> {
    let (status, body) = context.app().get("/api/v1/users/me").await;
    if status != StatusCode::UNAUTHORIZED || body["code"] != "unauthorized" {
        return Err(format!(
            "GET /api/v1/users/me without a token answered {status}: {body}"
        ));
    }
    Ok(())
}

/// A token the server never issued authenticates no one.
#[plugin_test(timeout = "5s", tags = ["security"])]
async fn unknown_tokens_are_refused(context: &TestContext<Accounts>) -> Result<(), String> {
    let (status, body) = context
        .app()
        .request("GET", "/api/v1/auth/sessions")
        .bearer("pxa_not-a-token-anyone-was-given")
        .send()
        .await;
    if status != StatusCode::UNAUTHORIZED {
        return Err(format!("an unknown token was answered {status}: {body}"));
    }
    Ok(())
}
