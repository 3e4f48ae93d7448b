//! The open connections of this process and the channels each listens to: where an event
//! is handed to the connections that should see it, each through a bounded queue. A
//! connection whose queue is full is cut off (it reconnects and resumes from the database),
//! so one slow client can never make the server hold more.
//!
//! The hub decides nothing about what was delivered: it is an accelerator over the channels'
//! event logs, which a connection reads to fill any gap and to resume.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::mpsc;

/// What a connection's writer is handed.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// An event of a channel, already serialized, with its place in the channel's order.
    Event {
        channel_id: i64,
        seq: i64,
        frame: Arc<str>,
    },
    /// A frame outside any channel's order (typing, presence).
    Frame(Arc<str>),
    /// Close the connection with this code and reason.
    Close(u16, &'static str),
}

/// A connection, as the hub knows it.
#[derive(Debug)]
struct Connection {
    user_id: i64,
    session_id: i64,
    queue: mpsc::Sender<Outbound>,
    channels: HashSet<i64>,
}

#[derive(Debug, Default)]
struct Index {
    connections: HashMap<u64, Connection>,
    by_channel: HashMap<i64, HashSet<u64>>,
    by_user: HashMap<i64, HashSet<u64>>,
}

impl Index {
    fn listen(&mut self, id: u64, channel_id: i64) {
        if let Some(connection) = self.connections.get_mut(&id)
            && connection.channels.insert(channel_id)
        {
            self.by_channel.entry(channel_id).or_default().insert(id);
        }
    }

    fn ignore(&mut self, id: u64, channel_id: i64) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.channels.remove(&channel_id);
        }
        if let Some(listeners) = self.by_channel.get_mut(&channel_id) {
            listeners.remove(&id);
            if listeners.is_empty() {
                self.by_channel.remove(&channel_id);
            }
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(connection) = self.connections.remove(&id) else {
            return;
        };
        for channel_id in connection.channels {
            if let Some(listeners) = self.by_channel.get_mut(&channel_id) {
                listeners.remove(&id);
                if listeners.is_empty() {
                    self.by_channel.remove(&channel_id);
                }
            }
        }
        if let Some(ids) = self.by_user.get_mut(&connection.user_id) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_user.remove(&connection.user_id);
            }
        }
    }
}

/// This process's connections.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    next_id: AtomicU64,
    index: RwLock<Index>,
    /// Connections cut off for falling behind, since start.
    pub(crate) cut_off: AtomicU64,
}

impl Hub {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection listening to `channels`; its id.
    pub(crate) fn join(
        &self,
        user_id: i64,
        session_id: i64,
        channels: &[i64],
        queue: mpsc::Sender<Outbound>,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut index = self.write();
        index.connections.insert(
            id,
            Connection {
                user_id,
                session_id,
                queue,
                channels: HashSet::new(),
            },
        );
        index.by_user.entry(user_id).or_default().insert(id);
        for &channel_id in channels {
            index.listen(id, channel_id);
        }
        id
    }

    /// Forgets a connection.
    pub(crate) fn leave(&self, id: u64) {
        self.write().remove(id);
    }

    /// Starts or stops passing `channel_id`'s events to connection `id`.
    pub(crate) fn listen(&self, id: u64, channel_id: i64, on: bool) {
        let mut index = self.write();
        if on {
            index.listen(id, channel_id);
        } else {
            index.ignore(id, channel_id);
        }
    }

    /// Whether connection `id` listens to `channel_id`.
    #[cfg(test)]
    pub(crate) fn listens(&self, id: u64, channel_id: i64) -> bool {
        self.read()
            .connections
            .get(&id)
            .is_some_and(|connection| connection.channels.contains(&channel_id))
    }

    /// Connections open now.
    pub(crate) fn len(&self) -> usize {
        self.read().connections.len()
    }

