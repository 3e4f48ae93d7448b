//! One WebSocket: its first frame authenticates and may ask to resume; then the events of
//! the person's channels, in each channel's order, exactly once, with gaps filled from the
//! database; typing, subscriptions to public channels, and pings both ways.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use accounts::{Accounts, Caller};
use channels::{Access, Channels, EventRecord};
use plexichat::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use plexichat::prelude::*;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, timeout};

use crate::hub::Outbound;
use crate::{Realtime, RealtimeConfig, Typing};

/// Close codes a client may act on (4000–4999 are the application's).
pub mod close {
    /// The first frame was not a valid `auth` frame.
    pub const BAD_AUTH_FRAME: u16 = 4400;
    /// The token does not authenticate (expired: renew it and reconnect).
    pub const UNAUTHORIZED: u16 = 4401;
    /// The session ended (signed out, revoked).
    pub const SESSION_ENDED: u16 = 4403;
    /// No `auth` frame in time, or no sign of life from the client.
    pub const TIMEOUT: u16 = 4408;
    /// The client fell behind the events sent to it; reconnect and resume.
    pub const TOO_SLOW: u16 = 4429;
}

/// What a connection needs from the server.
pub(crate) struct Server {
    pub realtime: Arc<Realtime>,
    pub accounts: Arc<Accounts>,
    pub channels: Arc<Channels>,
    pub context: PluginContext<Realtime>,
    pub config: Arc<RealtimeConfig>,
}

/// A frame from the client.
#[payload(request)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Incoming {
    Auth {
        token: String,
        #[serde(default)]
        resume: HashMap<String, i64>,
    },
    Ping,
    Typing {
        channel_id: i64,
    },
    Subscribe {
        channel_id: i64,
    },
    Unsubscribe {
        channel_id: i64,
    },
}

fn text(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

fn error_frame(code: &str, detail: &str) -> Message {
    text(&json!({ "type": "error", "code": code, "detail": detail }))
}

/// The frame of one channel event.
pub(crate) fn event_frame(record: &EventRecord) -> String {
    json!({
        "type": record.kind,
        "event_id": record.event_id,
        "channel_id": record.channel_id,
        "seq": record.seq,
        "data": record.data,
        "at": record.at,
    })
    .to_string()
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = timeout(
        Duration::from_secs(2),
        socket.send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }))),
    )
    .await;
}

/// A connection after it authenticated.
struct Connection<'a> {
    server: &'a Server,
    socket: WebSocket,
    caller: Caller,
    hub_id: u64,
    /// The last sequence number sent, per channel: what makes delivery in order and once.
    last: HashMap<i64, i64>,
    /// When the caller last sent typing, per channel.
    typed: HashMap<i64, Instant>,
}

/// Serves one upgraded socket to its end.
pub(crate) async fn serve(mut socket: WebSocket, server: Server) {
    let config = Arc::clone(&server.config);
    let first = timeout(
        Duration::from_secs(u64::from(config.auth_timeout_secs)),
        socket.recv(),
    )
    .await;
    let frame = match first {
        Err(_) => {
            close_with(&mut socket, close::TIMEOUT, "send the auth frame first").await;
            return;
        }
        Ok(Some(Ok(Message::Text(frame)))) => frame,
        Ok(_) => {
            close_with(
                &mut socket,
                close::BAD_AUTH_FRAME,
                "the first frame is {\"type\":\"auth\",\"token\":…}",
            )
            .await;
            return;
        }
    };
    let Ok(Incoming::Auth { token, resume }) = plexichat::serde_json::from_str::<Incoming>(&frame)
    else {
        close_with(
            &mut socket,
            close::BAD_AUTH_FRAME,
            "the first frame is {\"type\":\"auth\",\"token\":…}",
        )
        .await;
        return;
    };
    let caller = match server.accounts.authenticate(&token).await {
        Ok(caller) => caller,
        Err(error) => {
            let _ = socket
                .send(error_frame(error.code(), "the token does not authenticate"))
                .await;
            close_with(&mut socket, close::UNAUTHORIZED, "sign in again").await;
            return;
        }
    };
    let mut resume_at = Vec::new();
    for (channel, seq) in resume {
        match channel.parse::<i64>() {
            Ok(channel_id) if seq >= 0 => resume_at.push((channel_id, seq)),
            _ => {
                let _ = socket
                    .send(error_frame(
                        "invalid_field",
                        "`resume` maps channel ids to the last sequence number seen (0 or more)",
                    ))
                    .await;
                close_with(&mut socket, close::BAD_AUTH_FRAME, "bad resume").await;
                return;
            }
        }
    }
    resume_at.sort_unstable();
    let channels = match server.channels.channel_ids_of(caller.user_id).await {
        Ok(channels) => channels,
        Err(_) => {
            close_with(&mut socket, 1011, "the database is unreachable; reconnect").await;
            return;
        }
    };
    // Listening starts before the replay, so nothing committed meanwhile is missed; what
    // both bring is dropped by its sequence number.
    let (queue, receiver) = mpsc::channel(config.queue_frames as usize);
    let hub = &server.realtime.hub;
    let hub_id = hub.join(caller.user_id, caller.session_id, &channels, queue);
    let mut connection = Connection {
        server: &server,
        socket,
        caller,
        hub_id,
        last: HashMap::new(),
        typed: HashMap::new(),
    };
    let outcome = connection.run(resume_at, channels.len(), receiver).await;
    hub.leave(hub_id);
    if let Err((code, reason)) = outcome {
        close_with(&mut connection.socket, code, reason).await;
    }
}

