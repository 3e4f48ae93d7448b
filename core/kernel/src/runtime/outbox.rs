//! The outbox: events a plugin writes in the same transaction as the change that caused
//! them, kept in the database until each consumer (a plugin with `outbox:read`, such as
//! webhook delivery) takes them in a transaction of its own. Nothing is lost between the
//! change and its delivery, whatever crashes: the event commits with the change or not at all.
//!
//! A write stores one row per consumer that is not disabled, so consumers never wait for one
//! another and a consumer left out of the build costs nothing. Taking deletes the rows
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two processes never take the same one); a
//! consumer that fails before it commits leaves them for the next attempt.

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::abi::event::{DeclaresWebhook, Event};
use crate::abi::permission;
use crate::abi::plugin::Plugin;
use crate::config::database::Engine;
use crate::runtime::state::PluginStatus;
use crate::runtime::{Runtime, WriteTransaction};
use crate::storage::database::now_millis;

/// Why an outbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The database failed.
    #[error("outbox: {0}")]
    Database(#[from] sqlx::Error),
    /// The event could not be serialised as JSON.
    #[error("outbox: event `{event}` is not serialisable as JSON: {error}")]
    Json {
        /// The event's name.
        event: &'static str,
        /// What serde said.
        error: serde_json::Error,
    },
}

/// One event taken from the outbox.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxEntry {
    /// The row's number; a consumer's entries come in this order, which is the order their
    /// transactions wrote them in on SQLite (on PostgreSQL, transactions that overlap may
    /// commit out of it).
    pub id: i64,
    /// The event's unique id, the same for every consumer: `evt_` and 26 base32 characters.
    pub event_id: String,
    /// The event's name ([`Event::NAME`]).
    pub event: String,
    /// The plugin that wrote it.
    pub plugin: String,
    /// The event, as JSON.
    pub payload: serde_json::Value,
    /// When it was written, in milliseconds since the epoch.
    pub created_at: i64,
}

/// Plugin `P`'s handle on the outbox, from [`PluginContext::outbox`](crate::runtime::PluginContext::outbox).
pub struct Outbox<P> {
    runtime: Runtime,
    plugin: PhantomData<fn() -> P>,
}

impl<P> Clone for Outbox<P> {
    fn clone(&self) -> Self {
        Outbox {
            runtime: self.runtime.clone(),
            plugin: PhantomData,
        }
    }
}

impl<P: Plugin> std::fmt::Debug for Outbox<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("plugin", &P::NAME).finish()
    }
}

impl<P: Plugin> Outbox<P> {
    pub(crate) fn new(runtime: Runtime) -> Outbox<P> {
        Outbox {
            runtime,
            plugin: PhantomData,
        }
    }

