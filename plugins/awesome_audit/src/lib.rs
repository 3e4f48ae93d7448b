//! `awesome_audit`: depends on `my_awesome_plugin`, handles its `awesome.action.completed`
//! event, and shows what it received at `GET /api/v1/awesome-audit/events`.

use std::collections::VecDeque;
use std::sync::Mutex;

use my_awesome_plugin::{ActionCompleted, AwesomePlugin};
use plexichat::Event;
use plexichat::prelude::*;

/// How many events the audit log keeps; older ones are dropped, the total still counts them.
const CAPACITY: usize = 1000;

/// Audits awesome actions: keeps the latest awesome.action.completed events it received.
#[plugin(
    author = "PlexiChat",
    type = monitoring,
    dependencies = [AwesomePlugin],
    permissions = ["plugin:read"],
    tags = ["audit", "example"],
)]
#[derive(Default)]
pub struct AwesomeAudit {
    log: Mutex<AuditLog>,
}

#[derive(Default)]
struct AuditLog {
    total: u64,
    recent: VecDeque<Received>,
}

/// One event as the audit log recorded it.
#[payload(response)]
#[derive(Clone, Debug)]
pub struct Received {
    /// The event's name.
    pub event: &'static str,
    /// The event as JSON, exactly as published.
    pub payload: Value,
    /// RFC 3339 time of receipt.
    pub received_at: String,
}

#[on_event(priority = 10)]
fn record_action(audit: &AwesomeAudit, event: &ActionCompleted) -> Result<(), String> {
    let payload = plexichat::serde_json::to_value(event).map_err(|error| error.to_string())?;
    let mut log = audit
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    log.total += 1;
    if log.recent.len() == CAPACITY {
        log.recent.pop_front();
    }
    log.recent.push_back(Received {
        event: ActionCompleted::NAME,
        payload,
        received_at: plexichat::timestamp(),
    });
    Ok(())
}

#[route(GET, "/events")]
async fn list_events(audit: PluginState<AwesomeAudit>) -> Json<Value> {
    let log = audit
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Json(json!({
        "total": log.total,
        "events": log.recent,
    }))
}

#[cfg(test)]
mod tests {
    use plexichat::testing::TestApp;

    use super::*;

    #[tokio::test]
    async fn actions_reach_the_audit_log_across_crates() {
        let app = TestApp::linked().await;
        let (_, body) = app.get("/api/v1/awesome-audit/events").await;
        assert_eq!(body["total"], 0);

        for _ in 0..2 {
            let (status, _) = app.post("/api/v1/awesome/action", ()).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, body) = app.get("/api/v1/awesome-audit/events").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["total"], 2);
        assert_eq!(body["events"][0]["event"], "awesome.action.completed");
        assert_eq!(body["events"][1]["payload"]["action_number"], 2);
    }
}
