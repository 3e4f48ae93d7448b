//! The AI service against a real model (SmolLM2-135M served by llama.cpp through PyPI's
//! `xllamacpp`, see `support`), on the engine `PLEXICHAT_TEST_ENGINE` names: answers and
//! their usage, server-sent events ending in `[DONE]`, models, quotas, retries honouring
//! `Retry-After`, failures mapped to problems, readiness, and a plugin calling
//! `context.ai()`. Assertions are on structure, never on wording.

mod support;

use accounts::{Accounts, AccountsConfig};
use ai::{Ai, AiConfig};
use plexichat::ai::ChatRequest;
use plexichat::axum::body::to_bytes;
use plexichat::http::StatusCode;
use plexichat::prelude::*;
use plexichat::serde_json::{Value, json};
use plexichat::testing::{TestApp, TestClient};

/// A plugin that uses the service as any plugin would: `permissions = ["ai"]`.
#[plugin(name = "poet", author = "Tests", permissions = ["ai"])]
#[derive(Default)]
pub struct Poet;

/// Asks the model for a line; answers the completion, or the service's error as a problem.
#[route(POST, "/line")]
async fn line(context: PluginContext<Poet>) -> Result<Json<Value>, ApiError> {
    let mut request = ChatRequest::prompt("Write one short line about the sea.");
    request.max_tokens = Some(12);
    let completion = context.ai().chat(request).await?;
    Ok(Json(json!(completion)))
}

fn config(base_url: Option<&str>) -> AiConfig {
    AiConfig {
        base_url: base_url.map(str::to_owned),
        timeout_seconds: 60,
        max_tokens: 32,
        ..AiConfig::default()
    }
}

const ADMIN: &str = "ai-test-admin-token-0123456789abcdef";

async fn app_with(config: AiConfig) -> TestApp {
    TestApp::builder()
        .admin_token(ADMIN)
        .plugin_config::<analytics::Analytics>(analytics::AnalyticsConfig {
            flush_seconds: 1,
            ..analytics::AnalyticsConfig::default()
        })
        .plugin_config::<Accounts>(AccountsConfig {
            password_memory_kib: 1024,
            password_iterations: 1,
            ..AccountsConfig::default()
        })
        .plugin_config::<Ai>(config)
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

async fn ask(app: &TestClient, token: &str, body: Value) -> (StatusCode, Value) {
    app.request("POST", "/api/v1/ai/chat")
        .bearer(token)
        .json(&body)
        .send()
        .await
}

/// The person's `GET /api/v1/ai/usage`.
async fn usage_of(app: &TestClient, token: &str) -> (StatusCode, Value) {
    app.request("GET", "/api/v1/ai/usage")
        .bearer(token)
        .send()
        .await
}

/// The person's usage, which must be answered.
async fn usage(app: &TestClient, token: &str) -> Value {
    let (status, usage) = usage_of(app, token).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    usage
}

fn hello(max_tokens: u32) -> Value {
    json!({ "messages": [{ "role": "user", "content": "Say hello." }], "max_tokens": max_tokens })
}

/// Checks a completion's shape and returns its usage's total.
fn assert_completion(body: &Value, max_tokens: u64) -> u64 {
    assert!(
        !body["content"].as_str().unwrap().trim().is_empty(),
        "{body}"
    );
    assert!(!body["model"].as_str().unwrap().is_empty(), "{body}");
    let reason = body["finish_reason"].as_str().unwrap();
    assert!(["stop", "length"].contains(&reason), "{body}");
    let usage = &body["usage"];
    let (prompt, completion) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(
        prompt > 0 && completion > 0 && completion <= max_tokens,
        "{body}"
    );
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), prompt + completion);
    prompt + completion
}

