//! `channels`: conversations. Public, private and direct channels with their members;
//! messages with threads, edits, tombstones and reactions; read markers and unread counts;
//! search over what the caller may read.
//!
//! Every change to a channel is an event with the channel's next sequence number, taken in
//! the transaction that writes the change and logged with it (`channels_events`), then
//! published on the bus as [`ChannelEvent`]. The database is the truth: a client that missed
//! events asks for those after the last number it saw (`GET /api/v1/channels/{id}/events`),
//! whichever server it reaches.

pub mod api;
pub mod messages;
mod self_tests;
mod store;
mod text;

use std::sync::OnceLock;
use std::time::Duration;

use accounts::Accounts;
use plexichat::lifecycle::Db;
use plexichat::prelude::*;
use plexichat::sqlx::AnyPool;

pub use api::{Access, Channel, EventRecord, Member, Membership};
pub use messages::{Message, PostMessage, ReactionSummary};

/// Channels and their messages: public, private and direct conversations, threads,
/// reactions, read markers and search.
#[plugin(
    author = "PlexiChat",
    type = core,
    prefix = "/api/v1",
    dependencies = [Accounts],
    permissions = ["analytics", "database", "events:publish"],
    webhooks = [ChannelEvent],
    migrations = "migrations",
    config = ChannelsConfig,
    lifecycle = true,
    tags = ["chat"],
)]
#[derive(Default)]
pub struct Channels {
    /// The database, set when the plugin starts.
    db: OnceLock<Db<Channels>>,
    /// Its context, set when it starts: what [`Channels::post_as`] posts with.
    context: OnceLock<PluginContext<Channels>>,
    /// How fast each person posts.
    sends: plexichat::limit::RateLimiter<i64>,
}

/// `[plugins.channels]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelsConfig {
    /// The longest message, in characters.
    #[schemars(range(min = 1, max = 65536))]
    pub max_message_chars: u32,
    /// How long a create's `Idempotency-Key` is remembered, in hours.
    #[schemars(range(min = 1, max = 720))]
    pub idempotency_hours: u32,
    /// Messages one person may post per second, on average (429 with `Retry-After` past
    /// that); each server counts the posts it serves.
    #[schemars(range(min = 1, max = 100000))]
    pub messages_per_second: u32,
    /// Messages one person may post at once before that rate applies.
    #[schemars(range(min = 1, max = 100000))]
    pub message_burst: u32,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        ChannelsConfig {
            max_message_chars: 4000,
            idempotency_hours: 24,
            messages_per_second: 10,
            message_burst: 50,
        }
    }
}

impl Lifecycle for Channels {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        let _ = self.db.set(context.db());
        let _ = self.context.set(context.clone());
        if context.runs_scheduled_jobs() {
            context.spawn("prune", prune);
        }
        Ok(())
    }
}

impl Channels {
    /// The pool, once the plugin has started.
    fn pool(&self) -> Result<&AnyPool, ApiError> {
        Ok(self.db()?.pool())
    }

    /// The database (with [`Db::begin_write`] for changes), once the plugin has started.
    fn db(&self) -> Result<&Db<Channels>, ApiError> {
        self.db
            .get()
            .ok_or_else(|| ApiError::unavailable("channels has not started"))
    }
}

/// Forgets idempotency keys past their time, hourly.
async fn prune(task: TaskContext<Channels>) -> Result<(), BoxError> {
    loop {
        let config = task.config::<Channels>().unwrap_or_default();
        let keep = Duration::from_secs(u64::from(config.idempotency_hours) * 3600);
        let before = store::now_ms() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        store::prune(task.db().pool(), before).await?;
        if !task.sleep(Duration::from_secs(3600)).await {
            return Ok(());
        }
    }
}

/// Published after every change to a channel, once it is committed, and written to the outbox
/// in the change's transaction (webhooks deliver it as `channels.event`): `kind` is one of
/// `channel.created`, `channel.updated`, `member.joined`, `member.left`, `message.created`,
/// `message.updated`, `message.deleted`, `reaction.added`, `reaction.removed`. The same
/// record `GET /api/v1/channels/{id}/events` answers, so a handler that missed one can read
/// it there.
#[event(name = "channels.event")]
#[derive(Clone, Debug)]
pub struct ChannelEvent {
    /// The event.
    #[serde(flatten)]
    pub record: EventRecord,
    /// Whether anyone signed in may read the channel (else only its members).
    pub public: bool,
}

/// Proposed before a message is posted: a pre-handler may rewrite the body or refuse the
/// message (the client gets 403 naming the plugin and its reason).
#[event(name = "channels.message.posting", vetoable)]
#[derive(Clone, Debug)]
pub struct MessagePosting {
    /// The channel.
    pub channel_id: i64,
    /// Who posts it.
    pub author_id: i64,
    /// The text, as the pre-handlers so far left it.
    pub body: String,
    /// The thread it replies to, if any.
    pub thread_root_id: Option<i64>,
    /// Files attached to it.
    pub file_ids: Vec<i64>,
    /// Set by the plugin that keeps files once it has checked that the author may attach
    /// each of `file_ids` (and let the channel's readers read them); a message with files no
    /// plugin accepted is refused.
    pub files_accepted: bool,
}
