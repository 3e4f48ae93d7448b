//! Tests that ship inside the binary (`#[plugin_test]`), read-only, so a schedule may run
//! them on a live server.

use my_awesome_plugin::{ActionCompleted, ActionRequested};
use plexichat::Event;
use plexichat::prelude::*;
use plexichat::sqlx::{self, Row};

use crate::{AwesomeAudit, screen_action};

/// The screening pre-handler trims a note and refuses one containing a configured word
/// (any case), naming the word; with no words configured it refuses nothing.
#[plugin_test(category = security, tags = ["screening"])]
fn screening_refuses_the_configured_words(
    context: &TestContext<AwesomeAudit>,
) -> Result<(), String> {
    let config = context.config::<AwesomeAudit>().unwrap_or_default();
    let mut request = ActionRequested {
        note: "  an ordinary note  ".to_string(),
    };
    let ordinary_refused = config
        .refused_words
        .iter()
        .any(|word| !word.is_empty() && "an ordinary note".contains(&word.to_lowercase()));
    match screen_action(context, &mut request) {
        Ok(()) if request.note == "an ordinary note" => {}
        Ok(()) => return Err(format!("the note was not trimmed: {:?}", request.note)),
        Err(_) if ordinary_refused => {}
        Err(reason) => return Err(format!("an ordinary note was refused: {reason}")),
    }
    for word in config.refused_words.iter().filter(|word| !word.is_empty()) {
        let mut request = ActionRequested {
            note: format!("before {} after", word.to_uppercase()),
        };
        match screen_action(context, &mut request) {
            Err(reason) if reason.contains(word.as_str()) => {}
            Err(reason) => return Err(format!("refused `{word}` without naming it: {reason}")),
            Ok(()) => return Err(format!("a note containing `{word}` was let through")),
        }
    }
    Ok(())
}

/// `GET /api/v1/awesome-audit/events` counts exactly the rows of the audit table and lists
/// only completed awesome actions, oldest first.
#[plugin_test(timeout = "10s", tags = ["api"], category = integration)]
async fn the_event_listing_matches_the_table(
    context: &TestContext<AwesomeAudit>,
) -> Result<(), String> {
    let before: i64 = sqlx::query("SELECT COUNT(*) FROM awesome_audit_events")
        .fetch_one(context.db().pool())
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|error| error.to_string())?;
    let (status, body) = context.app().get("/api/v1/awesome-audit/events").await;
    if status != StatusCode::OK {
        return Err(format!(
            "GET /api/v1/awesome-audit/events answered {status}: {body}"
        ));
    }
    let total = body["total"].as_i64().ok_or("`total` is not a number")?;
    // Actions may be recorded meanwhile: the listing's total can only have grown.
    if total < before {
        return Err(format!(
            "the listing counts {total} events, the table had {before}"
        ));
    }
    let events = body["events"].as_array().ok_or("`events` is not a list")?;
    if i64::try_from(events.len()).unwrap_or(i64::MAX) > total {
        return Err(format!(
            "{} events listed but a total of {total}",
            events.len()
        ));
    }
    let mut previous = "";
    for event in events {
        if event["event"] != ActionCompleted::NAME {
            return Err(format!(
                "an event that is not {}: {event}",
                ActionCompleted::NAME
            ));
        }
        let received = event["received_at"].as_str().unwrap_or("");
        if received < previous {
            return Err(format!("events out of order: {received} after {previous}"));
        }
        previous = received;
    }
    Ok(())
}
