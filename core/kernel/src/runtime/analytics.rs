//! The analytics service: counts that plugins record (`context.analytics().record(..)`) and
//! query as daily rollups. Recording never waits: a record goes into a bounded queue that a
//! provider plugin (the `analytics` plugin) drains in batches, and a full queue counts a drop
//! instead of slowing the request. Core keeps the queue and the counters; the provider keeps
//! the rollups and answers queries, so an operator can leave it out and recording costs a
//! counter.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::abi::plugin::Plugin;
use crate::error::ApiError;
use crate::runtime::Runtime;
use crate::runtime::state::PluginStatus;
use crate::storage::database::now_millis;

/// The longest metric name or dimension key, in bytes.
pub const MAX_NAME: usize = 64;
/// The longest dimension value, in bytes.
pub const MAX_VALUE: usize = 200;
/// The most dimensions on one record.
pub const MAX_DIMENSIONS: usize = 8;
/// The longest a record's dimensions may be as JSON, in bytes: they are part of a key.
pub const MAX_DIMENSIONS_JSON: usize = 1024;

/// One recorded occurrence, as the provider receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsRecord {
    /// When, in milliseconds since the epoch.
    pub at: i64,
    /// The plugin that recorded it.
    pub plugin: &'static str,
    /// What happened: `chat.message`, `http.requests`.
    pub metric: &'static str,
    /// Its dimensions as a JSON object with sorted keys (`{"channel":"4","user":"12"}`), so
    /// that equal dimensions are equal strings.
    pub dimensions: String,
    /// How much: 1 for an occurrence, or a quantity (tokens, bytes).
    pub value: i64,
}

/// The rollups a query reads: one row per day and group.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AnalyticsRow {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The values of the dimensions grouped by (empty when the query groups by none).
    pub group: BTreeMap<String, String>,
    /// How many records.
    pub count: i64,
    /// The sum of their values.
    pub total: i64,
}

/// A query of the rollups: one metric of one plugin over a range of days, grouped by some of
/// its dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsQuery {
    /// The plugin that records the metric.
    pub plugin: String,
    /// The metric.
    pub metric: String,
    /// The first day, `YYYY-MM-DD`.
    pub from: String,
    /// The last day, included.
    pub to: String,
    /// The dimensions to group by; the others are summed over.
    pub group_by: Vec<String>,
}

/// Why a query failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// No provider is installed or running.
    #[error("analytics is unavailable: {0}")]
    Unavailable(String),
    /// The query is wrong; `field` names what to fix.
    #[error("{field}: {message}")]
    Invalid {
        /// The query's field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The provider's storage failed.
    #[error("analytics: {0}")]
    Storage(String),
}

impl From<AnalyticsError> for ApiError {
    fn from(error: AnalyticsError) -> ApiError {
        match error {
            AnalyticsError::Unavailable(_) => {
                ApiError::unavailable(error.to_string()).with_code("analytics_unavailable")
            }
            AnalyticsError::Invalid { field, message } => ApiError::invalid_field(field, message),
            AnalyticsError::Storage(message) => ApiError::internal(message),
        }
    }
}

/// A boxed future of an analytics query.
pub type AnalyticsFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, AnalyticsError>> + Send + 'a>>;

/// What a provider plugin implements to answer queries.
pub trait AnalyticsProvider: Send + Sync + 'static {
    /// The rows of `query`, by day then group.
    fn query(&self, query: AnalyticsQuery) -> AnalyticsFuture<'_, Vec<AnalyticsRow>>;
    /// How many distinct values dimension `dimension` of `metric` took on each day of
    /// `from..=to` (daily active users: the distinct `user` of `chat.message`).
    fn distinct(
        &self,
        plugin: String,
        metric: String,
        dimension: String,
        from: String,
        to: String,
    ) -> AnalyticsFuture<'_, Vec<(String, i64)>>;
}

/// What recording has done since start: the provider's summary shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AnalyticsStats {
    /// Records queued for the provider.
    pub queued: u64,
    /// Records dropped because the queue was full.
    pub dropped_full: u64,
    /// Records dropped because no provider was running.
    pub dropped_no_provider: u64,
    /// Records refused for an invalid name or dimension (each also logged).
    pub rejected: u64,
}

