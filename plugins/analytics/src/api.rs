//! `/api/v1/analytics`: for operators, a summary of the server's use per day (messages,
//! active people, HTTP requests, AI) and queries of any plugin's rollups. Aggregates only: no
//! answer names more than a dimension's value.

use std::collections::BTreeMap;

use accounts::api::Operator;
use plexichat::analytics::{AnalyticsQuery, AnalyticsRow, AnalyticsStats};
use plexichat::prelude::*;

use crate::Analytics;
use crate::rollup::check_range;

/// Who records the summary's figures, and under which metric.
mod feeds {
    /// `channels`: one per message, dimension `channel`.
    pub(super) const MESSAGES: (&str, &str) = ("channels", "chat.messages");
    /// `channels`: one per message, dimension `user`.
    pub(super) const POSTERS: (&str, &str) = ("channels", "chat.posters");
    /// Core's HTTP layer (`plexichat`): requests per `plugin` and `status`, as totals.
    pub(super) const HTTP: (&str, &str) = ("plexichat", "http.requests");
    /// `ai`: one per request, dimensions `plugin`, `model`, `outcome`, `user`.
    pub(super) const AI_REQUESTS: (&str, &str) = ("ai", "ai.requests");
    /// `ai`: tokens per request, dimensions `plugin`, `model`.
    pub(super) const AI_TOKENS: (&str, &str) = ("ai", "ai.tokens");
}

/// `GET /api/v1/analytics/summary`' query.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// How many days back, today included (1 to 366; default 7).
    pub days: Option<u32>,
}

/// One day of the summary.
#[payload(response)]
#[derive(Debug, Default)]
pub struct SummaryDay {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Messages posted.
    pub messages: i64,
    /// People who posted at least once.
    pub active_users: i64,
    /// HTTP requests answered.
    pub http_requests: i64,
    /// Of which answered 4xx.
    pub http_client_errors: i64,
    /// Of which answered 5xx.
    pub http_server_errors: i64,
    /// AI requests.
    pub ai_requests: i64,
    /// AI tokens, sent and generated.
    pub ai_tokens: i64,
}

/// A count for one value of a dimension over the whole range.
#[payload(response)]
#[derive(Debug)]
pub struct Tally {
    /// The value (a channel id, a plugin name, a model).
    pub key: String,
    /// The sum over the range.
    pub total: i64,
}

/// `GET /api/v1/analytics/summary`' answer.
#[payload(response)]
#[derive(Debug)]
pub struct Summary {
    /// The first day covered.
    pub from: String,
    /// The last day covered (today).
    pub to: String,
    /// Each day, oldest first.
    pub days: Vec<SummaryDay>,
    /// Messages per channel over the range, most first (at most 20).
    pub messages_by_channel: Vec<Tally>,
    /// HTTP requests per plugin over the range, most first (`(core)`: core's own routes).
    pub http_by_plugin: Vec<Tally>,
    /// AI tokens per model over the range, most first.
    pub ai_tokens_by_model: Vec<Tally>,
    /// What recording has done since this server started: queued, dropped, refused.
    pub recording: AnalyticsStats,
}

/// The first day of a range of `days` ending today, and today.
fn range(days: u32) -> Result<(String, String), ApiError> {
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid_field("days", "between 1 and 366"));
    }
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let first = today
        .checked_sub(jiff::Span::new().days(i64::from(days) - 1))
        .map_err(ApiError::internal)?;
    Ok((first.to_string(), today.to_string()))
}

