//! `/api/v1/ai`: chat completions for signed-in people (whole, or as server-sent events), the
//! models, and what each person has used against their quota.

use std::convert::Infallible;
use std::time::Duration;

use accounts::Caller;
use futures_util::{Stream, StreamExt};
use plexichat::ai::{ChatChunk, ChatMessage, ChatRequest, Completion, Model};
use plexichat::http::{HeaderMap, header};
use plexichat::openapi::{Describer, OutputDoc};
use plexichat::prelude::*;
use plexichat::response::Response;
use plexichat::response::sse::{Event as SseEvent, KeepAlive, Sse};
use plexichat::sqlx::{self, Row};

use crate::{Ai, usage};

/// People's requests, per person.
pub(crate) type PersonLimiter = plexichat::limit::RateLimiter<i64>;

/// `POST /api/v1/ai/chat`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    /// The conversation so far, oldest first (`system`, `user` and `assistant` turns).
    pub messages: Vec<ChatMessage>,
    /// A model from `GET /api/v1/ai/models`; absent: the server's default.
    pub model: Option<String>,
    /// The most tokens to generate (at most the server's `max_tokens`, which is also the
    /// default).
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<f32>,
    /// Answer as server-sent events, each `data:` a chunk, ending with `data: [DONE]`; also
    /// chosen by `Accept: text/event-stream`.
    #[serde(default)]
    pub stream: bool,
}

/// The answer: a [`Completion`] as JSON, or a stream of [`ChatChunk`]s.
pub enum ChatAnswer {
    /// The whole answer.
    Whole(Json<Completion>),
    /// The answer as it is generated.
    Streamed(Response),
}

impl IntoResponse for ChatAnswer {
    fn into_response(self) -> Response {
        match self {
            ChatAnswer::Whole(json) => json.into_response(),
            ChatAnswer::Streamed(response) => response,
        }
    }
}

impl OutputDoc for ChatAnswer {
    fn describe_output(describer: &mut Describer) {
        let whole = describer.response_schema::<Completion>();
        describer.response(
            "200",
            "the answer; with `stream`, server-sent events whose `data` is a chunk (`delta`, then `finish_reason` and `usage` on the last) and finally `[DONE]`, or an `error` event with a problem body",
            Some(("application/json", whole)),
        );
        let chunk = describer.response_schema::<ChatChunk>();
        describer.alternative("200", "text/event-stream", chunk);
    }
}

/// Whether the client asked for server-sent events.
fn wants_events(body: &ChatBody, headers: &HeaderMap) -> bool {
    body.stream
        || headers
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// Asks the configured model. Each person may send `user_requests_per_minute` a minute
/// (`429 rate_limited` past it) and use `user_tokens_per_day` tokens a day (`429
/// quota_exceeded`, with `Retry-After` at midnight UTC). Failures of the AI server answer
/// `502 ai_provider` (after retries), `504 ai_timeout`, or `503 ai_unavailable` when no server
/// is configured.
#[route(POST, "/chat")]
async fn chat(
    plugin: PluginState<Ai>,
    config: PluginConfig<crate::Ai>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<ChatBody>,
) -> Result<ChatAnswer, ApiError> {
    let per_minute = config.user_requests_per_minute.max(1);
    plugin
        .limiter
        .take(
            caller.user_id,
            Duration::from_secs(60) / per_minute,
            per_minute,
        )
        .map_err(|wait| {
            let seconds = plexichat::limit::retry_after_seconds(wait);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("you are asking faster than this server allows; try again in {seconds} s"),
            )
            .with_code("rate_limited")
            .with_retry_after(seconds)
        })?;
    let streamed = wants_events(&body, &headers);
    let request = ChatRequest {
        model: body.model,
        messages: body.messages,
        max_tokens: body.max_tokens,
        temperature: body.temperature,
    };
    let ai = plugin.context()?.ai().for_user(caller.user_id);
    if !streamed {
        return Ok(ChatAnswer::Whole(Json(ai.chat(request).await?)));
    }
    let chunks = ai.stream(request).await?;
    Ok(ChatAnswer::Streamed(
        Sse::new(events(chunks))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
    ))
}