#[tokio::test]
async fn a_person_gets_an_answer_and_its_usage_is_counted() {
    let model = support::model();
    let app = app_with(config(Some(&model.base_url))).await;
    let token = person(&app, "asker").await;

    let (status, body) = ask(&app, &token, hello(16)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let spent = assert_completion(&body, 16);

    let mine = usage(&app, &token).await;
    assert_eq!(mine["used_today"].as_u64(), Some(spent), "{mine}");
    assert_eq!(mine["days"][0]["requests"], 1, "{mine}");
    assert_eq!(mine["days"][0]["failures"], 0, "{mine}");
    assert_eq!(
        mine["remaining_today"].as_u64(),
        Some(AiConfig::default().user_tokens_per_day - spent)
    );
    // Someone else's usage is their own.
    let other = person(&app, "bystander").await;
    let theirs = usage(&app, &other).await;
    assert_eq!(theirs["used_today"], 0, "{theirs}");

    // Operators see it in analytics' summary (written a second later).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, summary) = app
            .request("GET", "/api/v1/analytics/summary")
            .admin()
            .send()
            .await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        let today = summary["days"]
            .as_array()
            .and_then(|days| days.last())
            .cloned();
        if let Some(today) = today.filter(|today| today["ai_requests"] == 1) {
            assert_eq!(today["ai_tokens"].as_u64(), Some(spent), "{summary}");
            assert_eq!(
                summary["ai_tokens_by_model"][0]["total"].as_u64(),
                Some(spent)
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never counted: {summary}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_streamed_answer_is_server_sent_events_ending_in_done() {
    let model = support::model();
    let app = app_with(config(Some(&model.base_url))).await;
    let token = person(&app, "streamer").await;

    for (body, accept) in [
        (
            json!({ "messages": [{ "role": "user", "content": "Count to five." }], "max_tokens": 12, "stream": true }),
            None,
        ),
        (hello(12), Some("text/event-stream")),
    ] {
        let mut request = app
            .request("POST", "/api/v1/ai/chat")
            .bearer(&token)
            .json(&body);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send_raw().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let text = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let text = String::from_utf8(text.to_vec()).unwrap();
        let data: Vec<&str> = text
            .split("\n\n")
            .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
            .collect();
        assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|data| plexichat::serde_json::from_str(data).unwrap())
            .collect();
        let streamed: String = chunks
            .iter()
            .map(|chunk| chunk["delta"].as_str().unwrap())
            .collect();
        assert!(!streamed.trim().is_empty(), "{text}");
        let last = chunks.last().unwrap();
        assert!(last["finish_reason"].is_string(), "{text}");
        let completion = last["usage"]["completion_tokens"].as_u64().unwrap();
        assert!(completion > 0 && completion <= 12, "{text}");
        assert!(
            chunks[..chunks.len() - 1]
                .iter()
                .all(|chunk| chunk.get("usage").is_none())
        );
    }
    let usage = usage(&app, &token).await;
    assert_eq!(usage["days"][0]["requests"], 2, "{usage}");
    assert!(usage["used_today"].as_u64().unwrap() > 0, "{usage}");
}

#[tokio::test]
async fn models_are_listed_with_the_default_marked() {
    let model = support::model();
    let app = app_with(config(Some(&model.base_url))).await;
    let token = person(&app, "browser").await;
    let (status, body) = app
        .request("GET", "/api/v1/ai/models")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let models = body["models"].as_array().unwrap();
    assert!(!models.is_empty(), "{body}");
    assert_eq!(
        models
            .iter()
            .filter(|model| model["default"] == true)
            .count(),
        1,
        "{body}"
    );
    // llama.cpp names the model by its file.
    assert!(
        models[0]["id"].as_str().unwrap().ends_with(".gguf"),
        "{body}"
    );
}

#[tokio::test]
async fn a_person_past_their_daily_tokens_is_told_when_to_come_back() {
    let model = support::model();
    let app = app_with(AiConfig {
        user_tokens_per_day: 10,
        ..config(Some(&model.base_url))
    })
    .await;
    let token = person(&app, "greedy").await;
    // The quota is checked before a request: the first goes through and uses it up.
    let (status, body) = ask(&app, &token, hello(8)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = app
        .request("POST", "/api/v1/ai/chat")
        .bearer(&token)
        .json(&hello(8))
        .send_raw()
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 86_400, "{wait}");
    let body: Value = plexichat::serde_json::from_slice(
        &to_bytes(response.into_body(), usize::MAX).await.unwrap(),
    )
    .unwrap();
    assert_eq!(body["code"], "quota_exceeded", "{body}");
    let usage = usage(&app, &token).await;
    assert_eq!(usage["remaining_today"], 0, "{usage}");
}

#[tokio::test]
async fn a_plugin_calls_the_service_and_its_own_quota_holds() {
    let model = support::model();
    let app = app_with(AiConfig {
        plugin_tokens_per_day: 5,
        ..config(Some(&model.base_url))
    })
    .await;
    let (status, body) = app.post("/api/v1/poet/line", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_completion(&body, 12);
    let (status, body) = app.post("/api/v1/poet/line", json!({})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "quota_exceeded", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("plugin poet"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let model = support::model();
    let app = app_with(config(Some(&model.base_url))).await;
    let token = person(&app, "careless").await;
    for (body, field) in [
        (json!({ "messages": [] }), "messages"),
        (
            json!({ "messages": [{ "role": "user", "content": "  " }] }),
            "messages",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": "hi" }], "max_tokens": 33 }),
            "max_tokens",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": "hi" }], "max_tokens": 0 }),
            "max_tokens",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": "hi" }], "temperature": 3 }),
            "temperature",
        ),
        (
            json!({ "messages": [{ "role": "robot", "content": "hi" }] }),
            "messages",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": "x".repeat(32_001) }] }),
            "messages",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": "hi" }], "model": "x".repeat(200) }),
            "model",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": "hi" }], "model": "a model; DROP" }),
            "model",
        ),
    ] {
        let (status, problem) = ask(&app, &token, body.clone()).await;
        assert!(status.is_client_error(), "{body} → {status} {problem}");
        assert!(
            problem.to_string().contains(field),
            "{body}: the problem should name `{field}`: {problem}"
        );
    }
    // Without a session: 401, and nothing is asked.
    let (status, _) = app.post("/api/v1/ai/chat", hello(4)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/v1/ai/models").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_after_their_wait() {
    let mut flaky = support::Flaky::start();
    let app = app_with(config(Some(&flaky.base_url))).await;
    let token = person(&app, "patient").await;
    let started = std::time::Instant::now();
    let (status, body) = ask(&app, &token, hello(8)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_completion(&body, 8);
    // The 429 said to wait a second, and it was waited.
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    // The model list (for the default model) is asked once; the completion three times.
    assert_eq!(
        flaky.answers(),
        ["GET forwarded", "POST 429", "POST 503", "POST forwarded"]
    );
}

#[tokio::test]
async fn failures_are_problems_that_say_what_failed() {
    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = app_with(AiConfig {
        max_attempts: 2,
        ..config(Some(&format!("http://127.0.0.1:{port}/v1")))
    })
    .await;
    let token = person(&app, "unlucky").await;
    let (status, body) = ask(&app, &token, hello(4)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "ai_provider", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("cannot reach"),
        "{body}"
    );
    // A configured server that cannot be reached makes the server not ready, naming `ai`.
    let (status, ready) = app.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert!(ready["plugins"]["ai"].is_string(), "{ready}");
    let usage = usage(&app, &token).await;
    assert_eq!(usage["days"][0]["failures"], 1, "{usage}");

    // Without a server configured: 503 saying what to set, and ready all the same.
    let app = app_with(config(None)).await;
    let token = person(&app, "early").await;
    let (status, body) = ask(&app, &token, hello(4)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "ai_unavailable", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("base_url"),
        "{body}"
    );
    let (status, _) = app.get("/ready").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn requests_sent_together_cannot_all_pass_a_quota() {
    let model = support::model();
    let app = app_with(AiConfig {
        user_tokens_per_day: 10,
        ..config(Some(&model.base_url))
    })
    .await;
    let token = person(&app, "eager").await;
    // Each may use up to its conversation and 16 tokens: once one is in flight, the others
    // would cross the quota of 10 with it.
    let asks = (0..3).map(|_| ask(&app, &token, hello(16)));
    let answers = futures_util::future::join_all(asks).await;
    let passed = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    let refused = answers
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::TOO_MANY_REQUESTS && body["code"] == "quota_exceeded"
        })
        .count();
    assert_eq!((passed, refused), (1, 2), "{answers:?}");
}

#[tokio::test]
async fn an_answer_abandoned_midway_is_still_charged() {
    let model = support::model();
    let app = app_with(config(Some(&model.base_url))).await;
    let token = person(&app, "impatient").await;
    let long = "Tell me a long story about the sea. ".repeat(20);
    let response = app
        .request("POST", "/api/v1/ai/chat")
        .bearer(&token)
        .json(&json!({ "messages": [{ "role": "user", "content": long }], "max_tokens": 32, "stream": true }))
        .send_raw()
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Read the first event, then hang up.
    let mut body = response.into_body().into_data_stream();
    let first = futures_util::StreamExt::next(&mut body).await;
    assert!(first.is_some());
    drop(body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let usage = usage(&app, &token).await;
        if usage["days"][0]["requests"] == 1 {
            // At least the conversation it sent, estimated at four characters a token.
            let prompt = usage["days"][0]["prompt_tokens"].as_u64().unwrap();
            assert!(prompt >= (long.len() / 4) as u64 / 2, "{usage}");
            assert_eq!(usage["days"][0]["failures"], 1, "{usage}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recorded: {usage}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn only_the_models_an_operator_allows_are_offered() {
    let model = support::model();
    let app = app_with(AiConfig {
        allowed_models: vec!["some-other-model".into()],
        ..config(Some(&model.base_url))
    })
    .await;
    let token = person(&app, "chooser").await;
    let (status, body) = app
        .request("GET", "/api/v1/ai/models")
        .bearer(&token)
        .send()
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["models"], json!([]), "{body}");
    let (status, problem) = ask(
        &app,
        &token,
        json!({ "messages": [{ "role": "user", "content": "hi" }], "model": "gpt-4-turbo" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["field"], "model", "{problem}");
}
