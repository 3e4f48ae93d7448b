//! The seed tutorial's `my_awesome_plugin`, in Rust: `GET /api/v1/awesome/status` reports its
//! configuration and statistics, `POST /api/v1/awesome/action` proposes
//! `awesome.action.requested` (other plugins' pre-handlers may change its note or refuse it),
//! then performs the action, counts it and publishes `awesome.action.completed` (see
//! `awesome_audit`). The statistics live in the plugin's key-value store, so they survive a
//! restart.

use plexichat::prelude::*;
use plexichat::storage::kv::{Kv, KvError};

mod self_tests;

/// An awesome plugin for PlexiChat.
#[plugin(
    author = "Your Name",
    type = feature,
    permissions = ["plugin:read", "plugin:write", "events:publish"],
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
    webhooks = [ActionCompleted],
    auto_start = true,
    prefix = "/api/v1/awesome",
    config = AwesomeConfig,
    lifecycle = true,
)]
#[derive(Default)]
pub struct AwesomePlugin;

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

/// What the plugin has done, kept across restarts.
#[payload]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
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

/// The key the statistics are stored under.
const STATS: &str = "stats";

/// The statistics as stored; zero before the first action.
pub async fn stats(kv: &Kv<AwesomePlugin>) -> Result<Stats, KvError> {
    Ok(kv.get_json(STATS).await?.unwrap_or_default())
}

/// Applies `change` to the stored statistics and returns the result. A compare-and-set loop:
/// two concurrent updates (a request and the background task, or two replicas) both count.
async fn update_stats(
    kv: &Kv<AwesomePlugin>,
    change: impl Fn(&mut Stats),
) -> Result<Stats, BoxError> {
    loop {
        let old = kv.get(STATS).await?;
        let mut stats: Stats = match &old {
            Some(bytes) => plexichat::serde_json::from_slice(bytes)?,
            None => Stats::default(),
        };
        change(&mut stats);
        let new = plexichat::serde_json::to_vec(&stats)?;
        if kv
            .compare_and_set(STATS, old.as_deref(), &new, None)
            .await?
        {
            return Ok(stats);
        }
    }
}

impl plexichat::Lifecycle for AwesomePlugin {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        context.spawn("awesome_background_task", awesome_background_task);
        Ok(())
    }
}

/// The seed's periodic task: every `interval` seconds, while `enabled`, it does its round and
/// records it. The interval is read each round, so a configuration reload takes effect at
/// the next one; the supervisor restarts the task if it fails.
async fn awesome_background_task(task: TaskContext<AwesomePlugin>) -> Result<(), BoxError> {
    loop {
        let config = task
            .config::<AwesomePlugin>()
            .ok_or("my_awesome_plugin has no configuration")?;
        if config.enabled {
            update_stats(&task.kv(), |stats| {
                stats.background_runs += 1;
                stats.last_background_run = Some(plexichat::timestamp());
            })
            .await?;
        }
        if !task
            .sleep(std::time::Duration::from_secs(config.interval.into()))
            .await
        {
            return Ok(());
        }
    }
}

/// Proposed before every action: a plugin's pre-handler (`#[on_event(pre)]`) may rewrite the
/// note or refuse the action, which then does not happen and is not counted.
#[event(name = "awesome.action.requested", vetoable)]
#[derive(Clone, Debug)]
pub struct ActionRequested {
    /// The client's note (empty without one), as the pre-handlers so far left it.
    pub note: String,
}

/// Published after every successful action.
#[event(name = "awesome.action.completed")]
#[derive(Clone, Debug)]
pub struct ActionCompleted {
    /// The action's sequence number, starting at 1.
    pub action_number: u64,
    /// RFC 3339 time of the action.
    pub timestamp: String,
    /// The note, as the pre-handlers of `awesome.action.requested` accepted it.
    pub note: String,
}

/// The optional body of `POST /api/v1/awesome/action`.
#[payload(request)]
#[derive(Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// A note carried by the action's events.
    #[serde(default)]
    pub note: String,
}

/// `GET /api/v1/awesome/status`'s answer.
#[payload(response)]
#[derive(Debug)]
pub struct StatusReport {
    /// Always `"awesome"`.
    pub status: &'static str,
    /// Whether actions are accepted (`[plugins.my_awesome_plugin] enabled`).
    pub enabled: bool,
    /// What the plugin has done so far.
    pub stats: Stats,
    /// The plugin's configuration in effect.
    pub config: AwesomeConfig,
}

/// `POST /api/v1/awesome/action`'s answer.
#[payload(response)]
#[derive(Debug)]
pub struct ActionReport {
    /// Always `true`: a refused action is answered with an error instead.
    pub success: bool,
    /// A line for people.
    pub message: &'static str,
    /// RFC 3339 time of the action.
    pub timestamp: String,
    /// Actions performed so far, this one included.
    pub actions_performed: u64,
    /// The note as the pre-handlers of `awesome.action.requested` left it.
    pub note: String,
}