    /// Hands `message` to the connections `targets` picks; those whose queue is full are
    /// cut off.
    fn hand(&self, message: &Outbound, targets: impl FnOnce(&Index) -> Vec<u64>) {
        let full: Vec<u64> = {
            let index = self.read();
            targets(&index)
                .into_iter()
                .filter(|id| {
                    index.connections.get(id).is_some_and(|connection| {
                        matches!(
                            connection.queue.try_send(message.clone()),
                            Err(mpsc::error::TrySendError::Full(_))
                        )
                    })
                })
                .collect()
        };
        if !full.is_empty() {
            let mut index = self.write();
            for id in full {
                // Dropping the hub's sender ends the connection's queue once it has drained
                // what it holds; the writer then closes with "too slow".
                index.remove(id);
                self.cut_off.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Passes a channel's event to its listeners. Someone joining starts listening before
    /// the event (they see themselves join); someone leaving stops after it.
    pub(crate) fn event(&self, channel_id: i64, seq: i64, frame: Arc<str>, members: &[Membership]) {
        self.follow(channel_id, members, true);
        let message = Outbound::Event {
            channel_id,
            seq,
            frame,
        };
        self.hand(&message, |index| {
            index
                .by_channel
                .get(&channel_id)
                .map(|ids| ids.iter().copied().collect())
                .unwrap_or_default()
        });
        self.follow(channel_id, members, false);
    }

    /// Applies the joins (`joining`) or else the departures among `members` to those
    /// people's connections.
    fn follow(&self, channel_id: i64, members: &[Membership], joining: bool) {
        let people: Vec<i64> = members
            .iter()
            .filter_map(|member| match (member, joining) {
                (Membership::Joined(user_id), true) | (Membership::Left(user_id), false) => {
                    Some(*user_id)
                }
                _ => None,
            })
            .collect();
        if people.is_empty() {
            return;
        }
        let mut index = self.write();
        for user_id in people {
            let ids: Vec<u64> = index
                .by_user
                .get(&user_id)
                .map(|ids| ids.iter().copied().collect())
                .unwrap_or_default();
            for id in ids {
                if joining {
                    index.listen(id, channel_id);
                } else {
                    index.ignore(id, channel_id);
                }
            }
        }
    }

    /// Passes a frame to the listeners of `channel_id` but `except`'s connections.
    pub(crate) fn to_channel(&self, channel_id: i64, frame: Arc<str>, except_user: i64) {
        self.hand(&Outbound::Frame(frame), |index| {
            index
                .by_channel
                .get(&channel_id)
                .map(|ids| {
                    ids.iter()
                        .copied()
                        .filter(|id| {
                            index
                                .connections
                                .get(id)
                                .is_some_and(|connection| connection.user_id != except_user)
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
    }

    /// Passes a frame to every connection.
    pub(crate) fn to_everyone(&self, frame: Arc<str>) {
        self.hand(&Outbound::Frame(frame), |index| {
            index.connections.keys().copied().collect()
        });
    }

    /// Closes the connections of session `session_id`.
    pub(crate) fn end_session(&self, session_id: i64, user_id: i64) {
        let index = self.read();
        for id in index.by_user.get(&user_id).into_iter().flatten() {
            if let Some(connection) = index.connections.get(id)
                && connection.session_id == session_id
            {
                // A full queue is closing anyway.
                let _ = connection
                    .queue
                    .try_send(Outbound::Close(4403, "the session ended"));
            }
        }
    }
}

/// A change of membership an event carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Membership {
    Joined(i64),
    Left(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Arc<str> {
        Arc::from(text)
    }

    #[tokio::test]
    async fn events_reach_listeners_and_members_follow_joins_and_leaves() {
        let hub = Hub::default();
        let (alice_tx, mut alice) = mpsc::channel(8);
        let (bob_tx, mut bob) = mpsc::channel(8);
        hub.join(1, 10, &[7], alice_tx);
        let bob_id = hub.join(2, 20, &[], bob_tx);
        hub.event(7, 1, frame("a"), &[]);
        assert!(matches!(
            alice.try_recv(),
            Ok(Outbound::Event { seq: 1, .. })
        ));
        assert!(bob.try_recv().is_err(), "bob is not in channel 7");

        hub.event(7, 2, frame("bob joined"), &[Membership::Joined(2)]);
        assert!(
            matches!(bob.try_recv(), Ok(Outbound::Event { seq: 2, .. })),
            "he sees himself join"
        );
        assert!(hub.listens(bob_id, 7));
        hub.event(7, 3, frame("bob left"), &[Membership::Left(2)]);
        assert!(
            matches!(bob.try_recv(), Ok(Outbound::Event { seq: 3, .. })),
            "and himself leave"
        );
        hub.event(7, 4, frame("after"), &[]);
        assert!(bob.try_recv().is_err());
        assert_eq!(hub.len(), 2);
    }

    #[tokio::test]
    async fn a_full_queue_is_cut_off_and_the_rest_are_served() {
        let hub = Hub::default();
        let (slow_tx, mut slow) = mpsc::channel(2);
        let (fast_tx, mut fast) = mpsc::channel(64);
        hub.join(1, 10, &[7], slow_tx);
        hub.join(2, 20, &[7], fast_tx);
        for seq in 1..=5 {
            hub.event(7, seq, frame("x"), &[]);
            assert!(fast.try_recv().is_ok());
        }
        assert_eq!(hub.cut_off.load(Ordering::Relaxed), 1);
        assert_eq!(hub.len(), 1);
        // What it held drains, then its queue ends.
        assert!(slow.recv().await.is_some());
        assert!(slow.recv().await.is_some());
        assert!(slow.recv().await.is_none());
    }

    #[tokio::test]
    async fn typing_skips_the_typist_and_a_session_end_closes_only_its_connections() {
        let hub = Hub::default();
        let (a1_tx, mut a1) = mpsc::channel(8);
        let (a2_tx, mut a2) = mpsc::channel(8);
        let (b_tx, mut b) = mpsc::channel(8);
        hub.join(1, 10, &[7], a1_tx);
        hub.join(1, 11, &[7], a2_tx);
        hub.join(2, 20, &[7], b_tx);
        hub.to_channel(7, frame("typing"), 1);
        assert!(a1.try_recv().is_err() && a2.try_recv().is_err());
        assert!(matches!(b.try_recv(), Ok(Outbound::Frame(_))));
        hub.end_session(11, 1);
        assert!(a1.try_recv().is_err());
        assert!(matches!(a2.try_recv(), Ok(Outbound::Close(4403, _))));
    }
}
