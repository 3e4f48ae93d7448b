//! `webhooks`: events delivered to the URLs operators register, signed per the Standard
//! Webhooks specification, and incoming hooks that post to a channel.
//!
//! Plugins write the events their manifest lists in `webhooks = [..]` to core's outbox in the
//! transaction of the change that caused them. This plugin takes them from the outbox and, in
//! the same transaction, records one delivery per endpoint whose filter matches
//! (`store::fan_out`); a worker then claims due deliveries with a lease, sends them and records
//! each attempt, retrying with exponential backoff and jitter. Everything it knows is in the
//! database, so a crash or a restart loses nothing: a claim whose process died expires and
//! the delivery is sent again with the same `webhook-id`.

pub mod api;
mod deliver;
pub mod incoming;
mod self_tests;
mod signing;
mod store;

use std::sync::OnceLock;

use accounts::Accounts;
use channels::Channels;
use plexichat::http_client::Destinations;
use plexichat::lifecycle::Db;
use plexichat::prelude::*;

pub use api::{Delivery, Endpoint};

/// Signed, retried and logged deliveries of events to registered URLs; incoming hooks that
/// post to a channel.
#[plugin(
    author = "PlexiChat",
    type = core,
    prefix = "/",
    dependencies = [Accounts, Channels],
    permissions = ["database", "events:publish", "http:client", "outbox:read", "plugins:read"],
    webhooks = [EndpointDisabled],
    migrations = "migrations",
    config = WebhooksConfig,
    lifecycle = true,
    tags = ["integrations"],
)]
#[derive(Default)]
pub struct Webhooks {
    /// Its context, set when it starts.
    context: OnceLock<PluginContext<Webhooks>>,
    /// Incoming hooks' rate limit.
    incoming: incoming::HookLimiter,
    /// The client endpoints are called with.
    clients: deliver::Clients,
}

/// `[plugins.webhooks]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhooksConfig {
    /// Addresses and CIDR ranges endpoints may be at besides public ones, e.g.
    /// `["127.0.0.1", "10.0.0.0/8"]`. Loopback, private, link-local (with cloud metadata),
    /// shared and other special addresses are refused unless listed.
    pub allow_addresses: Vec<String>,
    /// How long one attempt may take, connection and answer included, in seconds.
    #[schemars(range(min = 1, max = 120))]
    pub timeout_seconds: u32,
    /// Attempts per delivery before it is marked failed.
    #[schemars(range(min = 1, max = 50))]
    pub max_attempts: u32,
    /// The wait before the first retry, in seconds; it doubles with each attempt.
    #[schemars(range(min = 1, max = 86400))]
    pub retry_base_seconds: u32,
    /// The longest wait between two attempts, in seconds.
    #[schemars(range(min = 1, max = 86400))]
    pub retry_max_seconds: u32,
    /// An endpoint whose deliveries have all failed for this long is disabled, and its owner
    /// told by a `webhooks.endpoint.disabled` event; in minutes.
    #[schemars(range(min = 1, max = 525600))]
    pub disable_after_minutes: u32,
    /// Deliveries sent at once by this server.
    #[schemars(range(min = 1, max = 1024))]
    pub concurrency: u32,
    /// How long finished deliveries and their attempts are kept, in days.
    #[schemars(range(min = 1, max = 3650))]
    pub keep_days: u32,
    /// Messages one incoming hook may post per minute, and at once (429 with `Retry-After`
    /// past that); each server counts the posts it serves.
    #[schemars(range(min = 1, max = 100000))]
    pub incoming_per_minute: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_addresses: Vec::new(),
            timeout_seconds: 15,
            max_attempts: 8,
            retry_base_seconds: 5,
            retry_max_seconds: 6 * 3600,
            disable_after_minutes: 5 * 24 * 60,
            concurrency: 16,
            keep_days: 30,
            incoming_per_minute: 60,
        }
    }
}

impl WebhooksConfig {
    /// Where endpoints may be.
    pub(crate) fn destinations(&self) -> Result<Destinations, String> {
        Destinations::allowing(&self.allow_addresses)
    }
}

/// Published (and delivered to the other endpoints) when an endpoint is disabled because its
/// deliveries kept failing for `disable_after_minutes`, or because it answered 410 Gone.
#[event(name = "webhooks.endpoint.disabled")]
#[derive(Clone, Debug)]
pub struct EndpointDisabled {
    /// The endpoint.
    pub endpoint_id: i64,
    /// Where it is: its scheme, host and port only (its path, query and any credentials in
    /// the URL are the receiver's secrets, and this event goes to other endpoints).
    pub origin: String,
    /// Who registered it (`None`: the admin token).
    pub owner_id: Option<i64>,
    /// Why.
    pub reason: String,
}

impl Lifecycle for Webhooks {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        let config = context.config::<Webhooks>().unwrap_or_default();
        config.destinations()?;
        let _ = self.context.set(context.clone());
        if context.runs_scheduled_jobs() {
            context.spawn("deliver", deliver::run);
            context.spawn("prune", deliver::prune);
        }
        Ok(())
    }
}

/// Refuses a reload whose `allow_addresses` has an entry that is not an address or range:
/// every delivery would fail on it.
#[on_event]
fn check_reload(
    _plugin: &Webhooks,
    change: &plexichat::event::ConfigChanging,
) -> Result<(), String> {
    match change.config_of::<Webhooks>() {
        Some(config) => config
            .destinations()
            .map(|_| ())
            .map_err(|problem| format!("[plugins.webhooks] allow_addresses: {problem}")),
        None => Ok(()),
    }
}

impl Webhooks {
    /// The plugin's context, once it has started.
    pub(crate) fn context(&self) -> Result<&PluginContext<Webhooks>, ApiError> {
        self.context
            .get()
            .ok_or_else(|| ApiError::unavailable("webhooks has not started"))
    }

    /// The database, once the plugin has started.
    pub(crate) fn db(&self) -> Result<Db<Webhooks>, ApiError> {
        Ok(self.context()?.db())
    }
}