/// The queue, the provider and the counters, kept with the runtime.
#[derive(Default)]
pub(crate) struct Hub {
    /// Whether a provider has opened the queue: checked first, so that recording without
    /// one costs a load and a counter.
    open: AtomicBool,
    sender: RwLock<Option<mpsc::Sender<AnalyticsRecord>>>,
    provider: RwLock<Option<(&'static str, Arc<dyn AnalyticsProvider>)>>,
    queued: AtomicU64,
    dropped_full: AtomicU64,
    dropped_no_provider: AtomicU64,
    rejected: AtomicU64,
}

impl Hub {
    fn stats(&self) -> AnalyticsStats {
        AnalyticsStats {
            queued: self.queued.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            dropped_no_provider: self.dropped_no_provider.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// Checks and queues `value` of `metric` for `plugin`, or counts why not: no provider
    /// (an atomic load, before any work), a bad name (also logged), or a full queue.
    fn record(
        &self,
        plugin: &'static str,
        metric: &'static str,
        dimensions: &[(&str, &str)],
        value: i64,
    ) {
        if !self.open.load(Ordering::Acquire) {
            self.dropped_no_provider.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let dimensions = if valid_name(metric) {
            canonical(dimensions)
        } else {
            Err(format!(
                "use lowercase letters, digits, `_` and `.` (at most {MAX_NAME})"
            ))
        };
        match dimensions {
            Ok(dimensions) => self.push(AnalyticsRecord {
                at: now_millis(),
                plugin,
                metric,
                dimensions,
                value,
            }),
            Err(problem) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(plugin, metric, "analytics record refused: {problem}");
            }
        }
    }

    /// Queues one record, or counts why not.
    fn push(&self, record: AnalyticsRecord) {
        let sender = self
            .sender
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        match sender.as_ref().map(|sender| sender.try_send(record)) {
            Some(Ok(())) => &self.queued,
            Some(Err(mpsc::error::TrySendError::Full(_))) => &self.dropped_full,
            Some(Err(mpsc::error::TrySendError::Closed(_))) | None => &self.dropped_no_provider,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// What the provider drains: records in the order they were queued.
pub type AnalyticsFeed = mpsc::Receiver<AnalyticsRecord>;

/// Installs `provider` for `plugin` and opens a queue of `capacity` records for it; an error
/// naming the other provider if one is installed.
pub(crate) fn install(
    runtime: &Runtime,
    plugin: &'static str,
    provider: Arc<dyn AnalyticsProvider>,
    capacity: usize,
) -> Result<AnalyticsFeed, String> {
    let hub = runtime.extension(Hub::default);
    let mut current = hub
        .provider
        .write()
        .unwrap_or_else(|poison| poison.into_inner());
    if let Some((other, _)) = &*current
        && *other != plugin
    {
        return Err(format!(
            "plugin `{other}` already provides the analytics service; only one provider can be compiled in and enabled"
        ));
    }
    let (sender, feed) = mpsc::channel(capacity.max(1));
    *current = Some((plugin, provider));
    *hub.sender
        .write()
        .unwrap_or_else(|poison| poison.into_inner()) = Some(sender);
    hub.open.store(true, Ordering::Release);
    Ok(feed)
}

/// Whether `name` is a metric name or dimension key: lowercase ASCII letters, digits, `_` and
/// `.`, starting with a letter, at most [`MAX_NAME`] bytes.
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// `dimensions` as the JSON object [`AnalyticsRecord::dimensions`] holds, or what is wrong.
fn canonical(dimensions: &[(&str, &str)]) -> Result<String, String> {
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(format!("more than {MAX_DIMENSIONS} dimensions"));
    }
    let mut sorted: [(&str, &str); MAX_DIMENSIONS] = [("", ""); MAX_DIMENSIONS];
    sorted[..dimensions.len()].copy_from_slice(dimensions);
    let sorted = &mut sorted[..dimensions.len()];
    sorted.sort_unstable_by_key(|(key, _)| *key);
    let mut json = String::with_capacity(2 + dimensions.len() * 24);
    json.push('{');
    for (index, (key, value)) in sorted.iter().enumerate() {
        if !valid_name(key) {
            return Err(format!(
                "dimension `{key}`: use lowercase letters, digits, `_` and `.` (at most {MAX_NAME})"
            ));
        }
        if index > 0 && sorted[index - 1].0 == *key {
            return Err(format!("dimension `{key}` appears twice"));
        }
        if value.len() > MAX_VALUE {
            return Err(format!(
                "dimension `{key}`: its value is longer than {MAX_VALUE} bytes"
            ));
        }
        if index > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(key);
        json.push_str("\":");
        // Keys are plain by the check above; values need JSON's escaping, which the usual
        // ones (ids, names) do not: those are copied as they are.
        if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            json.push('"');
            json.push_str(value);
            json.push('"');
        } else {
            json.push_str(&serde_json::Value::from(*value).to_string());
        }
    }
    json.push('}');
    if json.len() > MAX_DIMENSIONS_JSON {
        return Err(format!(
            "the dimensions take {} bytes as JSON; at most {MAX_DIMENSIONS_JSON}",
            json.len()
        ));
    }
    Ok(json)
}

/// Plugin `P`'s handle on analytics, from `context.analytics()`. Cheap to clone.
pub struct Analytics<P> {
    hub: Arc<Hub>,
    runtime: Runtime,
    plugin: PhantomData<fn() -> P>,
}

impl<P> Clone for Analytics<P> {
    fn clone(&self) -> Self {
        Analytics {
            hub: Arc::clone(&self.hub),
            runtime: self.runtime.clone(),
            plugin: PhantomData,
        }
    }
}

impl<P: Plugin> std::fmt::Debug for Analytics<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics")
            .field("plugin", &P::NAME)
            .finish()
    }
}

impl<P: Plugin> Analytics<P> {
    pub(crate) fn new(runtime: &Runtime) -> Analytics<P> {
        Analytics {
            hub: runtime.extension(Hub::default),
            runtime: runtime.clone(),
            plugin: PhantomData,
        }
    }

