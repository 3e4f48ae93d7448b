//! Tests that ship inside the binary (`#[plugin_test]`): they check the running plugin
//! through its routes and its store, read-only, so a schedule may run them on a live server.

use plexichat::prelude::*;

use crate::{AwesomePlugin, stats};

/// `GET /api/v1/awesome/status` answers with the configuration in force and statistics
/// that match the store.
#[plugin_test(timeout = "10s", tags = ["smoke", "api"], category = integration)]
async fn status_reports_the_configuration(
    context: &TestContext<AwesomePlugin>,
) -> Result<(), String> {
    let (status, body) = context.app().get("/api/v1/awesome/status").await;
    if status != StatusCode::OK {
        return Err(format!(
            "GET /api/v1/awesome/status answered {status}: {body}"
        ));
    }
    let config = context
        .config::<AwesomePlugin>()
        .ok_or("the plugin has no configuration")?;
    if body["status"] != "awesome" {
        return Err(format!("`status` is {}, not \"awesome\"", body["status"]));
    }
    if body["enabled"] != config.enabled || body["config"]["interval"] != config.interval {
        return Err(format!(
            "the answer's configuration {} is not the one in force ({config:?})",
            body["config"]
        ));
    }
    let stored = stats(&context.kv())
        .await
        .map_err(|error| error.to_string())?;
    // Another request may count an action in between; the answer is never ahead of the store.
    let answered = body["stats"]["actions_performed"]
        .as_u64()
        .ok_or("`stats.actions_performed` is not a number")?;
    if answered > stored.actions_performed {
        return Err(format!(
            "the answer counts {answered} actions, the store only {}",
            stored.actions_performed
        ));
    }
    Ok(())
}

/// The statistics in the key-value store parse, and a last action is recorded exactly when
/// an action was counted.
#[plugin_test(category = analytics)]
async fn stored_statistics_are_consistent(
    context: &TestContext<AwesomePlugin>,
) -> Result<(), String> {
    let stats = stats(&context.kv())
        .await
        .map_err(|error| error.to_string())?;
    match (stats.actions_performed, &stats.last_action) {
        (0, Some(last)) => Err(format!("no action counted, but a last action at {last}")),
        (count, None) if count > 0 => Err(format!("{count} actions counted, but no last action")),
        _ => Ok(()),
    }
}

/// The Awesome Dashboard page is served as HTML with its title.
#[plugin_test(timeout = "10s", tags = ["ui"], category = user_experience)]
async fn dashboard_page_is_served(context: &TestContext<AwesomePlugin>) -> Result<(), String> {
    let response = context
        .app()
        .request("GET", "/plugins/my_awesome_plugin/dashboard/")
        .send_raw()
        .await;
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_string();
    if response.status() != StatusCode::OK || !content_type.starts_with("text/html") {
        return Err(format!(
            "the dashboard answered {} with `{content_type}`",
            response.status()
        ));
    }
    let (_, body) = context
        .app()
        .get("/plugins/my_awesome_plugin/dashboard/")
        .await;
    match body.as_str() {
        Some(html) if html.contains("Awesome Dashboard") => Ok(()),
        _ => Err("the dashboard page does not show its title".to_string()),
    }
}

/// The configuration in force is within the bounds its schema documents (a synchronous
/// test: it runs on a thread of its own).
#[plugin_test(category = functionality)]
fn configuration_is_within_bounds(context: &TestContext<AwesomePlugin>) -> Result<(), String> {
    let config = context
        .config::<AwesomePlugin>()
        .ok_or("the plugin has no configuration")?;
    if (1..=3600).contains(&config.interval) {
        Ok(())
    } else {
        Err(format!(
            "`interval` is {}, outside 1..=3600",
            config.interval
        ))
    }
}