/// Why a connection ends: a close code and reason to send, or nothing (the client went).
type Ended = Result<(), (u16, &'static str)>;

impl Connection<'_> {
    async fn send(&mut self, message: Message) -> Ended {
        let limit = Duration::from_secs(u64::from(self.server.config.send_timeout_secs));
        match timeout(limit, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err((1000, "")),
            // A client that does not read is not waited for.
            Err(_) => Err((close::TOO_SLOW, "not reading")),
        }
    }

    async fn run(
        &mut self,
        resume: Vec<(i64, i64)>,
        member_of: usize,
        mut queue: mpsc::Receiver<Outbound>,
    ) -> Ended {
        let mut resumed = plexichat::serde_json::Map::new();
        for (channel_id, after) in resume {
            let replayed = self.resume(channel_id, after).await?;
            if let Some(count) = replayed {
                resumed.insert(channel_id.to_string(), json!(count));
            }
        }
        let ready = json!({
            "type": "ready",
            "user_id": self.caller.user_id,
            "session_id": self.caller.session_id,
            "channels": member_of,
            "resumed": resumed,
        });
        self.send(text(&ready)).await?;

        let config = Arc::clone(&self.server.config);
        let mut ping =
            tokio::time::interval(Duration::from_secs(u64::from(config.ping_interval_secs)));
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ping.reset();
        let idle = Duration::from_secs(u64::from(config.idle_timeout_secs));
        let mut heard = Instant::now();
        loop {
            tokio::select! {
                outbound = queue.recv() => match outbound {
                    Some(Outbound::Event { channel_id, seq, frame }) => {
                        self.deliver(channel_id, seq, &frame).await?;
                    }
                    Some(Outbound::Frame(frame)) => {
                        self.send(Message::Text(Utf8Bytes::from(frame.as_ref()))).await?;
                    }
                    Some(Outbound::Close(code, reason)) => return Err((code, reason)),
                    // The hub let go: this connection fell behind.
                    None => return Err((close::TOO_SLOW, "fell behind; reconnect and resume")),
                },
                incoming = self.socket.recv() => {
                    heard = Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(frame))) => self.answer(&frame).await?,
                        Some(Ok(Message::Binary(_))) => {
                            self.send(error_frame("unsupported", "frames are JSON text")).await?;
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                        Some(Ok(_)) => {}
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() > idle {
                        return Err((close::TIMEOUT, "no answer to pings"));
                    }
                    self.send(Message::Ping(Default::default())).await?;
                }
            }
        }
    }

    /// Replays what `channel_id` had after `after`; how many events, or `None` when the
    /// caller may not read it.
    async fn resume(
        &mut self,
        channel_id: i64,
        after: i64,
    ) -> Result<Option<i64>, (u16, &'static str)> {
        let server = self.server;
        match server
            .channels
            .access(channel_id, self.caller.user_id)
            .await
        {
            Ok(Access::Member) => {}
            Ok(Access::Reader) => server.realtime.hub.listen(self.hub_id, channel_id, true),
            Ok(Access::None) => {
                let frame = json!({
                    "type": "error",
                    "code": "channel_not_found",
                    "detail": "no such channel that you can see",
                    "channel_id": channel_id,
                });
                self.send(text(&frame)).await?;
                return Ok(None);
            }
            Err(_) => return Err((1011, "the database is unreachable; reconnect")),
        }
        self.last.insert(channel_id, after);
        self.fill(channel_id, i64::MAX).await?;
        // Sequence numbers have no gaps: how far the last one moved is how many were sent.
        Ok(Some(
            self.last.get(&channel_id).copied().unwrap_or(after) - after,
        ))
    }

    /// Sends `channel_id`'s logged events after the last one sent, up to `until`, at most
    /// `replay_limit`; beyond that the client is told to reload instead.
    async fn fill(&mut self, channel_id: i64, until: i64) -> Ended {
        let limit = i64::from(self.server.config.replay_limit);
        let mut sent = 0;
        loop {
            let last = self.last.get(&channel_id).copied().unwrap_or(0);
            if last >= until {
                return Ok(());
            }
            let page = 200.min(until - last);
            let events = self
                .server
                .channels
                .events_after(channel_id, last, page)
                .await
                .map_err(|_| (1011, "the database is unreachable; reconnect"))?;
            let count = events.len() as i64;
            for record in events {
                self.last.insert(channel_id, record.seq);
                self.send(Message::Text(Utf8Bytes::from(event_frame(&record))))
                    .await?;
            }
            sent += count;
            if count < page {
                return Ok(());
            }
            if sent >= limit {
                let frame = json!({
                    "type": "resync",
                    "channel_id": channel_id,
                    "after": self.last.get(&channel_id),
                    "detail": "too much to replay: reload the channel's history",
                });
                self.send(text(&frame)).await?;
                self.last.remove(&channel_id);
                return Ok(());
            }
        }
    }

    /// Sends one live event in its channel's order: a duplicate is dropped, a gap is filled
    /// from the log first.
    async fn deliver(&mut self, channel_id: i64, seq: i64, frame: &str) -> Ended {
        if let Some(&last) = self.last.get(&channel_id) {
            if seq <= last {
                return Ok(());
            }
            if seq > last + 1 {
                self.fill(channel_id, seq - 1).await?;
                if self.last.get(&channel_id).is_some_and(|&last| seq <= last) {
                    return Ok(());
                }
            }
        }
        self.last.insert(channel_id, seq);
        self.send(Message::Text(Utf8Bytes::from(frame))).await
    }

    /// Answers a frame from the client.
    async fn answer(&mut self, frame: &str) -> Ended {
        let incoming = match plexichat::serde_json::from_str::<Incoming>(frame) {
            Ok(incoming) => incoming,
            Err(error) => {
                let detail = format!(
                    "a frame is {{\"type\": \"ping\" | \"typing\" | \"subscribe\" | \"unsubscribe\", …}}: {error}"
                );
                return self.send(error_frame("invalid_frame", &detail)).await;
            }
        };
        let server = self.server;
        match incoming {
            Incoming::Ping => self.send(text(&json!({ "type": "pong" }))).await,
            Incoming::Auth { .. } => {
                self.send(error_frame("invalid_frame", "already authenticated"))
                    .await
            }
            Incoming::Typing { channel_id } => {
                let every = Duration::from_millis(u64::from(server.config.typing_interval_ms));
                if self
                    .typed
                    .get(&channel_id)
                    .is_some_and(|at| at.elapsed() < every)
                {
                    return Ok(());
                }
                if !matches!(
                    server
                        .channels
                        .access(channel_id, self.caller.user_id)
                        .await,
                    Ok(Access::Member)
                ) {
                    return self
                        .send(error_frame(
                            "not_a_member",
                            "typing is for a channel's members",
                        ))
                        .await;
                }
                self.typed.insert(channel_id, Instant::now());
                server
                    .context
                    .publish(&Typing {
                        channel_id,
                        user_id: self.caller.user_id,
                    })
                    .await;
                Ok(())
            }
            Incoming::Subscribe { channel_id } => {
                match server
                    .channels
                    .access(channel_id, self.caller.user_id)
                    .await
                {
                    Ok(Access::Member | Access::Reader) => {
                        server.realtime.hub.listen(self.hub_id, channel_id, true);
                        let frame = json!({ "type": "subscribed", "channel_id": channel_id });
                        self.send(text(&frame)).await
                    }
                    _ => {
                        let frame = json!({
                            "type": "error",
                            "code": "channel_not_found",
                            "detail": "no such channel that you can see",
                            "channel_id": channel_id,
                        });
                        self.send(text(&frame)).await
                    }
                }
            }
            Incoming::Unsubscribe { channel_id } => {
                // A member hears their channels for as long as they are in them.
                if !matches!(
                    server
                        .channels
                        .access(channel_id, self.caller.user_id)
                        .await,
                    Ok(Access::Member)
                ) {
                    server.realtime.hub.listen(self.hub_id, channel_id, false);
                    self.last.remove(&channel_id);
                }
                Ok(())
            }
        }
    }
}
