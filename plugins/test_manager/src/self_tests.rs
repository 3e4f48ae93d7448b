//! Tests that ship inside the binary (`#[plugin_test]`): the test manager checks its own
//! history and schedule grammar on the running server, changing nothing.

use plexichat::prelude::*;

use crate::TestManager;
use crate::schedule::Schedule;

/// The history answers: `GET /tests/results` lists stored runs newest first and refuses a
/// limit outside 1..=1000 naming the field.
#[plugin_test(timeout = "10s", tags = ["api"], category = integration)]
async fn the_history_answers(context: &TestContext<TestManager>) -> Result<(), String> {
    let (status, body) = context.app().get("/tests/results?limit=5").await;
    if status != StatusCode::OK {
        return Err(format!("GET /tests/results answered {status}: {body}"));
    }
    let results = body["results"]
        .as_array()
        .ok_or("`results` is not a list")?;
    let times: Vec<&str> = results
        .iter()
        .filter_map(|run| run["started_at"].as_str())
        .collect();
    if times.windows(2).any(|pair| pair[0] < pair[1]) {
        return Err(format!("results are not newest first: {times:?}"));
    }
    let (status, body) = context.app().get("/tests/results?limit=0").await;
    if status != StatusCode::BAD_REQUEST || body["field"] != "limit" {
        return Err(format!("limit=0 answered {status}: {body}"));
    }
    Ok(())
}

/// The schedule grammar accepts the seed's words and cron and refuses what the Python
/// version silently turned into "hourly".
#[plugin_test(category = functionality, tags = ["schedules"])]
fn the_schedule_grammar_refuses_what_it_cannot_run() -> Result<(), String> {
    for accepted in [
        "hourly",
        "daily",
        "weekly",
        "every_30_minutes",
        "*/5 * * * *",
    ] {
        Schedule::parse(accepted, None)
            .map_err(|error| format!("`{accepted}` refused: {error}"))?;
    }
    for refused in [
        "every_0_minutes",
        "every_5_weeks",
        "twice a day",
        "*/5 * * *",
        "",
    ] {
        if Schedule::parse(refused, None).is_ok() {
            return Err(format!("`{refused}` was accepted"));
        }
    }
    Ok(())
}
