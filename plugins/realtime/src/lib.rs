//! `realtime`: the WebSocket (`GET /api/v1/ws`) through which people's clients hear what
//! happens in their channels as it happens: every channel event with its sequence number,
//! typing, presence. A client that was away says where it stopped (`resume`) and is sent
//! what it missed from the channels' event logs, so delivery never depends on this
//! process's memory of who was connected.
//!
//! The protocol is in `docs/chat-api.md`; [`socket`] serves one connection, [`hub`] hands
//! events to the connections that listen.

mod hub;
mod self_tests;
pub mod socket;

use std::sync::Arc;

use accounts::{Accounts, PresenceUpdated, SessionEnded};
use channels::{ChannelEvent, Channels};
use plexichat::extract::ws::WebSocketUpgrade;
use plexichat::prelude::*;
use plexichat::response::Response;

use crate::hub::{Hub, Membership};

/// Live delivery of channel events, typing and presence over a WebSocket, with resume.
#[plugin(
    author = "PlexiChat",
    type = core,
    prefix = "/api/v1",
    dependencies = [Accounts, Channels],
    permissions = ["events:publish"],
    config = RealtimeConfig,
    tags = ["chat"],
)]
#[derive(Default)]
pub struct Realtime {
    hub: Hub,
}

/// `[plugins.realtime]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealtimeConfig {
    /// Seconds a new connection has to send its `auth` frame.
    #[schemars(range(min = 1, max = 120))]
    pub auth_timeout_secs: u32,
    /// Frames waiting for one client before it counts as too slow and is cut off (close code
    /// 4429; it reconnects and resumes).
    #[schemars(range(min = 16, max = 65536))]
    pub queue_frames: u32,
    /// Seconds between the server's pings.
    #[schemars(range(min = 1, max = 600))]
    pub ping_interval_secs: u32,
    /// Seconds without any frame from a client (pongs count) before it is closed (4408).
    #[schemars(range(min = 2, max = 3600))]
    pub idle_timeout_secs: u32,
    /// Seconds one frame may take to be written before the client counts as not reading.
    #[schemars(range(min = 1, max = 600))]
    pub send_timeout_secs: u32,
    /// Events replayed per channel on resume; beyond that the client is told to reload
    /// (`resync`).
    #[schemars(range(min = 1, max = 1000000))]
    pub replay_limit: u32,
    /// Milliseconds between two typing notices of one connection in one channel.
    #[schemars(range(min = 0, max = 60000))]
    pub typing_interval_ms: u32,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            auth_timeout_secs: 10,
            queue_frames: 512,
            ping_interval_secs: 30,
            idle_timeout_secs: 90,
            send_timeout_secs: 10,
            replay_limit: 5000,
            typing_interval_ms: 2000,
        }
    }
}

impl Realtime {
    /// WebSocket connections open on this process now.
    pub fn connections(&self) -> usize {
        self.hub.len()
    }

    /// Connections cut off for falling behind, since start.
    pub fn cut_off(&self) -> u64 {
        self.hub.cut_off.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Someone is typing in a channel: published by their connection, passed to the channel's
/// other listeners.
#[event(name = "realtime.typing")]
#[derive(Clone, Debug)]
pub struct Typing {
    /// The channel.
    pub channel_id: i64,
    /// Who types.
    pub user_id: i64,
}

/// The WebSocket. Its first frame is `{"type": "auth", "token": "<access token>",
/// "resume": {"<channel id>": <last seq seen>}}`; see `docs/chat-api.md` for the frames and
/// close codes.
#[route(GET, "/ws")]
async fn websocket(
    plugin: PluginState<Realtime>,
    accounts: PluginState<Accounts>,
    channels: PluginState<Channels>,
    context: PluginContext<Realtime>,
    config: PluginConfig<Realtime>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let server = socket::Server {
        realtime: plugin.0,
        accounts: accounts.0,
        channels: channels.0,
        context,
        config: config.0,
    };
    // Clients send small frames; a large one is a mistake or an attack. The buffers are small
    // because every idle connection holds them: tungstenite zero-fills its whole read buffer
    // on the first read, and at the default 128 KiB 10,000 idle connections held 1.3 GB.
    upgrade
        .max_message_size(16 * 1024)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| socket::serve(socket, server))
}

#[on_event]
fn deliver(realtime: &Realtime, event: &ChannelEvent) {
    let record = &event.record;
    let user = record.data["user_id"].as_i64();
    let membership: Vec<Membership> = match (record.kind.as_str(), user) {
        ("member.joined", Some(user)) => vec![Membership::Joined(user)],
        ("member.left", Some(user)) => vec![Membership::Left(user)],
        ("channel.created", _) => record.data["member_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .map(Membership::Joined)
            .collect(),
        _ => Vec::new(),
    };
    let frame: Arc<str> = Arc::from(socket::event_frame(record));
    realtime
        .hub
        .event(record.channel_id, record.seq, frame, &membership);
}

#[on_event]
fn typing(realtime: &Realtime, typing: &Typing) {
    let frame =
        json!({ "type": "typing", "channel_id": typing.channel_id, "user_id": typing.user_id });
    realtime.hub.to_channel(
        typing.channel_id,
        Arc::from(frame.to_string()),
        typing.user_id,
    );
}

#[on_event]
fn presence(realtime: &Realtime, presence: &PresenceUpdated) {
    let frame = json!({
        "type": "presence.updated",
        "user_id": presence.user_id,
        "presence": presence.presence,
        "status_text": presence.status_text,
    });
    realtime.hub.to_everyone(Arc::from(frame.to_string()));
}

#[on_event]
fn session_ended(realtime: &Realtime, ended: &SessionEnded) {
    realtime.hub.end_session(ended.session_id, ended.user_id);
}
