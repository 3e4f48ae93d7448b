//! Tests that ship inside the binary (`#[plugin_test]`): the home page as a visitor gets it.

use plexichat::prelude::*;

use crate::Shell;

/// `/` lists every compiled-in plugin, each with its state.
#[plugin_test(timeout = "10s", tags = ["smoke", "ui"], category = user_experience)]
async fn home_lists_every_plugin(context: &TestContext<Shell>) -> Result<(), String> {
    let (status, body) = context.app().get("/").await;
    let html = body.as_str().unwrap_or_default();
    if status != StatusCode::OK {
        return Err(format!("GET / answered {status}"));
    }
    let missing: Vec<&str> = context
        .plugins()
        .descriptors()
        .iter()
        .map(|plugin| plugin.name)
        .filter(|name| !html.contains(&format!("data-plugin=\"{name}\"")))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the home page does not list: {}",
            missing.join(", ")
        ))
    }
}

/// `/favicon.ico` leads to the shell's icon, which is served as SVG.
#[plugin_test(timeout = "10s", tags = ["ui"], category = user_experience)]
async fn the_favicon_is_served(context: &TestContext<Shell>) -> Result<(), String> {
    let response = context
        .app()
        .request("GET", "/favicon.ico")
        .send_raw()
        .await;
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            format!(
                "/favicon.ico answered {} without a location",
                response.status()
            )
        })?
        .to_string();
    let icon = context.app().request("GET", &location).send_raw().await;
    let content_type = icon
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if icon.status() == StatusCode::OK && content_type.starts_with("image/svg+xml") {
        Ok(())
    } else {
        Err(format!(
            "{location} answered {} with `{content_type}`",
            icon.status()
        ))
    }
}
