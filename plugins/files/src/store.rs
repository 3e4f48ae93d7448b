//! The files tables, on either engine: literal SQL with bound parameters only.

use plexichat::sqlx::{self, AnyPool, Row, any::AnyRow};
pub(crate) use plexichat::storage::{now_millis as now_ms, rfc3339_millis as rfc3339};

/// A file, as stored.
#[derive(Clone, Debug)]
pub(crate) struct FileRow {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_ms: i64,
}

fn file_row(row: &AnyRow) -> Result<FileRow, sqlx::Error> {
    Ok(FileRow {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        created_ms: row.try_get("created_ms")?,
    })
}

pub(crate) async fn file(pool: &AnyPool, id: i64) -> Result<Option<FileRow>, sqlx::Error> {
    sqlx::query(
        "SELECT id, owner_id, name, content_type, size, sha256, created_ms FROM files_files WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(file_row)
    .transpose()
}

pub(crate) async fn files_of(
    pool: &AnyPool,
    owner_id: i64,
    before: i64,
    limit: i64,
) -> Result<Vec<FileRow>, sqlx::Error> {
    sqlx::query(
        "SELECT id, owner_id, name, content_type, size, sha256, created_ms FROM files_files \
         WHERE owner_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(owner_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(file_row)
    .collect()
}

/// Bytes `owner_id` stores.
pub(crate) async fn used(pool: &AnyPool, owner_id: i64) -> Result<i64, sqlx::Error> {
    let total: Option<i64> = sqlx::query(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS total FROM files_files WHERE owner_id = $1",
    )
    .bind(owner_id)
    .fetch_one(pool)
    .await?
    .try_get("total")?;
    Ok(total.unwrap_or(0))
}

pub(crate) async fn insert(
    pool: &AnyPool,
    owner_id: i64,
    name: &str,
    content_type: &str,
    size: i64,
    sha256: &str,
    now: i64,
) -> Result<FileRow, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO files_files (owner_id, name, content_type, size, sha256, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING id, owner_id, name, content_type, size, sha256, created_ms",
    )
    .bind(owner_id)
    .bind(name)
    .bind(content_type)
    .bind(size)
    .bind(sha256)
    .bind(now)
    .fetch_one(pool)
    .await?;
    file_row(&row)
}

pub(crate) async fn delete(pool: &AnyPool, id: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM files_files WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

pub(crate) async fn grant(
    pool: &AnyPool,
    file_id: i64,
    channel_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO files_grants (file_id, channel_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(file_id)
    .bind(channel_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The channels file `file_id` was attached in.
pub(crate) async fn grants(pool: &AnyPool, file_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query("SELECT channel_id FROM files_grants WHERE file_id = $1 ORDER BY channel_id")
        .bind(file_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| row.try_get("channel_id"))
        .collect()
}

pub(crate) async fn create_share(
    pool: &AnyPool,
    token_hash: &str,
    file_id: i64,
    created_by: i64,
    now: i64,
    expires_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO files_shares (token_hash, file_id, created_by, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(file_id)
    .bind(created_by)
    .bind(now)
    .bind(expires_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// The file a live share link gives.
pub(crate) async fn shared(
    pool: &AnyPool,
    token_hash: &str,
    now: i64,
) -> Result<Option<FileRow>, sqlx::Error> {
    sqlx::query(
        "SELECT f.id, f.owner_id, f.name, f.content_type, f.size, f.sha256, f.created_ms \
         FROM files_shares s JOIN files_files f ON f.id = s.file_id \
         WHERE s.token_hash = $1 AND s.expires_ms > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(file_row)
    .transpose()
}
