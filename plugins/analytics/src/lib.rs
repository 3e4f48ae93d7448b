//! `analytics`: the provider of `context.analytics()`. Records arrive through core's bounded
//! queue; a task drains them in batches (at most `flush_seconds` apart), sums them per day,
//! plugin, metric and dimensions, and adds the sums to `analytics_daily` in one transaction.
//! Queries read those rollups. Recording is the seed's "analytics hooks": a plugin records in
//! its routes, or in an `#[on_event]` handler of another plugin's events.

pub mod api;
mod rollup;

use std::sync::Arc;

use accounts::Accounts;
use plexichat::prelude::*;

/// Daily rollups of what plugins record, and the operators' summary of chat, HTTP and AI use.
#[plugin(
    author = "PlexiChat",
    type = core,
    dependencies = [Accounts],
    permissions = ["analytics", "database", "services:provide"],
    migrations = "migrations",
    config = AnalyticsConfig,
    lifecycle = true,
    tags = ["analytics", "services"],
)]
#[derive(Default)]
pub struct Analytics;

/// `[plugins.analytics]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsConfig {
    /// Records waiting to be written at most; past this, recording counts drops rather than
    /// slowing anyone (`GET /api/v1/analytics/summary` shows them).
    #[schemars(range(min = 1, max = 10000000))]
    pub queue_capacity: u32,
    /// The longest a record waits before it is written, in seconds.
    #[schemars(range(min = 1, max = 3600))]
    pub flush_seconds: u32,
    /// How long daily rollups are kept, in days.
    #[schemars(range(min = 1, max = 36500))]
    pub keep_days: u32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            queue_capacity: 65_536,
            flush_seconds: 2,
            keep_days: 400,
        }
    }
}

impl Lifecycle for Analytics {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        let config = context.config::<Analytics>().unwrap_or_default();
        let store = Arc::new(rollup::Store::new(context.db()));
        let feed = context.provide_analytics(store, config.queue_capacity as usize)?;
        if context.runs_scheduled_jobs() {
            let feed = Arc::new(tokio::sync::Mutex::new(feed));
            context.spawn("rollup", move |task| rollup::run(task, Arc::clone(&feed)));
            context.spawn("prune", rollup::prune);
        }
        // A one-shot process (a command) drops the feed: what it records is counted as
        // dropped, since it would stop before the next flush anyway.
        Ok(())
    }
}
