//! Webhooks as operators and receivers see them, on the engine `PLEXICHAT_TEST_ENGINE` names:
//! every delivery checked by PyPI's `standardwebhooks` (the specification's reference
//! library) in a receiver on loopback; retries, `Retry-After`, disabling, rotation, the
//! delivery log, replay, ping, address checks; incoming hooks.

mod support;

use std::time::Duration;

use accounts::{Accounts, AccountsConfig};
use plexichat::http::StatusCode;
use plexichat::serde_json::{Value, json};
use plexichat::testing::{TestApp, TestClient};
use support::Receiver;
use webhooks::{Webhooks, WebhooksConfig};

const ADMIN: &str = "webhooks-test-admin-token-0123456789";

/// Fast retries, loopback allowed.
fn config() -> WebhooksConfig {
    WebhooksConfig {
        allow_addresses: vec!["127.0.0.1".into()],
        timeout_seconds: 3,
        retry_base_seconds: 1,
        retry_max_seconds: 2,
        max_attempts: 4,
        ..WebhooksConfig::default()
    }
}

async fn app_with(config: WebhooksConfig) -> TestApp {
    TestApp::builder()
        .admin_token(ADMIN)
        .plugin_config::<Accounts>(AccountsConfig {
            password_memory_kib: 1024,
            password_iterations: 1,
            ..AccountsConfig::default()
        })
        .plugin_config::<Webhooks>(config)
        .start()
        .await
}

struct Person {
    id: i64,
    token: String,
}

