//! The key-value store every plugin gets: bytes under string keys in the plugin's own
//! namespace, with expiry, compare-and-set and paged listing (Mattermost's plugin KV store is
//! the bar). [`KvStore`] is the untyped store of one namespace; [`Kv`] is what a plugin's
//! context hands out, whose reads need `plugin:read` and writes `plugin:write`.

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;

use crate::abi::permission;
use crate::storage::database::{Database, now_millis};

/// Why a key-value operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The database failed.
    #[error("key-value store: {0}")]
    Database(#[from] sqlx::Error),
    /// A value could not be turned into or read as JSON.
    #[error("key-value store: value of `{key}` is not the JSON expected: {error}")]
    Json {
        /// The key.
        key: String,
        /// What serde said.
        error: serde_json::Error,
    },
    /// A key is empty or too long.
    #[error("key-value store: invalid key: {0}")]
    InvalidKey(String),
}

/// Longest key, in bytes (Mattermost's limit is 150).
pub const MAX_KEY_BYTES: usize = 150;
/// Most keys one [`KvStore::list`] page returns.
pub const MAX_PAGE: u32 = 1000;

/// One page of keys from [`KvStore::list`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyPage {
    /// Keys in byte order.
    pub keys: Vec<String>,
    /// Pass as `after` for the next page; `None` when this is the last.
    pub next: Option<String>,
}

/// The key-value store of one namespace (a plugin's name), without permission checks; core
/// uses it for backups and commands, plugins get a [`Kv`].
#[derive(Clone, Debug)]
pub struct KvStore {
    db: Database,
    namespace: &'static str,
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::InvalidKey("a key cannot be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey(format!(
            "a key is at most {MAX_KEY_BYTES} bytes; this one has {}",
            key.len()
        )));
    }
    Ok(())
}

/// The expiry time of a value that lives for `ttl` from now.
fn expiry(ttl: Duration) -> i64 {
    now_millis().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

impl KvStore {
    /// The store of `namespace` in `db`.
    pub fn new(db: Database, namespace: &'static str) -> KvStore {
        KvStore { db, namespace }
    }

    /// The value of `key`, or `None` if it is absent or expired.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let row = sqlx::query(
            "SELECT value FROM plexichat_kv WHERE plugin = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(self.namespace)
        .bind(key)
        .bind(now_millis())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|row| row.try_get::<Vec<u8>, _>(0)).transpose()?)
    }

    /// Sets `key` to `value`, with no expiry.
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.upsert(key, value, None).await
    }

    /// Sets `key` to `value`; it disappears after `ttl`.
    pub async fn set_with_expiry(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), KvError> {
        self.upsert(key, value, Some(expiry(ttl))).await
    }

    async fn upsert(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Option<i64>,
    ) -> Result<(), KvError> {
        check_key(key)?;
        let _turn = self.db.writer().await;
        sqlx::query(
            "INSERT INTO plexichat_kv (plugin, key, value, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(self.namespace)
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Sets `key` to `new` only if its current value is `old` (`None`: only if it is absent
    /// or expired). Returns whether it was set; the check and the write are one statement,
    /// so two concurrent callers cannot both win.
    pub async fn compare_and_set(
        &self,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError> {
        check_key(key)?;
        let now = now_millis();
        let expires_at = ttl.map(expiry);
        let _turn = self.db.writer().await;
        let result = match old {
            None => {
                sqlx::query(
                    "INSERT INTO plexichat_kv (plugin, key, value, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
                     WHERE plexichat_kv.expires_at IS NOT NULL AND plexichat_kv.expires_at <= $5",
                )
                .bind(self.namespace)
                .bind(key)
                .bind(new)
                .bind(expires_at)
                .bind(now)
                .execute(self.db.pool())
                .await?
            }
            Some(old) => {
                sqlx::query(
                    "UPDATE plexichat_kv SET value = $3, expires_at = $4 \
                     WHERE plugin = $1 AND key = $2 AND value = $5 AND (expires_at IS NULL OR expires_at > $6)",
                )
                .bind(self.namespace)
                .bind(key)
                .bind(new)
                .bind(expires_at)
                .bind(old)
                .bind(now)
                .execute(self.db.pool())
                .await?
            }
        };
        Ok(result.rows_affected() == 1)
    }

    /// Deletes `key` only if its current value is `old`; returns whether it did.
    pub async fn compare_and_delete(&self, key: &str, old: &[u8]) -> Result<bool, KvError> {
        check_key(key)?;
        let _turn = self.db.writer().await;
        let result = sqlx::query(
            "DELETE FROM plexichat_kv WHERE plugin = $1 AND key = $2 AND value = $3 AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(self.namespace)
        .bind(key)
        .bind(old)
        .bind(now_millis())
        .execute(self.db.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes `key`; returns whether it existed (expired keys count as absent).
    pub async fn delete(&self, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        // One statement removes the row, live or expired; only a live one counts.
        let _turn = self.db.writer().await;
        let row = sqlx::query(
            "DELETE FROM plexichat_kv WHERE plugin = $1 AND key = $2 RETURNING expires_at",
        )
        .bind(self.namespace)
        .bind(key)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let expires_at: Option<i64> = row.try_get(0)?;
        Ok(expires_at.is_none_or(|at| at > now_millis()))
    }

    /// Deletes every key of the namespace; returns how many there were.
    pub async fn delete_all(&self) -> Result<u64, KvError> {
        let _turn = self.db.writer().await;
        let result = sqlx::query("DELETE FROM plexichat_kv WHERE plugin = $1")
            .bind(self.namespace)
            .execute(self.db.pool())
            .await?;
        Ok(result.rows_affected())
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) live keys starting with `prefix`, in byte order,
    /// after the key `after` (the previous page's `next`).
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, KvError> {
        let limit = limit.clamp(1, MAX_PAGE);
        // Keys are compared as text (byte order: SQLite's BINARY, PostgreSQL's "C" collation),
        // so a prefix is a range and paging is a cursor, with no LIKE escaping.
        let rows = sqlx::query(
            "SELECT key FROM plexichat_kv WHERE plugin = $1 AND substr(key, 1, CAST($2 AS INTEGER)) = $3 AND key > $4 \
             AND (expires_at IS NULL OR expires_at > $5) ORDER BY key LIMIT $6",
        )
        .bind(self.namespace)
        .bind(i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX))
        .bind(prefix)
        .bind(after.unwrap_or(""))
        .bind(now_millis())
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.pool())
        .await?;
        let mut keys = rows
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        let next = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().cloned()
        } else {
            None
        };
        Ok(KeyPage { keys, next })
    }

    /// The value of `key` read as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, KvError> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|error| KvError::Json {
                        key: key.to_string(),
                        error,
                    })
            }
        }
    }

    /// Sets `key` to `value` as JSON.
    pub async fn set_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), KvError> {
        let bytes = serde_json::to_vec(value).map_err(|error| KvError::Json {
            key: key.to_string(),
            error,
        })?;
        self.set(key, &bytes).await
    }
}