/// The server's use per day: messages and the people posting them, HTTP requests and their
/// errors, AI requests and tokens; the busiest channels, plugins and models; and whether
/// recording dropped anything. Operators only.
#[route(GET, "/summary")]
async fn summary(
    context: PluginContext<Analytics>,
    _operator: Operator,
    Query(query): Query<SummaryQuery>,
) -> Result<Json<Summary>, ApiError> {
    let (from, to) = range(query.days.unwrap_or(7))?;
    let analytics = context.analytics();
    let rows = |(plugin, metric): (&str, &str), group_by: &[&str]| {
        analytics.query(AnalyticsQuery {
            plugin: plugin.into(),
            metric: metric.into(),
            from: from.clone(),
            to: to.clone(),
            group_by: group_by.iter().map(|key| (*key).to_owned()).collect(),
        })
    };
    let messages = rows(feeds::MESSAGES, &["channel"]).await?;
    let http = rows(feeds::HTTP, &["plugin", "status"]).await?;
    let ai_requests = rows(feeds::AI_REQUESTS, &[]).await?;
    let ai_tokens = rows(feeds::AI_TOKENS, &["model"]).await?;
    let (plugin, metric) = feeds::POSTERS;
    let active = analytics
        .distinct(plugin, metric, "user", &from, &to)
        .await?;

    let mut days: BTreeMap<String, SummaryDay> = BTreeMap::new();
    fn entry<'a>(days: &'a mut BTreeMap<String, SummaryDay>, name: &str) -> &'a mut SummaryDay {
        days.entry(name.to_owned()).or_insert_with(|| SummaryDay {
            day: name.to_owned(),
            ..SummaryDay::default()
        })
    }
    for row in &messages {
        entry(&mut days, &row.day).messages += row.total;
    }
    for (name, people) in &active {
        entry(&mut days, name).active_users = *people;
    }
    for row in &http {
        let entry = entry(&mut days, &row.day);
        entry.http_requests += row.total;
        match row
            .group
            .get("status")
            .map(|status| status.as_bytes().first())
        {
            Some(Some(b'4')) => entry.http_client_errors += row.total,
            Some(Some(b'5')) => entry.http_server_errors += row.total,
            _ => {}
        }
    }
    for row in &ai_requests {
        entry(&mut days, &row.day).ai_requests += row.total;
    }
    for row in &ai_tokens {
        entry(&mut days, &row.day).ai_tokens += row.total;
    }
    Ok(Json(Summary {
        from,
        to,
        days: days.into_values().collect(),
        messages_by_channel: tally(&messages, "channel", 20),
        http_by_plugin: tally(&http, "plugin", usize::MAX),
        ai_tokens_by_model: tally(&ai_tokens, "model", usize::MAX),
        recording: analytics.stats(),
    }))
}

/// The totals of `rows` per value of `key`, most first, at most `limit`.
fn tally(rows: &[AnalyticsRow], key: &str, limit: usize) -> Vec<Tally> {
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for row in rows {
        let value = row.group.get(key).map_or("", String::as_str);
        *totals.entry(value).or_default() += row.total;
    }
    let mut totals: Vec<Tally> = totals
        .into_iter()
        .map(|(key, total)| Tally {
            key: key.to_owned(),
            total,
        })
        .collect();
    totals.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
    totals.truncate(limit);
    totals
}

/// `GET /api/v1/analytics/query`' query.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct QueryParameters {
    /// The plugin that records the metric (`plexichat` for core's HTTP layer).
    pub plugin: String,
    /// The metric, e.g. `chat.messages`.
    pub metric: String,
    /// The first day, `YYYY-MM-DD` (UTC).
    pub from: String,
    /// The last day, included.
    pub to: String,
    /// Dimensions to group by, comma-separated (`channel,user`); absent: none, one row a day.
    pub group_by: Option<String>,
}

/// `GET /api/v1/analytics/query`' answer.
#[payload(response)]
#[derive(Debug)]
pub struct QueryAnswer {
    /// One row per day and group, by day.
    pub rows: Vec<AnalyticsRow>,
}

/// Any plugin's daily rollups of one metric, grouped by some of its dimensions. Operators
/// only.
#[route(GET, "/query")]
async fn query(
    context: PluginContext<Analytics>,
    _operator: Operator,
    Query(query): Query<QueryParameters>,
) -> Result<Json<QueryAnswer>, ApiError> {
    check_range(&query.from, &query.to)?;
    let group_by = query
        .group_by
        .as_deref()
        .map(|keys| {
            keys.split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let rows = context
        .analytics()
        .query(AnalyticsQuery {
            plugin: query.plugin,
            metric: query.metric,
            from: query.from,
            to: query.to,
            group_by,
        })
        .await?;
    Ok(Json(QueryAnswer { rows }))
}