async fn person(app: &TestClient, username: &str) -> Person {
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            json!({ "username": username, "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let (_, me) = app
        .request("GET", "/api/v1/users/me")
        .bearer(&token)
        .send()
        .await;
    Person {
        id: me["id"].as_i64().unwrap(),
        token,
    }
}

async fn as_person(
    app: &TestClient,
    who: &Person,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.request(method, path)
        .bearer(&who.token)
        .json(&body)
        .send()
        .await
}

async fn as_admin(app: &TestClient, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.request(method, path).admin().json(&body).send().await
}

/// Registers an endpoint at `url` taking `types`; answers its id and secret.
async fn endpoint(app: &TestClient, url: &str, types: Value) -> (i64, String) {
    let (status, body) = as_admin(
        app,
        "POST",
        "/api/v1/webhooks",
        json!({ "url": url, "description": "test receiver", "event_types": types }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_i64().unwrap(),
        body["secret"].as_str().unwrap().to_string(),
    )
}

async fn channel_with_message(app: &TestClient, who: &Person, name: &str, text: &str) -> i64 {
    let (status, channel) = as_person(
        app,
        who,
        "POST",
        "/api/v1/channels",
        json!({ "kind": "public", "name": name }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let id = channel["id"].as_i64().unwrap();
    let (status, message) = as_person(
        app,
        who,
        "POST",
        &format!("/api/v1/channels/{id}/messages"),
        json!({ "body": text }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    id
}

/// The endpoint's deliveries, waiting (up to `seconds`) until `done` holds for them.
async fn deliveries_until(
    app: &TestClient,
    endpoint: i64,
    seconds: u64,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let (status, page) = as_admin(
            app,
            "GET",
            &format!("/api/v1/webhooks/{endpoint}/deliveries"),
            Value::Null,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let deliveries = page["deliveries"].as_array().unwrap().clone();
        if done(&deliveries) || std::time::Instant::now() > deadline {
            return deliveries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn body_of(received: &Value) -> Value {
    plexichat::serde_json::from_str(received["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn chat_events_arrive_signed_so_the_reference_library_verifies_them() {
    let receiver = Receiver::start();
    let app = app_with(config()).await;
    let (chat, chat_secret) =
        endpoint(&app, &receiver.url("/chat"), json!(["channels.event"])).await;
    let (_, all_secret) = endpoint(&app, &receiver.url("/all"), json!([])).await;
    receiver.secrets("/chat", &[&chat_secret]).await;
    receiver.secrets("/all", &[&all_secret, &chat_secret]).await;
    let ada = person(&app, "ada").await;
    let channel = channel_with_message(&app, &ada, "general", "hello hooks").await;

    let received = receiver.wait_for("/chat", 2, 20).await;
    assert_eq!(
        received.len(),
        2,
        "channel.created and message.created: {received:?}"
    );
    let kinds: Vec<Value> = received
        .iter()
        .map(|entry| body_of(entry)["data"]["kind"].clone())
        .collect();
    assert!(kinds.contains(&json!("channel.created")), "{kinds:?}");
    assert!(kinds.contains(&json!("message.created")), "{kinds:?}");
    for entry in &received {
        assert_eq!(entry["verified"], json!([true]), "{entry}");
        let body = body_of(entry);
        assert_eq!(body["type"], "channels.event");
        assert_eq!(body["data"]["channel_id"], channel);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
        let id = entry["headers"]["webhook-id"].as_str().unwrap();
        assert!(id.starts_with("evt_"), "{id}");
    }
    let message = received
        .iter()
        .map(body_of)
        .find(|body| body["data"]["kind"] == "message.created")
        .unwrap();
    assert_eq!(message["data"]["data"]["body"], "hello hooks");
    assert_eq!(message["data"]["data"]["author_id"], ada.id);

    // The endpoint without a filter gets the same events, each verifying with its own secret
    // and not with another endpoint's.
    let all = receiver.wait_for("/all", 2, 20).await;
    assert_eq!(all.len(), 2, "{all:?}");
    for entry in &all {
        assert_eq!(entry["verified"][0], true, "{entry}");
        assert_ne!(
            entry["verified"][1], true,
            "another endpoint's secret: {entry}"
        );
    }
    // The log says so.
    let log = deliveries_until(&app, chat, 10, |deliveries| {
        deliveries.len() == 2 && deliveries.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    for delivery in &log {
        assert_eq!(delivery["status"], "succeeded", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["response_status"], 200);
        assert_eq!(delivery["response"], "ok");
        assert_eq!(delivery["event_type"], "channels.event");
        assert!(delivery["latency_ms"].as_i64().is_some());
    }
}

#[tokio::test]
async fn failures_are_retried_with_backoff_and_retry_after_until_they_succeed() {
    let receiver = Receiver::start();
    let app = app_with(config()).await;
    let (id, secret) = endpoint(&app, &receiver.url("/flaky"), json!(["channels.event"])).await;
    receiver.secrets("/flaky", &[&secret]).await;
    receiver
        .script(
            "/flaky",
            json!([
                { "status": 503 },
                { "status": 429, "retry_after": "2" },
                { "status": 200 },
            ]),
        )
        .await;
    let ada = person(&app, "ada").await;
    let (status, _) = as_person(
        &app,
        &ada,
        "POST",
        "/api/v1/channels",
        json!({ "kind": "public", "name": "retries" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let received = receiver.wait_for("/flaky", 3, 30).await;
    assert_eq!(received.len(), 3, "{received:?}");
    let ids: Vec<&Value> = received
        .iter()
        .map(|entry| &entry["headers"]["webhook-id"])
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one message id: {ids:?}"
    );
    assert!(
        received
            .iter()
            .all(|entry| entry["verified"] == json!([true]))
    );
    // After the 429 the next attempt waited for its Retry-After (2 s), longer than the
    // backoff (at most 2 s here, and at least half of 2 s for the second retry).
    let after_throttle =
        received[2]["received_at"].as_f64().unwrap() - received[1]["received_at"].as_f64().unwrap();
    assert!(after_throttle >= 1.9, "{after_throttle}");

    let deliveries = deliveries_until(&app, id, 10, |deliveries| {
        deliveries
            .first()
            .is_some_and(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!(deliveries[0]["attempts"], 3, "{deliveries:?}");
    let delivery = deliveries[0]["id"].as_i64().unwrap();
    let (status, detail) = as_admin(
        &app,
        "GET",
        &format!("/api/v1/webhooks/{id}/deliveries/{delivery}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let outcomes: Vec<(&Value, &Value)> = detail["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| (&attempt["status_code"], &attempt["outcome"]))
        .collect();
    assert_eq!(
        outcomes,
        [
            (&json!(503), &json!("retrying")),
            (&json!(429), &json!("retrying")),
            (&json!(200), &json!("succeeded")),
        ]
    );
    assert_eq!(detail["payload"]["type"], "channels.event");
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_stops_and_a_4xx_is_not_retried() {
    let receiver = Receiver::start();
    let app = app_with(WebhooksConfig {
        max_attempts: 2,
        ..config()
    })
    .await;
    let (down, _) = endpoint(&app, &receiver.url("/down"), json!(["channels.event"])).await;
    let (refuses, _) = endpoint(&app, &receiver.url("/refuses"), json!(["channels.event"])).await;
    receiver.script("/down", json!([{ "status": 500 }])).await;
    receiver
        .script(
            "/refuses",
            json!([{ "status": 400, "body": "bad signature" }]),
        )
        .await;
    let ada = person(&app, "ada").await;
    as_person(
        &app,
        &ada,
        "POST",
        "/api/v1/channels",
        json!({ "kind": "public", "name": "failing" }),
    )
    .await;
    let failed = deliveries_until(&app, down, 20, |d| {
        d.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(failed[0]["status"], "failed", "{failed:?}");
    assert_eq!(failed[0]["attempts"], 2, "max_attempts");
    assert_eq!(failed[0]["next_attempt_at"], Value::Null);
    let refused = deliveries_until(&app, refuses, 20, |d| {
        d.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(
        refused[0]["attempts"], 1,
        "a 400 is not retried: {refused:?}"
    );
    assert_eq!(refused[0]["response"], "bad signature");
    assert_eq!(receiver.wait_for("/refuses", 1, 1).await.len(), 1);
    // Failing, not yet for long enough to be disabled.
    let (_, endpoint) = as_admin(
        &app,
        "GET",
        &format!("/api/v1/webhooks/{down}"),
        Value::Null,
    )
    .await;
    assert_eq!(endpoint["enabled"], true);
    assert!(endpoint["failing_since"].is_string(), "{endpoint}");
    // The status filter.
    let (_, page) = as_admin(
        &app,
        "GET",
        &format!("/api/v1/webhooks/{down}/deliveries?status=succeeded"),
        Value::Null,
    )
    .await;
    assert_eq!(page["deliveries"], json!([]));
    let (status, problem) = as_admin(
        &app,
        "GET",
        &format!("/api/v1/webhooks/{down}/deliveries?status=lost"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "status", "{problem}");
}

#[tokio::test]
async fn an_endpoint_that_is_gone_is_disabled_and_the_others_are_told() {
    let receiver = Receiver::start();
    let app = app_with(config()).await;
    let (gone, _) = endpoint(&app, &receiver.url("/gone"), json!(["channels.event"])).await;
    let (watcher, secret) = endpoint(
        &app,
        &receiver.url("/watcher"),
        json!(["webhooks.endpoint.disabled"]),
    )
    .await;
    receiver.secrets("/watcher", &[&secret]).await;
    receiver.script("/gone", json!([{ "status": 410 }])).await;
    let ada = person(&app, "ada").await;
    let channel = channel_with_message(&app, &ada, "gone", "first").await;

    let told = receiver.wait_for("/watcher", 1, 20).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["verified"], json!([true]));
    let body = body_of(&told[0]);
    assert_eq!(body["type"], "webhooks.endpoint.disabled");
    assert_eq!(body["data"]["endpoint_id"], gone);
    assert_eq!(
        body["data"]["owner_id"],
        Value::Null,
        "made with the admin token"
    );
    assert_eq!(
        body["data"]["origin"],
        format!("http://127.0.0.1:{}", receiver.port),
        "the origin only: a URL's path may be the receiver's secret"
    );
    assert!(body["data"].get("url").is_none(), "{body}");
    assert_eq!(body["data"]["reason"], "it answered 410 Gone");
    let (_, endpoint_now) = as_admin(
        &app,
        "GET",
        &format!("/api/v1/webhooks/{gone}"),
        Value::Null,
    )
    .await;
    assert_eq!(endpoint_now["enabled"], false);
    assert_eq!(endpoint_now["disabled_reason"], "it answered 410 Gone");
    // A disabled endpoint is sent nothing.
    let (status, _) = as_person(
        &app,
        &ada,
        "POST",
        &format!("/api/v1/channels/{channel}/messages"),
        json!({ "body": "while it is disabled" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = receiver.wait_for("/gone", 1, 0).await;
    // Replay and ping wait for it to be enabled again.
    let (status, problem) = as_admin(
        &app,
        "POST",
        &format!("/api/v1/webhooks/{gone}/ping"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "endpoint_disabled");
    // Enabled, it gets what waited.
    receiver.script("/gone", json!([{ "status": 200 }])).await;
    let (status, enabled) = as_admin(
        &app,
        "PATCH",
        &format!("/api/v1/webhooks/{gone}"),
        json!({ "enabled": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["failing_since"], Value::Null);
    let (status, _) = as_person(
        &app,
        &ada,
        "POST",
        &format!("/api/v1/channels/{channel}/messages"),
        json!({ "body": "back again" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // What was pending when it was disabled follows, then what happens now; what happened
    // while it was disabled never does.
    let text = |entry: &Value| body_of(entry)["data"]["data"]["body"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let received = loop {
        let received = receiver.wait_for("/gone", before.len() + 1, 20).await;
        if received.iter().any(|entry| text(entry) == "back again")
            || std::time::Instant::now() > deadline
        {
            break received;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        received.iter().any(|entry| text(entry) == "back again"),
        "{received:?}"
    );
    assert!(
        received
            .iter()
            .all(|entry| text(entry) != "while it is disabled"),
        "{received:?}"
    );
    let _ = watcher;
}

#[tokio::test]
async fn endpoints_failing_past_the_limit_are_disabled() {
    let receiver = Receiver::start();
    let app = app_with(WebhooksConfig {
        disable_after_minutes: 1,
        ..config()
    })
    .await;
    let (id, _) = endpoint(&app, &receiver.url("/broken"), json!(["channels.event"])).await;
    receiver.script("/broken", json!([{ "status": 502 }])).await;
    let ada = person(&app, "ada").await;
    as_person(
        &app,
        &ada,
        "POST",
        "/api/v1/channels",
        json!({ "kind": "public", "name": "broken" }),
    )
    .await;
    let (_, first) = deliveries_until(&app, id, 20, |d| {
        d.first()
            .is_some_and(|d| d["attempts"] == 1 && d["response_status"] == 502)
    })
    .await
    .split_first()
    .map(|(first, rest)| (rest.to_vec(), first.clone()))
    .unwrap();
    assert_eq!(first["response_status"], 502);
    // Its failures began more than a minute ago (as if it had been down that long)…
    let db = app.runtime.storage().database().pool().clone();
    plexichat::sqlx::query(
        "UPDATE webhooks_endpoints SET failing_since_ms = failing_since_ms - 120000 WHERE id = $1",
    )
    .bind(id)
    .execute(&db)
    .await
    .unwrap();
    // …so the next failure disables it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let endpoint = loop {
        let (_, endpoint) =
            as_admin(&app, "GET", &format!("/api/v1/webhooks/{id}"), Value::Null).await;
        if endpoint["enabled"] == false || std::time::Instant::now() > deadline {
            break endpoint;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(endpoint["enabled"], false, "{endpoint}");
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .starts_with("its deliveries have failed since "),
        "{endpoint}"
    );
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_during_the_overlap() {
    let receiver = Receiver::start();
    let app = app_with(config()).await;
    let (id, old) = endpoint(&app, &receiver.url("/rotating"), json!([])).await;
    let (status, rotated) = as_admin(
        &app,
        "POST",
        &format!("/api/v1/webhooks/{id}/secret/rotate"),
        json!({ "overlap_hours": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    // A receiver that has switched and one that has not both verify.
    receiver.secrets("/rotating", &[&new, &old]).await;
    let (status, ping) = as_admin(
        &app,
        "POST",
        &format!("/api/v1/webhooks/{id}/ping"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ping}");
    assert_eq!(ping["status"], "succeeded", "{ping}");
    assert_eq!(ping["event_type"], "webhook.ping");
    let received = receiver.wait_for("/rotating", 1, 5).await;
    assert_eq!(received[0]["verified"], json!([true, true]), "{received:?}");
    assert_eq!(
        received[0]["headers"]["webhook-signature"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    // With no overlap, only the newest signs.
    let (_, rotated) = as_admin(
        &app,
        "POST",
        &format!("/api/v1/webhooks/{id}/secret/rotate"),
        json!({ "overlap_hours": 0 }),
    )
    .await;
    let newest = rotated["secret"].as_str().unwrap().to_string();
    receiver.secrets("/rotating", &[&newest, &new]).await;
    as_admin(
        &app,
        "POST",
        &format!("/api/v1/webhooks/{id}/ping"),
        Value::Null,
    )
    .await;
    let received = receiver.wait_for("/rotating", 2, 5).await;
    assert_eq!(received[1]["verified"][0], true);
    assert_ne!(received[1]["verified"][1], true, "{:?}", received[1]);
    let (_, endpoint) = as_admin(&app, "GET", &format!("/api/v1/webhooks/{id}"), Value::Null).await;
    assert_eq!(endpoint["previous_secret_until"], Value::Null);
    assert!(
        endpoint.get("secret").is_none(),
        "never shown again: {endpoint}"
    );
}

#[tokio::test]
async fn ping_replay_and_the_log_are_for_operators() {
    let receiver = Receiver::start();
    let app = app_with(config()).await;
    let (id, secret) = endpoint(&app, &receiver.url("/log"), json!([])).await;
    receiver.secrets("/log", &[&secret]).await;
    let (status, ping) = as_admin(
        &app,
        "POST",
        &format!("/api/v1/webhooks/{id}/ping"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ping}");
    assert_eq!(ping["attempt_log"][0]["status_code"], 200);
    assert_eq!(ping["payload"]["data"]["endpoint_id"], id);
    let delivery = ping["id"].as_i64().unwrap();
    let (status, replayed) = as_admin(
        &app,
        "POST",
        &format!("/api/v1/webhooks/{id}/deliveries/{delivery}/replay"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
    assert_ne!(replayed["id"], ping["id"]);
    assert_eq!(
        replayed["message_id"], ping["message_id"],
        "the same webhook-id"
    );
    let received = receiver.wait_for("/log", 2, 10).await;
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0]["headers"]["webhook-id"],
        received[1]["headers"]["webhook-id"]
    );
    // Pages, newest first.
    let (_, page) = as_admin(
        &app,
        "GET",
        &format!("/api/v1/webhooks/{id}/deliveries?limit=1"),
        Value::Null,
    )
    .await;
    assert_eq!(page["deliveries"][0]["id"], replayed["id"]);
    let before = page["next_before"].as_i64().unwrap();
    let (_, page) = as_admin(
        &app,
        "GET",
        &format!("/api/v1/webhooks/{id}/deliveries?limit=1&before={before}"),
        Value::Null,
    )
    .await;
    assert_eq!(page["deliveries"][0]["id"], ping["id"]);
    assert_eq!(page["next_before"], Value::Null);
    // Someone else's endpoint number, a missing delivery.
    let (status, problem) =
        as_admin(&app, "GET", "/api/v1/webhooks/999/deliveries", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["code"], "endpoint_not_found");
    let (status, problem) = as_admin(
        &app,
        "GET",
        &format!("/api/v1/webhooks/{id}/deliveries/999999"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["code"], "delivery_not_found");
    // People who are not admins (the first to register is one, the second not), and no one
    // at all.
    let _ada = person(&app, "ada").await;
    let bob = person(&app, "bob").await;
    for (method, path) in [
        ("GET", "/api/v1/webhooks".to_string()),
        ("POST", "/api/v1/webhooks".to_string()),
        ("GET", format!("/api/v1/webhooks/{id}/deliveries")),
        ("POST", format!("/api/v1/webhooks/{id}/ping")),
        ("DELETE", format!("/api/v1/webhooks/{id}")),
    ] {
        let (status, problem) = as_person(
            &app,
            &bob,
            method,
            &path,
            json!({ "url": "http://127.0.0.1/" }),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {problem}");
        let (status, _) = app.request(method, &path).json(&json!({})).send().await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // Deleting takes the log with it.
    let (status, _) = as_admin(
        &app,
        "DELETE",
        &format!("/api/v1/webhooks/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = as_admin(&app, "GET", &format!("/api/v1/webhooks/{id}"), Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let app = app_with(WebhooksConfig {
        allow_addresses: Vec::new(),
        ..config()
    })
    .await;
    for (url, kind) in [
        ("http://127.0.0.1:9/", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.8/hook", "private"),
        ("http://[::1]:9/", "loopback"),
        ("http://[::ffff:192.168.1.1]/", "private"),
    ] {
        let (status, problem) =
            as_admin(&app, "POST", "/api/v1/webhooks", json!({ "url": url })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {problem}");
        assert_eq!(problem["field"], "url", "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(kind),
            "{problem}"
        );
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("allow_addresses"),
            "{problem}"
        );
    }
    for (url, why) in [
        ("ftp://example.com/", "http or https"),
        ("not a url", "not a URL"),
    ] {
        let (status, problem) =
            as_admin(&app, "POST", "/api/v1/webhooks", json!({ "url": url })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
    }
    let (status, problem) = as_admin(
        &app,
        "POST",
        "/api/v1/webhooks",
        json!({ "url": "https://example.com/hook", "event_types": ["channels.evnt"] }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "unknown_event_type");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("channels.event"),
        "{problem}"
    );
    // A name is checked on the address it resolves to, when it is sent: `localhost` is
    // loopback, and the delivery fails for good without a connection.
    let (id, _) = endpoint(&app, "http://localhost:9/hook", json!([])).await;
    let (status, ping) = as_admin(
        &app,
        "POST",
        &format!("/api/v1/webhooks/{id}/ping"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ping}");
    assert_eq!(ping["status"], "failed", "{ping}");
    assert_eq!(ping["attempts"], 1);
    let error = ping["error"].as_str().unwrap();
    assert!(
        error.contains("loopback") && error.contains("allow_addresses"),
        "{error}"
    );
    // The catalogue lists the chat's events and the plugins'.
    let (_, catalogue) = as_admin(&app, "GET", "/api/v1/webhooks/event-types", Value::Null).await;
    let names: Vec<&str> = catalogue["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"channels.event"), "{names:?}");
    assert!(names.contains(&"webhooks.endpoint.disabled"), "{names:?}");
}

#[tokio::test]
async fn an_incoming_hook_posts_as_its_maker_at_a_bounded_rate() {
    let app = app_with(WebhooksConfig {
        incoming_per_minute: 3,
        ..config()
    })
    .await;
    let ada = person(&app, "ada").await;
    let bob = person(&app, "bob").await;
    let channel = channel_with_message(&app, &ada, "deploys", "hooks go here").await;
    // Bob is not a member.
    let (status, problem) = as_person(
        &app,
        &bob,
        "POST",
        "/api/v1/webhooks/incoming",
        json!({ "channel_id": channel }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "not_a_member");
    let (status, hook) = as_person(
        &app,
        &ada,
        "POST",
        "/api/v1/webhooks/incoming",
        json!({ "channel_id": channel, "description": "CI" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let path = hook["path"].as_str().unwrap().to_string();
    assert!(path.starts_with("/hooks/pxh_"), "{path}");

    let (status, posted) = app
        .request("POST", &path)
        .header("idempotency-key", "build-41")
        .json(&json!({ "text": "build 41 passed" }))
        .send()
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    // A retry with the same key is the same message.
    let (status, again) = app
        .request("POST", &path)
        .header("idempotency-key", "build-41")
        .json(&json!({ "text": "build 41 passed" }))
        .send()
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["message_id"], posted["message_id"]);
    let (_, message) = app
        .request("GET", &format!("/api/v1/messages/{}", posted["message_id"]))
        .bearer(&ada.token)
        .send()
        .await;
    assert_eq!(message["body"], "build 41 passed");
    assert_eq!(message["author_id"], ada.id);
    assert_eq!(message["channel_id"], channel);

    let (status, problem) = app
        .request("POST", &path)
        .json(&json!({ "text": "  " }))
        .send()
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "text", "{problem}");
    let (status, problem) = app
        .request("POST", &path)
        .json(&json!({ "text": "x".repeat(4001) }))
        .send()
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "text", "{problem}");
    // Three a minute (the retry above was not counted): the fourth waits.
    for text in ["second", "third"] {
        let (status, body) = app
            .request("POST", &path)
            .json(&json!({ "text": text }))
            .send()
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, problem) = app
        .request("POST", &path)
        .json(&json!({ "text": "too many" }))
        .send()
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(problem["code"], "rate_limited");
    // A retry of a post that went through is still answered.
    let (status, again) = app
        .request("POST", &path)
        .header("idempotency-key", "build-41")
        .json(&json!({ "text": "build 41 passed" }))
        .send()
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["message_id"], posted["message_id"]);

    let (status, problem) = app
        .request("POST", "/hooks/pxh_madeup")
        .json(&json!({ "text": "hi" }))
        .send()
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["code"], "hook_not_found");
    // Bob cannot see or delete it; Ada can.
    let (_, listed) = as_person(&app, &bob, "GET", "/api/v1/webhooks/incoming", Value::Null).await;
    assert_eq!(listed["hooks"], json!([]));
    let hook_id = hook["id"].as_i64().unwrap();
    let (status, _) = as_person(
        &app,
        &bob,
        "DELETE",
        &format!("/api/v1/webhooks/incoming/{hook_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = as_person(&app, &ada, "GET", "/api/v1/webhooks/incoming", Value::Null).await;
    assert_eq!(listed["hooks"][0]["id"], hook_id);
    assert!(listed["hooks"][0]["last_used_at"].is_string());
    assert!(listed["hooks"][0].get("token").is_none());
    let (status, _) = as_person(
        &app,
        &ada,
        "DELETE",
        &format!("/api/v1/webhooks/incoming/{hook_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .request("POST", &path)
        .json(&json!({ "text": "after" }))
        .send()
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_tests_it_ships_pass() {
    let app = app_with(config()).await;
    let runs = app.plugin_tests("webhooks").await;
    assert!(!runs.is_empty());
    for run in runs {
        assert_eq!(run.status, plexichat::tests::RunStatus::Passed, "{run:?}");
    }
}
