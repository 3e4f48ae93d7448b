//! What requests spend: checked against the daily quotas before a request is sent, added to
//! `ai_usage` (per day, plugin, person and model) and to analytics after it.

use std::time::Duration;

use plexichat::ai::{AiError, Caller, ChatRequest, Completion, Usage};
use plexichat::prelude::*;
use plexichat::sqlx::{self, Row};

use crate::{Ai, AiConfig};

/// What one request spent.
#[derive(Clone, Debug)]
pub(crate) struct Spent {
    /// The model that answered (or was asked).
    pub(crate) model: String,
    /// Tokens, as the server counted them.
    pub(crate) usage: Usage,
    /// Pieces streamed so far: the estimate of tokens generated when the server never says.
    pub(crate) streamed: u64,
    /// Whether the request failed.
    pub(crate) failed: bool,
}

impl Spent {
    pub(crate) fn of(completion: &Completion) -> Spent {
        Spent {
            model: completion.model.clone(),
            usage: completion.usage,
            streamed: 0,
            failed: false,
        }
    }

    pub(crate) fn failed(model: String) -> Spent {
        Spent {
            model,
            usage: Usage::default(),
            streamed: 0,
            failed: true,
        }
    }
}

/// Today's date (UTC), `YYYY-MM-DD`, and the time until tomorrow.
pub(crate) fn today() -> (String, Duration) {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let date = now.date();
    let tomorrow = date
        .tomorrow()
        .ok()
        .and_then(|day| day.to_zoned(jiff::tz::TimeZone::UTC).ok());
    let left = tomorrow
        .and_then(|start| Duration::try_from(start.duration_since(&now)).ok())
        .unwrap_or(Duration::from_secs(1));
    (date.to_string(), left)
}

/// Checks `request` and the quotas; answers it with the configured defaults filled in.
pub(crate) async fn admit(
    context: &PluginContext<Ai>,
    config: &AiConfig,
    caller: Caller,
    mut request: ChatRequest,
) -> Result<ChatRequest, AiError> {
    let invalid = |field, message: String| AiError::Invalid { field, message };
    if request.messages.is_empty() {
        return Err(invalid("messages", "send at least one message".into()));
    }
    if request
        .messages
        .iter()
        .all(|message| message.content.trim().is_empty())
    {
        return Err(invalid("messages", "every message is empty".into()));
    }
    let chars: usize = request
        .messages
        .iter()
        .map(|message| message.content.chars().count())
        .sum();
    if chars > config.max_input_chars as usize {
        return Err(invalid(
            "messages",
            format!(
                "the conversation has {chars} characters; at most {} are accepted",
                config.max_input_chars
            ),
        ));
    }
    match request.max_tokens {
        Some(0) => return Err(invalid("max_tokens", "must be at least 1".into())),
        Some(wanted) if wanted > config.max_tokens => {
            return Err(invalid(
                "max_tokens",
                format!("at most {} on this server", config.max_tokens),
            ));
        }
        Some(_) => {}
        None => request.max_tokens = Some(config.max_tokens),
    }
    if let Some(temperature) = request.temperature
        && !(0.0..=2.0).contains(&temperature)
    {
        return Err(invalid("temperature", "must be between 0 and 2".into()));
    }
    if request.model.is_none() {
        request.model.clone_from(&config.model);
    }
    let (day, left) = today();
    let pool = context.db();
    let pool = pool.pool();
    let exceeded = |scope: String, used: u64, limit: u64| AiError::QuotaExceeded {
        scope,
        used,
        limit,
        retry_after: left,
    };
    if let Some(user) = caller.user
        && config.user_tokens_per_day > 0
    {
        let used = tokens_used(pool, &day, Who::User(user)).await?;
        if used >= config.user_tokens_per_day {
            return Err(exceeded(
                format!("user {user}"),
                used,
                config.user_tokens_per_day,
            ));
        }
    }
    if config.plugin_tokens_per_day > 0 {
        let used = tokens_used(pool, &day, Who::Plugin(caller.plugin)).await?;
        if used >= config.plugin_tokens_per_day {
            return Err(exceeded(
                format!("plugin {}", caller.plugin),
                used,
                config.plugin_tokens_per_day,
            ));
        }
    }
    Ok(request)
}

/// Whose tokens to count.
enum Who<'a> {
    User(i64),
    Plugin(&'a str),
}

/// Tokens `who` used on `day`.
async fn tokens_used(pool: &sqlx::AnyPool, day: &str, who: Who<'_>) -> Result<u64, AiError> {
    const SUM: &str = "SELECT CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT) AS used FROM ai_usage WHERE day = $1 AND ";
    let row = match who {
        Who::User(user) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("{SUM}user_id = $2")))
                .bind(day)
                .bind(user)
                .fetch_one(pool)
                .await
        }
        Who::Plugin(plugin) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("{SUM}plugin = $2")))
                .bind(day)
                .bind(plugin)
                .fetch_one(pool)
                .await
        }
    }
    .map_err(storage)?;
    Ok(u64::try_from(row.try_get::<i64, _>("used").map_err(storage)?).unwrap_or(0))
}

fn storage(error: sqlx::Error) -> AiError {
    plexichat::tracing::error!(%error, "ai: reading usage failed");
    AiError::Unavailable("the usage records cannot be read; try again".into())
}

/// Adds what a request spent to `ai_usage` and to analytics. A failure to write is logged:
/// the answer has been given either way.
pub(crate) async fn settle(context: &PluginContext<Ai>, caller: Caller, spent: Spent) {
    let (day, _) = today();
    let model = if spent.model.is_empty() {
        "default".to_owned()
    } else {
        spent.model
    };
    let tokens = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
    let written = sqlx::query(
        "INSERT INTO ai_usage (day, plugin, user_id, model, requests, failures, prompt_tokens, completion_tokens) \
         VALUES ($1, $2, $3, $4, 1, $5, $6, $7) \
         ON CONFLICT (day, plugin, user_id, model) DO UPDATE SET \
         requests = ai_usage.requests + 1, failures = ai_usage.failures + excluded.failures, \
         prompt_tokens = ai_usage.prompt_tokens + excluded.prompt_tokens, \
         completion_tokens = ai_usage.completion_tokens + excluded.completion_tokens",
    )
    .bind(&day)
    .bind(caller.plugin)
    .bind(caller.user.unwrap_or(0))
    .bind(&model)
    .bind(i64::from(spent.failed))
    .bind(tokens(spent.usage.prompt_tokens))
    .bind(tokens(spent.usage.completion_tokens))
    .execute(context.db().pool())
    .await;
    if let Err(error) = written {
        plexichat::tracing::error!(%error, plugin = caller.plugin, "ai: recording usage failed");
    }
    let analytics = context.analytics();
    let user = caller.user.map(|user| user.to_string()).unwrap_or_default();
    let outcome = if spent.failed { "failed" } else { "ok" };
    analytics.record(
        "ai.requests",
        &[
            ("plugin", caller.plugin),
            ("model", &model),
            ("outcome", outcome),
            ("user", &user),
        ],
    );
    analytics.record_value(
        "ai.tokens",
        &[("plugin", caller.plugin), ("model", &model)],
        tokens(spent.usage.total_tokens),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_a_date_and_tomorrow_is_within_a_day() {
        let (day, left) = today();
        assert_eq!(day.len(), 10, "{day}");
        assert!(day.parse::<jiff::civil::Date>().is_ok(), "{day}");
        assert!(left > Duration::ZERO && left <= Duration::from_secs(86_400));
    }
}
