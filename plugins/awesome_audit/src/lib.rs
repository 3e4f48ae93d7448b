//! `awesome_audit`: depends on `my_awesome_plugin`, screens its proposed actions
//! (`awesome.action.requested`: trims the note, refuses configured words), records each
//! `awesome.action.completed` in its own table (`awesome_audit_events`, created by its
//! migration), and shows what it received at `GET /api/v1/awesome-audit/events`.

use my_awesome_plugin::{ActionCompleted, ActionRequested, AwesomePlugin};
use plexichat::Event;
use plexichat::prelude::*;
use plexichat::sqlx::{self, Row};

mod self_tests;

/// How many of the latest events the listing shows; the total counts all of them.
const LISTED: i64 = 1000;

/// Audits awesome actions: keeps the latest awesome.action.completed events it received.
#[plugin(
    author = "PlexiChat",
    type = monitoring,
    dependencies = [AwesomePlugin],
    permissions = ["database"],
    migrations = "migrations",
    config = AuditConfig,
    tags = ["audit", "example"],
)]
#[derive(Default)]
pub struct AwesomeAudit;

/// `[plugins.awesome_audit]`: what a requested awesome action's note may not contain.
#[config]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditConfig {
    /// Words (matched case-insensitively anywhere in the note) that make the audit refuse a
    /// requested action; the client gets 403 naming this plugin.
    pub refused_words: Vec<String>,
}

/// Screens every requested awesome action before it happens: trims its note, and refuses
/// one whose note contains a word of `refused_words`.
#[on_event(pre, priority = 10)]
fn screen_action(
    context: &PluginContext<AwesomeAudit>,
    request: &mut ActionRequested,
) -> Result<(), String> {
    request.note = request.note.trim().to_string();
    let config = context.config::<AwesomeAudit>().unwrap_or_default();
    let note = request.note.to_lowercase();
    match config
        .refused_words
        .iter()
        .find(|word| !word.is_empty() && note.contains(&word.to_lowercase()))
    {
        Some(word) => Err(format!("the note contains the refused word `{word}`")),
        None => Ok(()),
    }
}

/// One event as the audit log recorded it.
#[payload(response)]
#[derive(Clone, Debug)]
pub struct Received {
    /// The event's name.
    pub event: String,
    /// The event as JSON, exactly as published.
    pub payload: Value,
    /// RFC 3339 time of receipt.
    pub received_at: String,
}

#[on_event(priority = 10)]
async fn record_action(
    context: &PluginContext<AwesomeAudit>,
    event: &ActionCompleted,
) -> Result<(), BoxError> {
    let payload = plexichat::serde_json::to_string(event)?;
    sqlx::query(
        "INSERT INTO awesome_audit_events (event, payload, received_at) VALUES ($1, $2, $3)",
    )
    .bind(ActionCompleted::NAME)
    .bind(payload)
    .bind(plexichat::timestamp())
    .execute(context.db().pool())
    .await?;
    Ok(())
}

/// The total and the latest events, oldest first.
async fn received(context: &PluginContext<AwesomeAudit>) -> Result<(i64, Vec<Received>), BoxError> {
    let db = context.db();
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM awesome_audit_events")
        .fetch_one(db.pool())
        .await?
        .try_get(0)?;
    let rows = sqlx::query(
        "SELECT event, payload, received_at FROM awesome_audit_events ORDER BY id DESC LIMIT $1",
    )
    .bind(LISTED)
    .fetch_all(db.pool())
    .await?;
    let mut events = rows
        .iter()
        .map(|row| -> Result<Received, BoxError> {
            let payload: String = row.try_get("payload")?;
            Ok(Received {
                event: row.try_get("event")?,
                payload: plexichat::serde_json::from_str(&payload)?,
                received_at: row.try_get("received_at")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    events.reverse();
    Ok((total, events))
}

/// `GET /api/v1/awesome-audit/events`' answer.
#[payload(response)]
#[derive(Debug)]
pub struct EventLog {
    /// Events recorded since the table was created.
    pub total: i64,
    /// The latest events kept, oldest first.
    pub events: Vec<Received>,
}

/// The latest recorded `awesome.action.completed` events, oldest first, and how many were
/// recorded in all.
#[route(GET, "/events")]
async fn list_events(context: PluginContext<AwesomeAudit>) -> Result<Json<EventLog>, ApiError> {
    let (total, events) = received(&context).await?;
    Ok(Json(EventLog { total, events }))
}

/// Options of `plexichat audit events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// How many of the latest events to show.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: i64,
    /// Print the events as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Shows the latest recorded `awesome.action.completed` events, oldest first.
///
/// Reads the audit table in the configured database, so it works whether or not a server
/// is running on it.
#[plexichat::command(category = "audit", name = "events")]
async fn show_events(
    context: CommandContext<AwesomeAudit>,
    args: EventsArgs,
) -> Result<(), BoxError> {
    let (total, mut events) = received(&context).await?;
    let skip = events
        .len()
        .saturating_sub(usize::try_from(args.limit).unwrap_or(0));
    events.drain(..skip);
    if args.json {
        let body = json!({ "total": total, "events": events });
        println!("{}", plexichat::serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    println!("{total} events recorded; the latest {}:", events.len());
    for event in &events {
        println!("{}  {}  {}", event.received_at, event.event, event.payload);
    }
    Ok(())
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

    #[tokio::test]
    async fn requested_actions_are_trimmed_and_refused_words_stop_them() {
        let app = TestApp::builder()
            .plugin_config::<AwesomeAudit>(AuditConfig {
                refused_words: vec!["forbidden".to_string()],
            })
            .start()
            .await;
        let (status, body) = app
            .post("/api/v1/awesome/action", json!({ "note": " fine " }))
            .await;
        assert_eq!((status, &body["note"]), (StatusCode::OK, &json!("fine")));
        let (status, body) = app
            .post(
                "/api/v1/awesome/action",
                json!({ "note": "a FORBIDDEN note" }),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["rejected_by"], "awesome_audit");
        let (_, body) = app.get("/api/v1/awesome-audit/events").await;
        assert_eq!(body["total"], 1, "the refused action never completed");
    }
}