/// The chunks as events: each as JSON, then `[DONE]`; a failure as an `error` event with the
/// problem body, and no `[DONE]` (the provider's stream ends after an error).
fn events(chunks: plexichat::ai::ChunkStream) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(Some(chunks), |chunks| async move {
        let mut chunks = chunks?;
        let event = match chunks.next().await {
            Some(Ok(chunk)) => SseEvent::default().data(json!(chunk).to_string()),
            Some(Err(error)) => {
                let error = ApiError::from(error);
                let problem = json!({
                    "status": error.status().as_u16(),
                    "code": error.code(),
                    "detail": error.to_string(),
                });
                return Some((
                    Ok(SseEvent::default().event("error").data(problem.to_string())),
                    None,
                ));
            }
            None => return Some((Ok(SseEvent::default().data("[DONE]")), None)),
        };
        Some((Ok(event), Some(chunks)))
    })
}

/// `GET /api/v1/ai/models`' answer.
#[payload(response)]
#[derive(Debug)]
pub struct Models {
    /// What the AI server serves; `default` marks the one used when a request names none.
    pub models: Vec<Model>,
}

/// The models the AI server serves.
#[route(GET, "/models")]
async fn models(plugin: PluginState<Ai>, caller: Caller) -> Result<Json<Models>, ApiError> {
    let ai = plugin.context()?.ai().for_user(caller.user_id);
    Ok(Json(Models {
        models: ai.models().await?,
    }))
}

/// `GET /api/v1/ai/usage`' query.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// How many days back, today included (1 to 366; default 7).
    pub days: Option<u32>,
}

/// One day's use.
#[payload(response)]
#[derive(Debug)]
pub struct UsageDay {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Requests made.
    pub requests: i64,
    /// Of which failed.
    pub failures: i64,
    /// Tokens sent.
    pub prompt_tokens: i64,
    /// Tokens generated.
    pub completion_tokens: i64,
}

/// `GET /api/v1/ai/usage`' answer.
#[payload(response)]
#[derive(Debug)]
pub struct UsageReport {
    /// Tokens used today (UTC).
    pub used_today: i64,
    /// Tokens allowed a day (`null`: no limit).
    pub limit_per_day: Option<u64>,
    /// What is left today (`null`: no limit).
    pub remaining_today: Option<u64>,
    /// Seconds until the allowance renews.
    pub renews_in_seconds: u64,
    /// Each day with any use, newest first.
    pub days: Vec<UsageDay>,
}

/// What the signed-in person used, per day, through any plugin, and what is left of today's
/// allowance.
#[route(GET, "/usage")]
async fn usage_report(
    plugin: PluginState<Ai>,
    config: PluginConfig<crate::Ai>,
    caller: Caller,
    Query(query): Query<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let days = query.days.unwrap_or(7);
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid_field("days", "between 1 and 366"));
    }
    let (today, left) = usage::today();
    let first = today
        .parse::<jiff::civil::Date>()
        .ok()
        .and_then(|date| {
            date.checked_sub(jiff::Span::new().days(i64::from(days) - 1))
                .ok()
        })
        .map_or_else(|| today.clone(), |date| date.to_string());
    let db = plugin.context()?.db();
    let rows = sqlx::query(
        "SELECT day, CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(failures) AS BIGINT) AS failures, \
         CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens \
         FROM ai_usage WHERE user_id = $1 AND day >= $2 GROUP BY day ORDER BY day DESC",
    )
    .bind(caller.user_id)
    .bind(&first)
    .fetch_all(db.pool())
    .await
    .map_err(ApiError::internal)?;
    let mut report = Vec::with_capacity(rows.len());
    for row in &rows {
        report.push(UsageDay {
            day: row.try_get("day").map_err(ApiError::internal)?,
            requests: row.try_get("requests").map_err(ApiError::internal)?,
            failures: row.try_get("failures").map_err(ApiError::internal)?,
            prompt_tokens: row.try_get("prompt_tokens").map_err(ApiError::internal)?,
            completion_tokens: row
                .try_get("completion_tokens")
                .map_err(ApiError::internal)?,
        });
    }
    let used_today = report
        .first()
        .filter(|day| day.day == today)
        .map_or(0, |day| day.prompt_tokens + day.completion_tokens);
    let limit = (config.user_tokens_per_day > 0).then_some(config.user_tokens_per_day);
    Ok(Json(UsageReport {
        used_today,
        limit_per_day: limit,
        remaining_today: limit
            .map(|limit| limit.saturating_sub(u64::try_from(used_today).unwrap_or(0))),
        renews_in_seconds: left.as_secs(),
        days: report,
    }))
}