    /// Counts one occurrence of `metric` with `dimensions`: `record("order.paid",
    /// &[("currency", "EUR")])`. Never waits; see the module's documentation.
    pub fn record(&self, metric: &'static str, dimensions: &[(&str, &str)]) {
        self.record_value(metric, dimensions, 1);
    }

    /// Records `value` (tokens, bytes, cents) of `metric`: queries sum it as `total`.
    pub fn record_value(&self, metric: &'static str, dimensions: &[(&str, &str)], value: i64) {
        self.hub.record(P::NAME, metric, dimensions, value);
    }

    /// What recording has done since start, for every plugin.
    pub fn stats(&self) -> AnalyticsStats {
        self.hub.stats()
    }

    fn provider(&self) -> Result<Arc<dyn AnalyticsProvider>, AnalyticsError> {
        let provider = self
            .hub
            .provider
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some((plugin, provider)) = provider.as_ref() else {
            return Err(AnalyticsError::Unavailable(
                "no analytics provider is compiled in (build with the `analytics` plugin)".into(),
            ));
        };
        match self.runtime.status(plugin) {
            Some(PluginStatus::Running) => Ok(Arc::clone(provider)),
            status => Err(AnalyticsError::Unavailable(format!(
                "the provider plugin `{plugin}` is not running ({})",
                status.map_or("unknown", |status| status.name())
            ))),
        }
    }

    /// The daily rollups of `query`.
    pub async fn query(&self, query: AnalyticsQuery) -> Result<Vec<AnalyticsRow>, AnalyticsError> {
        self.provider()?.query(query).await
    }

    /// Distinct values of `dimension` per day; see [`AnalyticsProvider::distinct`].
    pub async fn distinct(
        &self,
        plugin: &str,
        metric: &str,
        dimension: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, i64)>, AnalyticsError> {
        self.provider()?
            .distinct(
                plugin.into(),
                metric.into(),
                dimension.into(),
                from.into(),
                to.into(),
            )
            .await
    }
}

/// Records `value` of `metric` for core itself (the HTTP layer's request counts), as plugin
/// `plexichat`.
pub fn record_for_core(
    runtime: &Runtime,
    metric: &'static str,
    dimensions: &[(&str, &str)],
    value: i64,
) {
    runtime.extension(Hub::default).record(
        crate::runtime::log_sinks::CORE,
        metric,
        dimensions,
        value,
    );
}

/// Whether a provider has opened the queue: core's own feeds skip their work otherwise.
pub fn has_provider(runtime: &Runtime) -> bool {
    runtime.extension(Hub::default).open.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_are_sorted_and_escaped() {
        assert_eq!(
            canonical(&[("user", "12"), ("channel", "say \"hi\"\n")]).unwrap(),
            r#"{"channel":"say \"hi\"\n","user":"12"}"#
        );
        assert_eq!(canonical(&[]).unwrap(), "{}");
    }

    #[test]
    fn bad_dimensions_say_what_is_wrong() {
        assert!(canonical(&[("User", "1")]).unwrap_err().contains("`User`"));
        assert!(
            canonical(&[("a", "1"), ("a", "2")])
                .unwrap_err()
                .contains("twice")
        );
        let long = "x".repeat(MAX_VALUE + 1);
        assert!(canonical(&[("a", &long)]).unwrap_err().contains("longer"));
        let many = [("a", ""); MAX_DIMENSIONS + 1];
        assert!(canonical(&many).is_err());
        // Eight values of 200 quotes each are 3,200 escaped bytes: too long for a key.
        let quotes = "\"".repeat(MAX_VALUE);
        let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let wide: Vec<(&str, &str)> = keys.iter().map(|key| (*key, quotes.as_str())).collect();
        assert!(canonical(&wide).unwrap_err().contains("as JSON"));
        assert!(!valid_name("http requests"));
        assert!(valid_name("http.requests_2"));
    }
}
