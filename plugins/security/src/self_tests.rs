//! Tests that ship inside the binary (`#[plugin_test]`): requests through the whole
//! application, as a client's would go, that change nothing.

use plexichat::http::HeaderMap;
use plexichat::prelude::*;

use crate::{Security, is_valid_id};

/// A path every binary serves, outside any plugin: the policies are global.
const PROBE: &str = "/health";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Every answer carries the configured security headers (`nosniff`, the content security
/// policy, frame options, referrer policy), or none when `headers` is off.
#[plugin_test(timeout = "10s", tags = ["smoke", "headers"], category = security)]
async fn answers_carry_the_security_headers(context: &TestContext<Security>) -> Result<(), String> {
    let config = context
        .config::<Security>()
        .ok_or("the plugin has no configuration")?;
    let response = context.app().request("GET", PROBE).send_raw().await;
    let headers = response.headers();
    let expected = [
        ("x-content-type-options", "nosniff"),
        (
            "content-security-policy",
            config.content_security_policy.as_str(),
        ),
        ("x-frame-options", config.frame_options.as_str()),
        ("referrer-policy", config.referrer_policy.as_str()),
    ];
    for (name, value) in expected {
        let found = header(headers, name);
        let wanted = (config.headers && !value.is_empty()).then_some(value);
        if found != wanted {
            return Err(format!(
                "GET {PROBE}: `{name}` is {found:?}, the configuration asks for {wanted:?}"
            ));
        }
    }
    Ok(())
}

/// A request without an ID gets a new one on its answer; with a valid ID it keeps it when
/// `trust_request_id` is on, and gets a different one when it is off.
#[plugin_test(timeout = "10s", tags = ["request-id"], category = security)]
async fn requests_get_an_id(context: &TestContext<Security>) -> Result<(), String> {
    let config = context
        .config::<Security>()
        .ok_or("the plugin has no configuration")?;
    let name = config.request_id_header.as_str();
    if name.is_empty() {
        let response = context.app().request("GET", PROBE).send_raw().await;
        return match header(response.headers(), "x-request-id") {
            None => Ok(()),
            Some(id) => Err(format!("request IDs are off, but the answer carries {id}")),
        };
    }
    let response = context.app().request("GET", PROBE).send_raw().await;
    let made = header(response.headers(), name).unwrap_or_default();
    if !is_valid_id(made.as_bytes()) {
        return Err(format!(
            "the answer's `{name}` is {made:?}, not a request ID"
        ));
    }
    let sent = "self-test-4f1c";
    let response = context
        .app()
        .request("GET", PROBE)
        .header(name, sent)
        .send_raw()
        .await;
    let answered = header(response.headers(), name).unwrap_or_default();
    match (config.trust_request_id, answered == sent) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => Err(format!("the client's ID {sent} came back as {answered:?}")),
        (false, true) => Err(format!(
            "`trust_request_id` is off, yet the client's ID {sent} was kept"
        )),
    }
}
