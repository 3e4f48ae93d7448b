//! The test manager's REST API as scripts use it: the seed's shapes with the admin token,
//! every bad input a 4xx naming its field, history and statistics in the database, schedules
//! that fire and survive a restart, and live updates over Server-Sent Events.

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::BodyExt;
use plexichat::serde_json::{Value, json};
use plexichat::sqlx;
use plexichat::testing::{ENGINE_VAR, TestApp, fresh_dir, fresh_postgres_database};
use plexichat::{Registry, Secret};
use plexichat_kernel::config::Config;
use plexichat_kernel::config::database::DatabaseUrl;
use plexichat_kernel::runtime::Runtime;
use plexichat_kernel::storage::{Database, Storage};
use plexichat_web::ServerOptions;

// Links the plugin, whose registrations are what the tests serve.
use test_manager as _;

const TOKEN: &str = "test-manager-token-0123456789-0123456789";

/// Where a test's servers keep their data: a folder, and the database, which is a SQLite file
/// in it, or a fresh PostgreSQL database when `PLEXICHAT_TEST_ENGINE=postgres` (as `cargo
/// xtask test` runs the plugins' tests a second time). A second server on the same place sees
/// what the first one stored.
struct Place {
    dir: PathBuf,
    postgres: Option<DatabaseUrl>,
}

async fn place(what: &str) -> Place {
    let postgres = match std::env::var(ENGINE_VAR).as_deref() {
        Ok("postgres") => {
            let database = fresh_postgres_database().await;
            let url = database.url().clone();
            database.close().await;
            Some(url)
        }
        _ => None,
    };
    Place {
        dir: fresh_dir(what),
        postgres,
    }
}

/// A started server on `place`, with the admin token.
async fn server(place: &Place) -> (TestApp, Database) {
    let registry = Registry::linked().unwrap();
    let mut config = Config::defaults(&registry);
    config.data.dir = place.dir.clone();
    std::fs::create_dir_all(&place.dir).unwrap();
    let storage = match &place.postgres {
        Some(url) => Storage::new(Database::open(url).await.unwrap(), &place.dir),
        None => Storage::open(&config.data).await.unwrap(),
    };
    let database = storage.database().clone();
    let runtime = Runtime::with_storage(registry, config, None, storage);
    runtime.migrate().await.unwrap();
    let options = ServerOptions {
        admin_token: Some(Secret::new(TOKEN)),
        ..ServerOptions::default()
    };
    let app = TestApp::with_options(runtime, &options);
    assert!(app.runtime.start().await.is_empty());
    (app, database)
}

async fn stop((app, database): (TestApp, Database)) {
    app.runtime.shutdown().await;
    database.shut_down().await;
    database.close().await;
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let (status, body) = app.request("POST", path).admin().json(&body).send().await;
    (status.as_u16(), body)
}

