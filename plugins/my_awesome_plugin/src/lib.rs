//! The seed tutorial's `my_awesome_plugin`, in Rust: `GET /api/v1/awesome/status` reports its
//! configuration and statistics, `POST /api/v1/awesome/action` performs an action, counts it
//! and publishes `awesome.action.completed` for other plugins (see `awesome_audit`).

use std::sync::Mutex;

use plexichat::prelude::*;

/// An awesome plugin for PlexiChat.
#[plugin(
    author = "Your Name",
    type = feature,
    permissions = ["plugin:read", "plugin:write"],
    api_version = "1.0",
    category = "utility",
    tags = ["awesome", "example", "demo"],
    homepage = "https://github.com/yourusername/my-awesome-plugin",
    repository = "https://github.com/yourusername/my-awesome-plugin",
    license = "MIT",
    icon = "star",
    ui_pages = [{
        name = "dashboard",
        path = "ui/dashboard",
        title = "Awesome Dashboard",
        description = "Main dashboard for the awesome plugin",
    }],
    webhooks = ["awesome.action.completed"],
    auto_start = true,
    prefix = "/api/v1/awesome",
    config = AwesomeConfig,
    lifecycle = true,
)]
#[derive(Default)]
pub struct AwesomePlugin {
    stats: Mutex<Stats>,
}

/// `[plugins.my_awesome_plugin]`: whether the plugin accepts actions, and how often its
/// background task does a round.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwesomeConfig {
    /// Whether `POST /api/v1/awesome/action` performs actions (when false it answers 400)
    /// and the background task does its rounds.
    pub enabled: bool,
    /// Seconds between two rounds of the background task; a reload applies from the next
    /// round.
    #[schemars(range(min = 1, max = 3600))]
    pub interval: u32,
}

impl Default for AwesomeConfig {
    fn default() -> Self {
        AwesomeConfig {
            enabled: true,
            interval: 60,
        }
    }
}

/// What the plugin has done since start.
#[payload(response)]
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Actions performed.
    pub actions_performed: u64,
    /// RFC 3339 time of the last action.
    pub last_action: Option<String>,
    /// Failed actions.
    pub errors: u64,
    /// RFC 3339 time the server started, recorded from the core `startup` event.
    pub started_at: Option<String>,
    /// Rounds of the background task that did work.
    pub background_runs: u64,
    /// RFC 3339 time of the background task's last round.
    pub last_background_run: Option<String>,
}

impl AwesomePlugin {
    /// A snapshot of the statistics.
    pub fn stats(&self) -> Stats {
        self.lock_stats().clone()
    }

    /// A poisoned lock only means another request panicked mid-update; the counters are
    /// still meaningful, so keep serving them.
    fn lock_stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl plexichat::Lifecycle for AwesomePlugin {
    async fn init(&self, context: &PluginContext) -> Result<(), BoxError> {
        context.spawn("awesome_background_task", awesome_background_task);
        Ok(())
    }
}

/// The seed's periodic task: every `interval` seconds, while `enabled`, it does its round and
/// records it. The interval is read each round, so a configuration reload takes effect at
/// the next one; the supervisor restarts the task if it fails.
async fn awesome_background_task(task: TaskContext) -> Result<(), BoxError> {
    let runtime = task.runtime().clone();
    loop {
        let config = runtime
            .config::<AwesomePlugin>()
            .ok_or("my_awesome_plugin has no configuration")?;
        if config.enabled {
            let plugin = runtime
                .plugin::<AwesomePlugin>()
                .ok_or("my_awesome_plugin is not loaded")?;
            let mut stats = plugin.lock_stats();
            stats.background_runs += 1;
            stats.last_background_run = Some(plexichat::timestamp());
        }
        if !task
            .sleep(std::time::Duration::from_secs(config.interval.into()))
            .await
        {
            return Ok(());
        }
    }
}

/// Published after every successful action.
#[event(name = "awesome.action.completed")]
#[derive(Clone, Debug)]
pub struct ActionCompleted {
    /// The action's sequence number, starting at 1.
    pub action_number: u64,
    /// RFC 3339 time of the action.
    pub timestamp: String,
}

#[route(GET, "/status")]
async fn get_status(
    plugin: PluginState<AwesomePlugin>,
    config: PluginConfig<AwesomePlugin>,
) -> Json<Value> {
    Json(json!({
        "status": "awesome",
        "enabled": config.enabled,
        "stats": plugin.stats(),
        "config": *config,
    }))
}

#[route(POST, "/action")]
async fn perform_action(
    plugin: PluginState<AwesomePlugin>,
    config: PluginConfig<AwesomePlugin>,
    events: Events,
) -> Result<Json<Value>, ApiError> {
    if !config.enabled {
        return Err(ApiError::bad_request("Plugin is disabled"));
    }
    let event = {
        let mut stats = plugin.lock_stats();
        stats.actions_performed += 1;
        let timestamp = plexichat::timestamp();
        stats.last_action = Some(timestamp.clone());
        ActionCompleted {
            action_number: stats.actions_performed,
            timestamp,
        }
    };
    events.publish(&event).await;
    Ok(Json(json!({
        "success": true,
        "message": "Awesome action performed!",
        "timestamp": event.timestamp,
    })))
}

#[on_event]
fn on_startup(plugin: &AwesomePlugin, _event: &Startup) {
    plugin.lock_stats().started_at = Some(plexichat::timestamp());
}

#[cfg(test)]
mod tests {
    use plexichat::testing::TestApp;

    use super::*;

    #[tokio::test]
    async fn action_is_counted_and_shown_in_status() {
        let app = TestApp::linked().await;
        let (status, body) = app.get("/api/v1/awesome/status").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "awesome");
        assert_eq!(body["stats"]["actions_performed"], 0);
        assert_eq!(body["config"], json!({ "enabled": true, "interval": 60 }));

        let (status, body) = app.post("/api/v1/awesome/action", ()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["success"], true);
        let timestamp = body["timestamp"].as_str().expect("timestamp string");

        let (_, body) = app.get("/api/v1/awesome/status").await;
        assert_eq!(body["stats"]["actions_performed"], 1);
        assert_eq!(body["stats"]["last_action"], timestamp);
    }

    #[tokio::test]
    async fn startup_event_is_recorded() {
        let app = TestApp::linked().await;
        app.runtime.publish(&Startup { plugins: vec![] }).await;
        let (_, body) = app.get("/api/v1/awesome/status").await;
        assert!(body["stats"]["started_at"].is_string(), "{body}");
    }
}
