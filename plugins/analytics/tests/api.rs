//! Analytics as operators and plugin authors see it, on the engine `PLEXICHAT_TEST_ENGINE`
//! names: chat messages become daily rollups (messages per channel, active people), a
//! plugin's own records sum by dimension, queries name what is wrong with them, and only
//! operators read any of it.

use std::time::Duration;

use accounts::{Accounts, AccountsConfig};
use analytics::{Analytics, AnalyticsConfig};
use plexichat::http::StatusCode;
use plexichat::prelude::*;
use plexichat::serde_json::{Value, json};
use plexichat::testing::{TestApp, TestClient};

// The chat plugins, whose messages are counted, linked in.
use channels as _;

const ADMIN: &str = "analytics-test-admin-token-0123456789";

/// A plugin that records as any plugin would: `permissions = ["analytics"]`.
#[plugin(name = "shop", author = "Tests", permissions = ["analytics"])]
#[derive(Default)]
pub struct Shop;

/// Records a paid order of `cents` in `currency`, and one record with a bad name.
#[route(POST, "/orders")]
async fn order(context: PluginContext<Shop>, Json(body): Json<Value>) -> StatusCode {
    let analytics = context.analytics();
    let currency = body["currency"].as_str().unwrap_or("EUR");
    analytics.record_value(
        "order.paid",
        &[("currency", currency)],
        body["cents"].as_i64().unwrap_or(0),
    );
    analytics.record("Order Paid", &[]);
    StatusCode::NO_CONTENT
}

async fn app() -> TestApp {
    TestApp::builder()
        .admin_token(ADMIN)
        .plugin_config::<Accounts>(AccountsConfig {
            password_memory_kib: 1024,
            password_iterations: 1,
            ..AccountsConfig::default()
        })
        .plugin_config::<Analytics>(AnalyticsConfig {
            flush_seconds: 1,
            ..AnalyticsConfig::default()
        })
        .start()
        .await
}

async fn person(app: &TestClient, username: &str) -> String {
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            json!({ "username": username, "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn channel(app: &TestClient, token: &str, name: &str) -> i64 {
    let (status, channel) = app
        .request("POST", "/api/v1/channels")
        .bearer(token)
        .json(&json!({ "kind": "public", "name": name }))
        .send()
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    channel["id"].as_i64().unwrap()
}

async fn post(app: &TestClient, token: &str, channel: i64, text: &str) {
    let (status, message) = app
        .request("POST", &format!("/api/v1/channels/{channel}/messages"))
        .bearer(token)
        .json(&json!({ "body": text }))
        .send()
        .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
}

async fn as_admin(app: &TestClient, path: &str) -> (StatusCode, Value) {
    app.request("GET", path).admin().send().await
}

/// Asks `path` until `done` holds of the answer (records are written a second apart).
async fn eventually(app: &TestClient, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = as_admin(app, path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn today() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

#[tokio::test]
async fn messages_become_daily_counts_per_channel_and_active_people() {
    let app = app().await;
    let (ada, bob) = (person(&app, "ada").await, person(&app, "bob").await);
    let (general, random) = (
        channel(&app, &ada, "general").await,
        channel(&app, &bob, "random").await,
    );
    post(&app, &ada, general, "one").await;
    post(&app, &ada, general, "two").await;
    post(&app, &bob, random, "three").await;

    let summary = eventually(&app, "/api/v1/analytics/summary", |summary| {
        summary["days"]
            .as_array()
            .and_then(|days| days.last())
            .is_some_and(|day| day["messages"] == 3)
    })
    .await;
    let day = summary["days"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(day["day"], today(), "{summary}");
    assert_eq!(day["active_users"], 2, "{summary}");
    assert_eq!(
        summary["messages_by_channel"],
        json!([{ "key": general.to_string(), "total": 2 }, { "key": random.to_string(), "total": 1 }])
    );
    assert_eq!(summary["to"], today());
    assert!(
        summary["recording"]["queued"].as_u64().unwrap() >= 3,
        "{summary}"
    );
    assert_eq!(summary["recording"]["dropped_full"], 0, "{summary}");

    // The same rollups through the query, per person.
    let (status, body) = as_admin(
        &app,
        &format!(
            "/api/v1/analytics/query?plugin=channels&metric=chat.posters&from={day}&to={day}&group_by=user",
            day = today()
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut totals: Vec<i64> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["total"].as_i64().unwrap())
        .collect();
    totals.sort_unstable();
    assert_eq!(totals, [1, 2], "{body}");
}

#[tokio::test]
async fn a_plugins_records_sum_by_dimension_and_bad_names_are_refused() {
    let app = app().await;
    for (currency, cents) in [("EUR", 250), ("EUR", 100), ("USD", 999)] {
        let (status, _) = app
            .post(
                "/api/v1/shop/orders",
                json!({ "currency": currency, "cents": cents }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let path = format!(
        "/api/v1/analytics/query?plugin=shop&metric=order.paid&from={day}&to={day}&group_by=currency",
        day = today()
    );
    let body = eventually(&app, &path, |body| {
        body["rows"].as_array().is_some_and(|rows| rows.len() == 2)
    })
    .await;
    let day = today();
    assert_eq!(
        body["rows"],
        json!([
            { "day": day, "group": { "currency": "EUR" }, "count": 2, "total": 350 },
            { "day": day, "group": { "currency": "USD" }, "count": 1, "total": 999 },
        ])
    );
    let (_, summary) = as_admin(&app, "/api/v1/analytics/summary").await;
    assert_eq!(summary["recording"]["rejected"], 3, "{summary}");
}

#[tokio::test]
async fn bad_queries_name_the_field_and_only_operators_read() {
    let app = app().await;
    let day = today();
    for (query, field) in [
        (
            format!("plugin=channels&metric=Chat%20Messages&from={day}&to={day}"),
            "metric",
        ),
        (
            format!("plugin=channels&metric=chat.messages&from=yesterday&to={day}"),
            "from",
        ),
        (
            format!("plugin=channels&metric=chat.messages&from={day}&to=2000-01-01"),
            "from",
        ),
        (
            format!("plugin=channels&metric=chat.messages&from={day}&to={day}&group_by=User"),
            "group_by",
        ),
        (
            format!("metric=chat.messages&from={day}&to={day}"),
            "plugin",
        ),
    ] {
        let (status, problem) = as_admin(&app, &format!("/api/v1/analytics/query?{query}")).await;
        assert!(status.is_client_error(), "{query} → {status} {problem}");
        assert!(
            problem.to_string().contains(field),
            "{query}: should name `{field}`: {problem}"
        );
    }
    let (status, problem) = as_admin(&app, "/api/v1/analytics/summary?days=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem.to_string().contains("days"), "{problem}");

    let (status, _) = app.get("/api/v1/analytics/summary").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The first person to register is the server's admin; the second is not.
    let _first = person(&app, "first").await;
    let member = person(&app, "member").await;
    let (status, _) = app
        .request("GET", "/api/v1/analytics/summary")
        .bearer(&member)
        .send()
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