#[tokio::test]
async fn the_seed_curl_examples_work_with_the_token() {
    let place = place("test-manager-seed").await;
    let server = server(&place).await;
    let app = &server.0;

    // curl -X POST http://localhost:8000/tests/discover
    let (status, body) = app.post("/tests/discover", ()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plugins"][0]["plugin_name"], "test_manager");
    assert_eq!(body["total_tests"], 2);

    // curl -X POST .../tests/run -d '{"plugin_name": "file_manager"}', with the token.
    let (status, body) =
        admin_post(app, "/tests/run", json!({ "plugin_name": "test_manager" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for run in results {
        assert_eq!(run["status"], "passed", "{run}");
        assert_eq!(run["trigger"], "manual");
        assert!(run["id"].as_i64().unwrap() > 0, "stored: {run}");
    }

    // curl -X POST .../tests/schedule -d '{"plugin_name": ..., "test_name": ..., "schedule_expression": "daily", "priority": "high"}'
    let (status, body) = admin_post(
        app,
        "/tests/schedule",
        json!({
            "plugin_name": "test_manager",
            "test_name": "the_history_answers",
            "schedule_expression": "daily",
            "priority": "high",
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["priority"], "high");
    assert_eq!(body["next_runs"].as_array().unwrap().len(), 5);
    assert!(
        body["next_run_at"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00.000Z"),
        "{body}"
    );

    // The history and statistics reflect the runs.
    let (status, body) = app
        .get("/tests/results?plugin_name=test_manager&limit=10")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
    let (_, stats) = app.get("/tests/statistics").await;
    assert_eq!(stats["overall"]["runs"], 2);
    assert_eq!(stats["overall"]["success_rate"], 1.0);
    assert_eq!(stats["plugins"][0]["plugin_name"], "test_manager");
    assert_eq!(stats["tests"].as_array().unwrap().len(), 2);
    stop(server).await;
}

#[tokio::test]
async fn everything_that_runs_or_changes_needs_the_token() {
    let place = place("test-manager-auth").await;
    let server = server(&place).await;
    let app = &server.0;
    let run = json!({ "plugin_name": "test_manager" });
    for (path, body) in [
        ("/tests/run", run.clone()),
        ("/tests/bulk-run", json!(["test_manager"])),
        (
            "/tests/schedule",
            json!({ "plugin_name": "test_manager", "schedule_expression": "daily" }),
        ),
        ("/tests/schedule/1/pause", json!({})),
    ] {
        let (status, body) = app.post(path, body.clone()).await;
        assert_eq!(status, 401, "POST {path} without the token: {body}");
        let (status, _) = app
            .request("POST", path)
            .bearer("wrong-token")
            .json(&body)
            .send()
            .await;
        assert_eq!(status, 401, "POST {path} with a wrong token");
    }
    let (status, _) = app.request("DELETE", "/tests/schedule/1").send().await;
    assert_eq!(status, 401);
    // Reading is open.
    for path in ["/tests/results", "/tests/statistics", "/tests/schedules"] {
        assert_eq!(app.get(path).await.0, 200, "GET {path}");
    }
    let (_, results) = app.get("/tests/results").await;
    assert_eq!(results["results"], json!([]), "nothing ran");
    stop(server).await;
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_field() {
    let place = place("test-manager-input").await;
    let server = server(&place).await;
    let app = &server.0;
    let cases = [
        (
            "/tests/run",
            json!({ "plugin_name": "nope" }),
            "plugin_name",
        ),
        (
            "/tests/run",
            json!({ "plugin_name": "test_manager", "test_name": "nope" }),
            "test_name",
        ),
        (
            "/tests/run",
            json!({ "plugin_name": "test_manager", "priority": "urgent" }),
            "priority",
        ),
        (
            "/tests/run",
            json!({ "plugin_name": "test_manager", "timeout": 0 }),
            "timeout",
        ),
        (
            "/tests/bulk-run",
            json!(["test_manager", "nope"]),
            "plugin_names",
        ),
        ("/tests/bulk-run", json!([]), "plugin_names"),
        (
            "/tests/schedule",
            json!({ "plugin_name": "test_manager", "schedule_expression": "daily", "timezone": "Mars/Olympus" }),
            "timezone",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = admin_post(app, path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["field"], field, "{path} {body}: {answer}");
    }
    // The strings the Python version silently turned into "hourly".
    for expression in [
        "every_0_minutes",
        "every_5_weeks",
        "twice a day",
        "*/5 * * *",
        "",
    ] {
        let (status, answer) = admin_post(
            app,
            "/tests/schedule",
            json!({ "plugin_name": "test_manager", "schedule_expression": expression }),
        )
        .await;
        assert_eq!(status, 400, "`{expression}`: {answer}");
        assert_eq!(answer["field"], "schedule_expression");
        let (status, _) = app
            .get(&format!(
                "/tests/schedule/preview?schedule_expression={}",
                expression
                    .replace(' ', "%20")
                    .replace('*', "%2A")
                    .replace('/', "%2F")
            ))
            .await;
        assert_eq!(status, 400, "preview of `{expression}`");
    }
    // Malformed JSON and unknown fields.
    let (status, answer) = app
        .request("POST", "/tests/run")
        .admin()
        .header("content-type", "application/json")
        .body(plexichat::testing::TestBody::raw(
            Some("application/json"),
            "{\"plugin_name\": ",
        ))
        .send()
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = admin_post(app, "/tests/run", json!({ "plugin": "test_manager" })).await;
    assert_eq!(status, 400, "{answer}");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("status=sideways", "status"),
        ("plugin_name=nope", "plugin_name"),
    ] {
        let (status, answer) = app.get(&format!("/tests/results?{query}")).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["field"], field, "{query}: {answer}");
    }
    let (status, _) = app.get("/tests/results?limit=1000").await;
    assert_eq!(status, 200);
    let (status, answer) = app
        .request("DELETE", "/tests/schedule/999")
        .admin()
        .send()
        .await;
    assert_eq!(status, 404, "{answer}");
    stop(server).await;
}

#[tokio::test]
async fn schedules_pause_resume_delete_and_survive_a_restart() {
    let place = place("test-manager-restart").await;
    let server_one = server(&place).await;
    let (status, created) = admin_post(
        &server_one.0,
        "/tests/schedule",
        json!({
            "plugin_name": "test_manager",
            "schedule_expression": "0 9 * * 1-5",
            "timezone": "Europe/Paris",
            "priority": "critical",
            "timeout": 30,
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["test_name"],
        Value::Null,
        "all of the plugin's tests"
    );
    let path = |action: &str| format!("/tests/schedule/{id}/{action}");
    let (status, paused) = admin_post(&server_one.0, &path("pause"), json!({})).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        (paused["enabled"].clone(), paused["next_run_at"].clone()),
        (json!(false), Value::Null)
    );
    let (_, resumed) = admin_post(&server_one.0, &path("resume"), json!({})).await;
    assert_eq!(resumed["enabled"], true);
    assert_eq!(resumed["next_run_at"], created["next_run_at"]);
    let (status, other) = admin_post(
        &server_one.0,
        "/tests/schedule",
        json!({ "plugin_name": "test_manager", "schedule_expression": "every_2_hours", "enabled": false }),
    )
    .await;
    assert_eq!(status, 201);
    let (_, before) = server_one.0.get("/tests/schedules").await;
    stop(server_one).await;

    let server_two = server(&place).await;
    let (_, after) = server_two.0.get("/tests/schedules").await;
    assert_eq!(
        after, before,
        "schedules and their next runs survive the restart"
    );
    let (status, _) = server_two
        .0
        .request("DELETE", &format!("/tests/schedule/{}", other["id"]))
        .admin()
        .send()
        .await;
    assert_eq!(status, 204);
    let (_, listed) = server_two.0.get("/tests/schedules").await;
    assert_eq!(listed["schedules"].as_array().unwrap().len(), 1);
    assert_eq!(listed["schedules"][0]["id"], id);
    stop(server_two).await;
}

#[tokio::test]
async fn a_due_schedule_runs_its_tests_and_records_them() {
    let place = place("test-manager-due").await;
    let server = server(&place).await;
    let app = &server.0;
    let created = due_schedule(app, &server.1).await;
    // Creating a schedule wakes the scheduler.
    admin_post(
        app,
        "/tests/schedule",
        json!({ "plugin_name": "test_manager", "schedule_expression": "daily", "enabled": false }),
    )
    .await;
    let mut found = Value::Null;
    for _ in 0..200 {
        let (_, body) = app.get("/tests/results?status=passed").await;
        if let Some(run) = body["results"].as_array().and_then(|runs| runs.first()) {
            found = run.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found["trigger"], "schedule", "{found}");
    assert_eq!(found["schedule_id"], created["id"]);
    let (_, listed) = app.get("/tests/schedules").await;
    let schedule = &listed["schedules"][0];
    assert!(schedule["last_run_at"].is_string(), "{schedule}");
    assert!(schedule["next_run_at"].as_str() > Some(found["started_at"].as_str().unwrap()));
    stop(server).await;
}

#[tokio::test]
async fn two_servers_on_one_database_run_a_due_schedule_once() {
    let place = place("test-manager-claim").await;
    let one = server(&place).await;
    let two = server(&place).await;
    due_schedule(&one.0, &one.1).await;
    // Wake both schedulers at once.
    let wake =
        json!({ "plugin_name": "test_manager", "schedule_expression": "daily", "enabled": false });
    tokio::join!(
        admin_post(&one.0, "/tests/schedule", wake.clone()),
        admin_post(&two.0, "/tests/schedule", wake.clone()),
    );
    let mut runs = Vec::new();
    for _ in 0..100 {
        let (_, body) = one.0.get("/tests/results").await;
        runs = body["results"].as_array().cloned().unwrap_or_default();
        if !runs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both had time to see it due.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, body) = one.0.get("/tests/results").await;
    let scheduled: Vec<&Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| run["trigger"] == "schedule")
        .collect();
    assert_eq!(scheduled.len(), 1, "{body}");
    assert!(!runs.is_empty());
    stop(two).await;
    stop(one).await;
}

/// Schedules one of the test manager's own tests hourly, then makes it due now, as if an
/// hour had passed; returns the created schedule.
async fn due_schedule(app: &TestApp, database: &Database) -> Value {
    let (status, created) = admin_post(
        app,
        "/tests/schedule",
        json!({ "plugin_name": "test_manager", "test_name": "the_schedule_grammar_refuses_what_it_cannot_run", "schedule_expression": "every_1_hours" }),
    )
    .await;
    assert_eq!(status, 201);
    sqlx::query("UPDATE test_manager_schedules SET next_run_ms = $1 WHERE id = $2")
        .bind(jiff_now_ms())
        .bind(created["id"].as_i64().unwrap())
        .execute(database.pool())
        .await
        .unwrap();
    created
}

fn jiff_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn live_updates_stream_queued_started_and_finished_runs() {
    let place = place("test-manager-sse").await;
    let server = server(&place).await;
    let app = &server.0;
    let response = app.request("GET", "/tests/live-updates").send_raw().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut text = String::new();
    let mut read_until = async |needle: &str, text: &mut String| {
        while !text.contains(needle) {
            let frame = tokio::time::timeout(Duration::from_secs(20), body.frame())
                .await
                .expect("an event within 20 s")
                .expect("the stream stays open")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
    };
    read_until("event: hello", &mut text).await;
    let (status, _) = admin_post(
        app,
        "/tests/run",
        json!({ "plugin_name": "test_manager", "test_name": "the_history_answers", "wait": false }),
    )
    .await;
    assert_eq!(status, 202);
    read_until("event: finished", &mut text).await;
    assert!(text.contains("event: queued"), "{text}");
    assert!(text.contains("event: started"), "{text}");
    let finished = text.split("event: finished\ndata: ").nth(1).unwrap();
    let data: Value = plexichat::serde_json::from_str(finished.lines().next().unwrap()).unwrap();
    assert_eq!(data["run"]["test_name"], "the_history_answers");
    assert_eq!(data["run"]["status"], "passed");
    stop(server).await;
}

#[tokio::test]
async fn the_tests_it_ships_pass_on_a_fresh_server() {
    let app = TestApp::linked().await;
    let runs = app.plugin_tests("test_manager").await;
    assert!(runs.len() >= 2, "{runs:?}");
    for run in runs {
        assert_eq!(run.status, plexichat::tests::RunStatus::Passed, "{run:?}");
    }
}

#[tokio::test]
async fn lists_and_fan_outs_are_bounded() {
    let place = place("test-manager-bounds").await;
    let server = server(&place).await;
    let app = &server.0;
    let mut created = Vec::new();
    for minutes in 1..=7 {
        let (status, body) = admin_post(
            app,
            "/tests/schedule",
            json!({ "plugin_name": "test_manager", "schedule_expression": format!("every_{minutes}_minutes"), "enabled": false }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        created.push(body["id"].as_i64().unwrap());
    }
    // Schedules a page at a time: each id once, in order, the last page without a next.
    let mut listed = Vec::new();
    let mut path = "/tests/schedules?limit=3".to_string();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let schedules = page["schedules"].as_array().unwrap();
        assert!(schedules.len() <= 3, "{page}");
        listed.extend(schedules.iter().map(|s| s["id"].as_i64().unwrap()));
        match page["next_after"].as_i64() {
            Some(after) => path = format!("/tests/schedules?limit=3&after={after}"),
            None => break,
        }
    }
    assert_eq!(listed, created);
    let (_, first) = app.get("/tests/schedules").await;
    assert_eq!(
        first["schedules"].as_array().unwrap().len(),
        7,
        "the default page holds 100"
    );
    for limit in ["0", "501", "-1"] {
        let (status, body) = app.get(&format!("/tests/schedules?limit={limit}")).await;
        assert_eq!(status, 400, "limit={limit}: {body}");
        assert_eq!(body["field"], "limit", "{body}");
    }

    // A plugin named many times has its tests run once.
    let names = vec!["test_manager"; 5000];
    let (status, body) = admin_post(app, "/tests/bulk-run", json!(names)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 2, "{body}");

    // A schedule that names no date that exists would never run.
    let (status, body) = admin_post(
        app,
        "/tests/schedule",
        json!({ "plugin_name": "test_manager", "schedule_expression": "0 0 30 2 *" }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "schedule_expression", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("never runs"),
        "{body}"
    );

    // Statistics follow new runs (computed once per change of the stored runs).
    let (_, before) = app.get("/tests/statistics").await;
    let (_, again) = app.get("/tests/statistics").await;
    assert_eq!(before, again);
    let (status, _) = admin_post(app, "/tests/run", json!({ "plugin_name": "test_manager" })).await;
    assert_eq!(status, 200);
    let (_, after) = app.get("/tests/statistics").await;
    assert_eq!(
        after["overall"]["runs"].as_u64().unwrap(),
        before["overall"]["runs"].as_u64().unwrap() + 2,
        "{after}"
    );
    stop(server).await;
}