/// The plugin's statistics and configuration.
#[route(GET, "/status")]
async fn get_status(
    context: PluginContext<AwesomePlugin>,
    config: PluginConfig<AwesomePlugin>,
) -> Result<Json<StatusReport>, ApiError> {
    let stats = stats(&context.kv()).await?;
    Ok(Json(StatusReport {
        status: "awesome",
        enabled: config.enabled,
        stats,
        config: (*config).clone(),
    }))
}

/// Performs an awesome action: counts it and publishes `awesome.action.completed` (which
/// webhooks deliver).
///
/// The optional note is first proposed as `awesome.action.requested`, whose pre-handlers may
/// change it or refuse the action (403 naming the plugin and its reason; nothing is counted).
/// 400 when the plugin's `enabled` setting is off.
#[route(POST, "/action")]
async fn perform_action(
    context: PluginContext<AwesomePlugin>,
    config: PluginConfig<AwesomePlugin>,
    body: Option<Json<ActionBody>>,
) -> Result<Json<ActionReport>, ApiError> {
    if !config.enabled {
        return Err(ApiError::bad_request("Plugin is disabled"));
    }
    let mut request = ActionRequested {
        note: body.map(|Json(body)| body.note).unwrap_or_default(),
    };
    // A refusal is answered 403 naming the plugin and its reason, and nothing is counted.
    context.propose(&mut request).await?;
    let timestamp = plexichat::timestamp();
    let stats = update_stats(&context.kv(), |stats| {
        stats.actions_performed += 1;
        stats.last_action = Some(timestamp.clone());
    })
    .await?;
    let event = ActionCompleted {
        action_number: stats.actions_performed,
        timestamp,
        note: request.note,
    };
    // To the outbox for webhooks, then on the bus. The count lives in the key-value store,
    // not in a SQL transaction the event could share, so the event has its own.
    context
        .outbox()
        .emit(&event)
        .await
        .map_err(|error| ApiError::internal(error.to_string()))?;
    context.publish(&event).await;
    Ok(Json(ActionReport {
        success: true,
        message: "Awesome action performed!",
        timestamp: event.timestamp,
        actions_performed: stats.actions_performed,
        note: event.note,
    }))
}

#[on_event]
async fn on_startup(
    context: &PluginContext<AwesomePlugin>,
    _event: &Startup,
) -> Result<(), BoxError> {
    update_stats(&context.kv(), |stats| {
        stats.started_at = Some(plexichat::timestamp());
    })
    .await
    .map(drop)
}

/// Options of `plexichat awesome stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print the statistics as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Shows the stored statistics: actions performed, errors and background rounds.
///
/// Reads the plugin's key-value store in the configured database, so it works whether or
/// not a server is running on it.
#[plexichat::command(category = "awesome", name = "stats")]
async fn show_stats(
    context: CommandContext<AwesomePlugin>,
    args: StatsArgs,
) -> Result<(), BoxError> {
    let stats = stats(&context.kv()).await?;
    if args.json {
        println!("{}", plexichat::serde_json::to_string_pretty(&stats)?);
        return Ok(());
    }
    let or_never = |time: &Option<String>| time.clone().unwrap_or_else(|| "never".to_string());
    println!("actions performed: {}", stats.actions_performed);
    println!("last action: {}", or_never(&stats.last_action));
    println!("errors: {}", stats.errors);
    println!("server started: {}", or_never(&stats.started_at));
    println!("background rounds: {}", stats.background_runs);
    println!(
        "last background round: {}",
        or_never(&stats.last_background_run)
    );
    Ok(())
}

/// Resets the statistics to zero.
///
/// The counts are lost for good; `awesome_audit`'s log of past actions is kept. A server
/// running on the same database counts on from zero.
#[plexichat::command(
    category = "awesome",
    name = "reset-stats",
    dangerous = true,
    admin_only = true
)]
async fn reset_stats(context: CommandContext<AwesomePlugin>) -> Result<(), BoxError> {
    let existed = context.kv().delete(STATS).await?;
    println!(
        "{}",
        if existed {
            "statistics reset to zero"
        } else {
            "there were no statistics to reset"
        }
    );
    Ok(())
}

/// Performs an action on a running server, as `POST /api/v1/awesome/action` does.
///
/// Needs `--server URL`; prints the server's answer, including the new count.
#[plexichat::command(category = "awesome", name = "action", server = true)]
async fn remote_action(context: CommandContext<AwesomePlugin>) -> Result<(), BoxError> {
    let response = context
        .server()?
        .post("/api/v1/awesome/action")
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("the server answered {status}: {body}").into());
    }
    println!(
        "action performed; {} so far",
        body["actions_performed"].as_u64().unwrap_or_default()
    );
    Ok(())
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
        assert_eq!(body["actions_performed"], 1);
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

    #[tokio::test]
    async fn the_tests_it_ships_pass_on_a_fresh_server() {
        let app = TestApp::linked().await;
        let runs = app.plugin_tests("my_awesome_plugin").await;
        assert!(runs.len() >= 2, "{runs:?}");
        for run in runs {
            assert_eq!(run.status, plexichat::tests::RunStatus::Passed, "{run:?}");
        }
    }
}