    /// The plugins that take events: those with `outbox:read` that the operator has not
    /// disabled (a consumer that is starting, stopped or failed still gets them).
    fn consumers(&self) -> Vec<&'static str> {
        self.runtime
            .registry()
            .plugins()
            .iter()
            .filter(|plugin| plugin.permissions.contains(&"outbox:read"))
            .map(|plugin| plugin.name)
            .filter(|name| {
                !matches!(
                    self.runtime.status(name),
                    Some(PluginStatus::Disabled | PluginStatus::DisabledBecauseDependency { .. })
                )
            })
            .collect()
    }

    /// Writes `event` in `transaction`, the one that makes the change the event reports: it
    /// is kept if and only if the change commits, and the commit wakes the consumers. `E`
    /// must be in the manifest's `webhooks = [..]`.
    pub async fn write<E: Event>(
        &self,
        transaction: &mut WriteTransaction,
        event: &E,
    ) -> Result<(), OutboxError>
    where
        P: DeclaresWebhook<E>,
    {
        let consumers = self.consumers();
        if consumers.is_empty() {
            return Ok(());
        }
        let payload = serde_json::to_string(event).map_err(|error| OutboxError::Json {
            event: E::NAME,
            error,
        })?;
        let event_id = event_id();
        let now = now_millis();
        for consumer in consumers {
            sqlx::query(
                "INSERT INTO plexichat_outbox (consumer, event_id, event, plugin, payload, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(consumer)
            .bind(&event_id)
            .bind(E::NAME)
            .bind(P::NAME)
            .bind(&payload)
            .bind(now)
            .execute(&mut ***transaction)
            .await?;
        }
        transaction.wakes_outbox(self.runtime.storage().database());
        Ok(())
    }

    /// Writes `event` in a transaction of its own: for an event that no SQL change of the
    /// plugin causes (otherwise write it in that change's transaction with [`Outbox::write`]).
    pub async fn emit<E: Event>(&self, event: &E) -> Result<(), OutboxError>
    where
        P: DeclaresWebhook<E>,
    {
        let mut transaction = WriteTransaction::begin(self.runtime.storage().database()).await?;
        self.write(&mut transaction, event).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Takes up to `limit` of this plugin's events, oldest first, in `transaction`: they are
    /// gone once it commits, and back for the next take if it does not. On PostgreSQL rows
    /// another transaction is taking are skipped, so concurrent takers never share one.
    pub async fn take(
        &self,
        transaction: &mut WriteTransaction,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, OutboxError>
    where
        P: permission::ReadOutbox,
    {
        let sql = match self.runtime.engine() {
            Engine::Postgres => {
                "DELETE FROM plexichat_outbox WHERE id IN \
                 (SELECT id FROM plexichat_outbox WHERE consumer = $1 ORDER BY id LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, event_id, event, plugin, payload, created_at"
            }
            Engine::Sqlite => {
                "DELETE FROM plexichat_outbox WHERE id IN \
                 (SELECT id FROM plexichat_outbox WHERE consumer = $1 ORDER BY id LIMIT $2) \
                 RETURNING id, event_id, event, plugin, payload, created_at"
            }
        };
        let rows = sqlx::query(sql)
            .bind(P::NAME)
            .bind(i64::from(limit))
            .fetch_all(&mut ***transaction)
            .await?;
        let mut entries = rows
            .iter()
            .map(|row| {
                let payload: String = row.try_get("payload")?;
                Ok(OutboxEntry {
                    id: row.try_get("id")?,
                    event_id: row.try_get("event_id")?,
                    event: row.try_get("event")?,
                    plugin: row.try_get("plugin")?,
                    // Written from a serialised event, so it parses; a row edited by hand
                    // that does not is carried as a string rather than lost.
                    payload: serde_json::from_str(&payload)
                        .unwrap_or(serde_json::Value::String(payload)),
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        entries.sort_by_key(|entry| entry.id);
        Ok(entries)
    }

    /// How many events wait for this plugin.
    pub async fn pending(&self) -> Result<i64, OutboxError>
    where
        P: permission::ReadOutbox,
    {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM plexichat_outbox WHERE consumer = $1")
            .bind(P::NAME)
            .fetch_one(self.runtime.storage().database().pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// A waiter that wakes when this process commits a write to the outbox: a consumer's
    /// loop takes until nothing is left, then waits on it (with a poll period, for writes
    /// made by other processes on the same database).
    pub fn waiter(&self) -> OutboxWaiter
    where
        P: permission::ReadOutbox,
    {
        OutboxWaiter {
            written: self
                .runtime
                .storage()
                .database()
                .outbox_written()
                .subscribe(),
        }
    }
}

/// Wakes a consumer when this process commits a write to the outbox; see [`Outbox::waiter`].
#[derive(Debug)]
pub struct OutboxWaiter {
    written: tokio::sync::watch::Receiver<u64>,
}

impl OutboxWaiter {
    /// Waits until a write to the outbox commits after the last wait, or `at_most`; a write
    /// that committed while the caller was busy ends the next wait at once.
    pub async fn wait(&mut self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.written.changed()).await;
    }
}

/// `evt_` and 128 random bits in lowercase base32 (RFC 4648, no padding).
fn event_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS's generator does not fail on Linux once seeded; if it ever does, the time
        // and a process counter still make the id unique.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        bytes[8..].copy_from_slice(&(count ^ u64::from(std::process::id())).to_be_bytes());
    }
    let mut text = String::from("evt_");
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            text.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        text.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    text
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

#[cfg(test)]
mod tests {
    #[test]
    fn event_ids_are_long_random_and_distinct() {
        let (a, b) = (super::event_id(), super::event_id());
        assert_eq!(a.len(), 4 + 26, "{a}");
        assert!(a.starts_with("evt_"));
        assert_ne!(a, b);
    }
}