/// Removes expired entries of every namespace; they are invisible from the moment they
/// expire, this only reclaims the space. Returns how many rows went.
pub async fn remove_expired(db: &Database) -> Result<u64, sqlx::Error> {
    let _turn = db.writer().await;
    let result =
        sqlx::query("DELETE FROM plexichat_kv WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(now_millis())
            .execute(db.pool())
            .await?;
    Ok(result.rows_affected())
}

/// Plugin `P`'s key-value store, from its context: reads need the `plugin:read` permission,
/// writes `plugin:write`; the namespace is `P`'s name, and no other is reachable.
pub struct Kv<P> {
    store: KvStore,
    plugin: PhantomData<fn() -> P>,
}

impl<P> Clone for Kv<P> {
    fn clone(&self) -> Self {
        Kv {
            store: self.store.clone(),
            plugin: PhantomData,
        }
    }
}

impl<P> std::fmt::Debug for Kv<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("namespace", &self.store.namespace)
            .finish()
    }
}

impl<P: crate::abi::plugin::Plugin> Kv<P> {
    pub(crate) fn new(db: Database) -> Kv<P> {
        Kv {
            store: KvStore::new(db, P::NAME),
            plugin: PhantomData,
        }
    }

    /// The value of `key`, or `None` if absent or expired.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>
    where
        P: permission::ReadData,
    {
        self.store.get(key).await
    }

    /// The value of `key` read as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, KvError>
    where
        P: permission::ReadData,
    {
        self.store.get_json(key).await
    }

    /// Live keys starting with `prefix`, a page at a time; see [`KvStore::list`].
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, KvError>
    where
        P: permission::ReadData,
    {
        self.store.list(prefix, after, limit).await
    }

    /// Sets `key` to `value`.
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>
    where
        P: permission::WriteData,
    {
        self.store.set(key, value).await
    }

    /// Sets `key` to `value` as JSON.
    pub async fn set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), KvError>
    where
        P: permission::WriteData,
    {
        self.store.set_json(key, value).await
    }

    /// Sets `key` to `value` for `ttl`.
    pub async fn set_with_expiry(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), KvError>
    where
        P: permission::WriteData,
    {
        self.store.set_with_expiry(key, value, ttl).await
    }

    /// Sets `key` to `new` if its value is `old` (`None`: absent); see
    /// [`KvStore::compare_and_set`].
    pub async fn compare_and_set(
        &self,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError>
    where
        P: permission::WriteData,
    {
        self.store.compare_and_set(key, old, new, ttl).await
    }

    /// Deletes `key` if its value is `old`.
    pub async fn compare_and_delete(&self, key: &str, old: &[u8]) -> Result<bool, KvError>
    where
        P: permission::WriteData,
    {
        self.store.compare_and_delete(key, old).await
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, KvError>
    where
        P: permission::WriteData,
    {
        self.store.delete(key).await
    }

    /// Deletes every key of the plugin.
    pub async fn delete_all(&self) -> Result<u64, KvError>
    where
        P: permission::WriteData,
    {
        self.store.delete_all().await
    }
}
