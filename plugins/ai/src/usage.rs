//! What requests spend: checked against the daily quotas before a request is sent, added to
//! `ai_usage` (per day, plugin, person and model) and to analytics after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    /// Tokens, as the server counted them (zero until it says).
    pub(crate) usage: Usage,
    /// Pieces streamed so far: about a token each.
    pub(crate) streamed: u64,
    /// The conversation's size in tokens, estimated before sending.
    pub(crate) prompt_estimate: u64,
    /// Whether the server took the request (answered 2xx): from then on it costs.
    pub(crate) started: bool,
    /// Whether the request failed.
    pub(crate) failed: bool,
}

impl Spent {
    /// Nothing yet, for `request` as admitted.
    pub(crate) fn before(request: &ChatRequest) -> Spent {
        Spent {
            model: request.model.clone().unwrap_or_default(),
            usage: Usage::default(),
            streamed: 0,
            prompt_estimate: estimate(request),
            started: false,
            failed: true,
        }
    }

    /// A whole answer's.
    pub(crate) fn of(mut self, completion: &Completion) -> Spent {
        self.model.clone_from(&completion.model);
        self.usage = completion.usage;
        self.streamed = chars_to_tokens(completion.content.chars().count());
        self.started = true;
        self.failed = false;
        self
    }

    /// The tokens to charge: the server's count when it gave one; else, once the server took
    /// the request, the estimate of the conversation and what was generated (an answer cut
    /// short or abandoned costs what the server did, not nothing); else none.
    pub(crate) fn charged(&self) -> Usage {
        if self.usage.total_tokens > 0 {
            return self.usage;
        }
        if !self.started {
            return Usage::default();
        }
        Usage {
            prompt_tokens: self.prompt_estimate,
            completion_tokens: self.streamed,
            total_tokens: self.prompt_estimate + self.streamed,
        }
    }
}

/// About four characters a token, rounded up, as OpenAI's guidance has it.
fn chars_to_tokens(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}

/// The tokens `request`'s conversation is likely to take, at least one.
pub(crate) fn estimate(request: &ChatRequest) -> u64 {
    let chars: usize = request
        .messages
        .iter()
        .map(|message| message.content.chars().count())
        .sum();
    chars_to_tokens(chars).max(1)
}

/// Whose allowance a reservation holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Holder {
    User(i64),
    Plugin(&'static str),
}

/// Tokens reserved by requests in flight, per person and plugin: a quota counts them with
/// what is recorded, so requests sent together cannot all pass a check made before any
/// finishes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reservations(Arc<Mutex<HashMap<Holder, u64>>>);

/// One request's reservation, given back when dropped (after its spending is recorded).
#[derive(Debug)]
pub(crate) struct Reservation {
    book: Reservations,
    held: Vec<(Holder, u64)>,
}

impl Reservation {
    /// Adds `amount` for `holder` unless `recorded`, what is in flight and the limit say no;
    /// answers what was in use when refusing.
    fn hold(&mut self, holder: Holder, recorded: u64, limit: u64, amount: u64) -> Result<(), u64> {
        let mut book = self
            .book
            .0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let in_flight = book.get(&holder).copied().unwrap_or(0);
        let used = recorded.saturating_add(in_flight);
        if used >= limit {
            return Err(used);
        }
        *book.entry(holder).or_default() += amount;
        self.held.push((holder, amount));
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut book = self
            .book
            .0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for (holder, amount) in self.held.drain(..) {
            if let Some(held) = book.get_mut(&holder) {
                *held = held.saturating_sub(amount);
                if *held == 0 {
                    book.remove(&holder);
                }
            }
        }
    }
}

/// The longest model name accepted.
const MAX_MODEL: usize = 128;

/// Checks a requested model: a plausible name, and one the operator allows.
fn check_model(model: &str, config: &AiConfig) -> Result<(), AiError> {
    let invalid = |message: String| AiError::Invalid {
        field: "model",
        message,
    };
    let plain = !model.is_empty()
        && model.len() <= MAX_MODEL
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+-".contains(&b));
    if !plain {
        return Err(invalid(format!(
            "a model name is 1 to {MAX_MODEL} letters, digits and `._:/@+-`"
        )));
    }
    if !config.allowed_models.is_empty()
        && !config.allowed_models.iter().any(|allowed| allowed == model)
        && config.model.as_deref() != Some(model)
    {
        return Err(invalid(format!(
            "`{model}` is not offered here; see GET /api/v1/ai/models"
        )));
    }
    Ok(())
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

/// Checks `request` and the quotas, and reserves what it may use; answers it with the
/// configured defaults filled in, and the reservation to keep until its spending is recorded.
pub(crate) async fn admit(
    context: &PluginContext<Ai>,
    config: &AiConfig,
    reservations: &Reservations,
    caller: Caller,
    mut request: ChatRequest,
) -> Result<(ChatRequest, Reservation), AiError> {
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
    match &request.model {
        Some(model) => check_model(model, config)?,
        None => request.model.clone_from(&config.model),
    }
    let (day, left) = today();
    // What this request may cost at most, held against the quotas while it runs.
    let most = estimate(&request) + u64::from(request.max_tokens.unwrap_or(config.max_tokens));
    let mut reservation = Reservation {
        book: reservations.clone(),
        held: Vec::new(),
    };
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
        let recorded = tokens_used(pool, &day, Who::User(user)).await?;
        let limit = config.user_tokens_per_day;
        if let Err(used) = reservation.hold(Holder::User(user), recorded, limit, most) {
            return Err(exceeded(format!("user {user}"), used, limit));
        }
    }
    if config.plugin_tokens_per_day > 0 {
        let recorded = tokens_used(pool, &day, Who::Plugin(caller.plugin)).await?;
        let limit = config.plugin_tokens_per_day;
        if let Err(used) = reservation.hold(Holder::Plugin(caller.plugin), recorded, limit, most) {
            return Err(exceeded(format!("plugin {}", caller.plugin), used, limit));
        }
    }
    Ok((request, reservation))
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
/// The reservation is given back once the spending is recorded.
pub(crate) async fn settle(
    context: &PluginContext<Ai>,
    caller: Caller,
    spent: Spent,
    reservation: Reservation,
) {
    let (day, _) = today();
    let charged = spent.charged();
    // The name the server answered with, kept to what a request may name.
    let model: String = if spent.model.is_empty() {
        "default".to_owned()
    } else {
        spent.model.chars().take(MAX_MODEL).collect()
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
    .bind(tokens(charged.prompt_tokens))
    .bind(tokens(charged.completion_tokens))
    .execute(context.db().pool())
    .await;
    if let Err(error) = written {
        plexichat::tracing::error!(%error, plugin = caller.plugin, "ai: recording usage failed");
    }
    drop(reservation);
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
        tokens(charged.total_tokens),
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
