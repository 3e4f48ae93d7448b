//! The channels tables, on either engine: literal SQL with bound parameters only. Times are
//! Unix milliseconds. Every write that is an event of a channel runs in a transaction whose
//! first statement takes the channel's next sequence number ([`next_seq`]): on PostgreSQL
//! that locks the channel's row, on SQLite the database, so a channel's events commit in
//! the order of their numbers.
//!
//! The SQL built at run time (under `AssertSqlSafe`) joins only constant column lists and
//! numbered placeholders; every value is bound.

use plexichat::sqlx::{self, AnyConnection, AnyPool, AssertSqlSafe, Row, any::AnyRow};
pub(crate) use plexichat::storage::{
    is_unique_violation, now_millis as now_ms, rfc3339_millis as rfc3339,
};

/// `$first, $first+1, …` for `count` bound values: an `IN (…)` list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|index| format!("${index}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A channel, as stored.
#[derive(Clone, Debug)]
pub(crate) struct ChannelRow {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub topic: String,
    pub direct_key: Option<String>,
    pub created_by: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub last_seq: i64,
}

/// The caller's membership of a channel, as stored.
#[derive(Clone, Debug)]
pub(crate) struct MemberRow {
    pub user_id: i64,
    pub role: String,
    pub joined_ms: i64,
    pub last_read_seq: i64,
}

const CHANNEL_COLUMNS: &str = "c.id, c.kind, c.name, c.topic, c.direct_key, c.created_by, c.created_ms, c.updated_ms, c.last_seq";

fn channel_row(row: &AnyRow) -> Result<ChannelRow, sqlx::Error> {
    Ok(ChannelRow {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        topic: row.try_get("topic")?,
        direct_key: row.try_get("direct_key")?,
        created_by: row.try_get("created_by")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        last_seq: row.try_get("last_seq")?,
    })
}

fn member_row(row: &AnyRow) -> Result<MemberRow, sqlx::Error> {
    Ok(MemberRow {
        user_id: row.try_get("user_id")?,
        role: row.try_get("role")?,
        joined_ms: row.try_get("joined_ms")?,
        last_read_seq: row.try_get("last_read_seq")?,
    })
}

pub(crate) async fn channel_by_direct_key(
    pool: &AnyPool,
    key: &str,
) -> Result<Option<ChannelRow>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {CHANNEL_COLUMNS} FROM channels_channels c WHERE c.direct_key = $1"
    )))
    .bind(key)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(channel_row)
    .transpose()
}

pub(crate) async fn membership(
    pool: &AnyPool,
    channel_id: i64,
    user_id: i64,
) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query(
        "SELECT user_id, role, joined_ms, last_read_seq FROM channels_members WHERE channel_id = $1 AND user_id = $2",
    )
    .bind(channel_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(member_row)
    .transpose()
}

/// The channel `id` and `user_id`'s membership of it, in one query (every request about a
/// channel asks both).
pub(crate) async fn channel_and_membership(
    pool: &AnyPool,
    id: i64,
    user_id: i64,
) -> Result<Option<(ChannelRow, Option<MemberRow>)>, sqlx::Error> {
    let Some(row) = sqlx::query(AssertSqlSafe(format!(
        "SELECT {CHANNEL_COLUMNS}, mb.user_id AS member_id, mb.role AS member_role, \
         mb.joined_ms AS member_joined_ms, mb.last_read_seq AS member_last_read_seq \
         FROM channels_channels c \
         LEFT JOIN channels_members mb ON mb.channel_id = c.id AND mb.user_id = $2 \
         WHERE c.id = $1"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let member = match row.try_get::<Option<i64>, _>("member_id")? {
        Some(user_id) => Some(MemberRow {
            user_id,
            role: row.try_get("member_role")?,
            joined_ms: row.try_get("member_joined_ms")?,
            last_read_seq: row.try_get("member_last_read_seq")?,
        }),
        None => None,
    };
    Ok(Some((channel_row(&row)?, member)))
}

/// The channels `user_id` is a member of.
pub(crate) async fn channel_ids_of(pool: &AnyPool, user_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query("SELECT channel_id FROM channels_members WHERE user_id = $1 ORDER BY channel_id")
        .bind(user_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| row.try_get("channel_id"))
        .collect()
}

pub(crate) async fn members(
    pool: &AnyPool,
    channel_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query(
        "SELECT user_id, role, joined_ms, last_read_seq FROM channels_members \
         WHERE channel_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3",
    )
    .bind(channel_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(member_row)
    .collect()
}

pub(crate) async fn member_count(pool: &AnyPool, channel_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM channels_members WHERE channel_id = $1")
        .bind(channel_id)
        .fetch_one(pool)
        .await?
        .try_get("n")
}

/// Messages of `channel_id` after `seq` that `user_id` did not write: what they have not read.
pub(crate) async fn unread(
    pool: &AnyPool,
    channel_id: i64,
    user_id: i64,
    seq: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM channels_messages \
         WHERE channel_id = $1 AND seq > $2 AND author_id <> $3 AND deleted_ms IS NULL",
    )
    .bind(channel_id)
    .bind(seq)
    .bind(user_id)
    .fetch_one(pool)
    .await?
    .try_get("n")
}

/// A channel in a list: the row, the caller's membership and unread count, its member count.
#[derive(Debug)]
pub(crate) struct Listed {
    pub channel: ChannelRow,
    pub member: Option<MemberRow>,
    pub unread: i64,
    pub member_count: i64,
}

/// The channels `user_id` is in, and (unless `joined_only`) the public ones, by id.
pub(crate) async fn list_channels(
    pool: &AnyPool,
    user_id: i64,
    joined_only: bool,
    after: i64,
    limit: i64,
) -> Result<Vec<Listed>, sqlx::Error> {
    let visible = if joined_only {
        "m.user_id IS NOT NULL"
    } else {
        "(m.user_id IS NOT NULL OR c.kind = 'public')"
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {CHANNEL_COLUMNS}, m.user_id AS member_id, m.role, m.joined_ms, m.last_read_seq, \
           (SELECT COUNT(*) FROM channels_members n WHERE n.channel_id = c.id) AS member_count, \
           CASE WHEN m.user_id IS NULL THEN 0 ELSE \
             (SELECT COUNT(*) FROM channels_messages x WHERE x.channel_id = c.id AND x.seq > m.last_read_seq \
              AND x.author_id <> $1 AND x.deleted_ms IS NULL) END AS unread \
         FROM channels_channels c LEFT JOIN channels_members m ON m.channel_id = c.id AND m.user_id = $1 \
         WHERE {visible} AND c.id > $2 ORDER BY c.id LIMIT $3"
    )))
    .bind(user_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let member_id: Option<i64> = row.try_get("member_id")?;
            let member = match member_id {
                Some(user_id) => Some(MemberRow {
                    user_id,
                    role: row.try_get("role")?,
                    joined_ms: row.try_get("joined_ms")?,
                    last_read_seq: row.try_get("last_read_seq")?,
                }),
                None => None,
            };
            Ok(Listed {
                channel: channel_row(row)?,
                member,
                unread: row.try_get("unread")?,
                member_count: row.try_get("member_count")?,
            })
        })
        .collect()
}

/// A new channel with its first members (the first one its owner), its `last_seq` at 1 for
/// the `channel.created` event the caller logs in the same transaction; `Ok(None)` when the
/// name (or the pair of a direct channel) is taken, and the transaction is then spoilt.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create_channel(
    connection: &mut AnyConnection,
    kind: &str,
    name: &str,
    topic: &str,
    direct_key: Option<&str>,
    members: &[i64],
    now: i64,
) -> Result<Option<ChannelRow>, sqlx::Error> {
    let inserted = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO channels_channels (kind, name, topic, direct_key, created_by, created_ms, updated_ms, last_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, 1) RETURNING {}",
        CHANNEL_COLUMNS.replace("c.", "")
    )))
    .bind(kind)
    .bind(name)
    .bind(topic)
    .bind(direct_key)
    .bind(members[0])
    .bind(now)
    .fetch_one(&mut *connection)
    .await;
    let channel = match inserted {
        Ok(row) => channel_row(&row)?,
        Err(error) if is_unique_violation(&error) => return Ok(None),
        Err(error) => return Err(error),
    };
    for (index, user_id) in members.iter().enumerate() {
        let role = if index == 0 && kind != "direct" {
            "owner"
        } else {
            "member"
        };
        sqlx::query(
            "INSERT INTO channels_members (channel_id, user_id, role, joined_ms, last_read_seq) \
             VALUES ($1, $2, $3, $4, 1) ON CONFLICT DO NOTHING",
        )
        .bind(channel.id)
        .bind(user_id)
        .bind(role)
        .bind(now)
        .execute(&mut *connection)
        .await?;
    }
    Ok(Some(channel))
}

/// Takes `channel_id`'s next sequence number; `None` when there is no such channel. The
/// first statement of every transaction that writes a channel's event.
pub(crate) async fn next_seq(
    connection: &mut AnyConnection,
    channel_id: i64,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(
        "UPDATE channels_channels SET last_seq = last_seq + 1, updated_ms = $2 WHERE id = $1 RETURNING last_seq",
    )
    .bind(channel_id)
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?
    .map(|row| row.try_get("last_seq"))
    .transpose()
}

/// Records event `seq` of `channel_id`, for clients catching up.
pub(crate) async fn log_event(
    connection: &mut AnyConnection,
    channel_id: i64,
    seq: i64,
    kind: &str,
    payload: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO channels_events (channel_id, seq, kind, payload, created_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(channel_id)
    .bind(seq)
    .bind(kind)
    .bind(payload)
    .bind(now)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// One logged event.
#[derive(Debug)]
pub(crate) struct EventRow {
    pub seq: i64,
    pub kind: String,
    pub payload: String,
    pub created_ms: i64,
}

pub(crate) async fn events_after(
    pool: &AnyPool,
    channel_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query(
        "SELECT seq, kind, payload, created_ms FROM channels_events \
         WHERE channel_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(channel_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| {
        Ok(EventRow {
            seq: row.try_get("seq")?,
            kind: row.try_get("kind")?,
            payload: row.try_get("payload")?,
            created_ms: row.try_get("created_ms")?,
        })
    })
    .collect()
}

pub(crate) async fn update_channel(
    connection: &mut AnyConnection,
    channel_id: i64,
    name: &str,
    topic: &str,
) -> Result<bool, sqlx::Error> {
    match sqlx::query("UPDATE channels_channels SET name = $2, topic = $3 WHERE id = $1")
        .bind(channel_id)
        .bind(name)
        .bind(topic)
        .execute(&mut *connection)
        .await
    {
        Ok(_) => Ok(true),
        Err(error) if is_unique_violation(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Adds a member; whether they were not one already.
pub(crate) async fn add_member(
    connection: &mut AnyConnection,
    channel_id: i64,
    user_id: i64,
    last_read_seq: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO channels_members (channel_id, user_id, role, joined_ms, last_read_seq) \
         VALUES ($1, $2, 'member', $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(channel_id)
    .bind(user_id)
    .bind(now)
    .bind(last_read_seq)
    .execute(&mut *connection)
    .await?
    .rows_affected()
        == 1)
}

/// Removes a member; whether they were one.
pub(crate) async fn remove_member(
    connection: &mut AnyConnection,
    channel_id: i64,
    user_id: i64,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM channels_members WHERE channel_id = $1 AND user_id = $2")
            .bind(channel_id)
            .bind(user_id)
            .execute(&mut *connection)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Moves `user_id`'s read marker of `channel_id` forward to `seq` (never back); the marker
/// in force afterwards, `None` when they are not a member.
pub(crate) async fn mark_read(
    pool: &AnyPool,
    channel_id: i64,
    user_id: i64,
    seq: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(
        "UPDATE channels_members SET last_read_seq = CASE WHEN last_read_seq > $3 THEN last_read_seq ELSE $3 END \
         WHERE channel_id = $1 AND user_id = $2 RETURNING last_read_seq",
    )
    .bind(channel_id)
    .bind(user_id)
    .bind(seq)
    .fetch_optional(pool)
    .await?
    .map(|row| row.try_get("last_read_seq"))
    .transpose()
}

/// Moves `user_id`'s read marker of `channel_id` to `seq`, their own message, in its
/// transaction.
pub(crate) async fn mark_own_read(
    connection: &mut AnyConnection,
    channel_id: i64,
    user_id: i64,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE channels_members SET last_read_seq = $3 WHERE channel_id = $1 AND user_id = $2 AND last_read_seq < $3",
    )
    .bind(channel_id)
    .bind(user_id)
    .bind(seq)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// A message, as stored.
#[derive(Clone, Debug)]
pub(crate) struct MessageRow {
    pub id: i64,
    pub channel_id: i64,
    pub seq: i64,
    pub author_id: i64,
    pub body: String,
    pub thread_root_id: Option<i64>,
    pub reply_count: i64,
    pub file_ids: Vec<i64>,
    pub created_ms: i64,
    pub edited_ms: Option<i64>,
    pub deleted_ms: Option<i64>,
    /// Reactions it has (0: no need to ask for them).
    pub reaction_count: i64,
}

const MESSAGE_COLUMNS: &str = "id, channel_id, seq, author_id, body, thread_root_id, reply_count, file_ids, created_ms, edited_ms, deleted_ms, reaction_count";

fn message_row(row: &AnyRow) -> Result<MessageRow, sqlx::Error> {
    Ok(MessageRow {
        id: row.try_get("id")?,
        channel_id: row.try_get("channel_id")?,
        seq: row.try_get("seq")?,
        author_id: row.try_get("author_id")?,
        body: row.try_get("body")?,
        thread_root_id: row.try_get("thread_root_id")?,
        reply_count: row.try_get("reply_count")?,
        file_ids: row
            .try_get::<String, _>("file_ids")?
            .split(',')
            .filter_map(|id| id.parse().ok())
            .collect(),
        created_ms: row.try_get("created_ms")?,
        edited_ms: row.try_get("edited_ms")?,
        deleted_ms: row.try_get("deleted_ms")?,
        reaction_count: row.try_get("reaction_count")?,
    })
}

pub(crate) async fn message(pool: &AnyPool, id: i64) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM channels_messages WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(message_row)
    .transpose()
}

/// Inserts a message with sequence number `seq`, its search terms, and (a reply) the count
/// on its thread's root.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_message(
    connection: &mut AnyConnection,
    channel_id: i64,
    seq: i64,
    author_id: i64,
    body: &str,
    thread_root_id: Option<i64>,
    file_ids: &[i64],
    terms: &[String],
    now: i64,
) -> Result<MessageRow, sqlx::Error> {
    let files = file_ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO channels_messages (channel_id, seq, author_id, body, thread_root_id, reply_count, file_ids, created_ms) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7) RETURNING {MESSAGE_COLUMNS}"
    )))
    .bind(channel_id)
    .bind(seq)
    .bind(author_id)
    .bind(body)
    .bind(thread_root_id)
    .bind(files)
    .bind(now)
    .fetch_one(&mut *connection)
    .await?;
    let message = message_row(&row)?;
    index_terms(connection, message.id, channel_id, terms).await?;
    if let Some(root) = thread_root_id {
        sqlx::query("UPDATE channels_messages SET reply_count = reply_count + 1 WHERE id = $1")
            .bind(root)
            .execute(&mut *connection)
            .await?;
    }
    Ok(message)
}

async fn index_terms(
    connection: &mut AnyConnection,
    message_id: i64,
    channel_id: i64,
    terms: &[String],
) -> Result<(), sqlx::Error> {
    // Bound in batches: one statement per message, not per word.
    for batch in terms.chunks(100) {
        let values = (0..batch.len())
            .map(|index| format!("(${}, $1, $2)", index + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql =
            format!("INSERT INTO channels_search (term, message_id, channel_id) VALUES {values}");
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(message_id)
            .bind(channel_id);
        for term in batch {
            query = query.bind(term);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Replaces a live message's body (and its search terms); the message as it now is, `None`
/// when it was deleted meanwhile.
pub(crate) async fn edit_message(
    connection: &mut AnyConnection,
    message: &MessageRow,
    body: &str,
    terms: &[String],
    now: i64,
) -> Result<Option<MessageRow>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE channels_messages SET body = $2, edited_ms = $3 WHERE id = $1 AND deleted_ms IS NULL \
         RETURNING {MESSAGE_COLUMNS}"
    )))
    .bind(message.id)
    .bind(body)
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM channels_search WHERE message_id = $1")
        .bind(message.id)
        .execute(&mut *connection)
        .await?;
    index_terms(connection, message.id, message.channel_id, terms).await?;
    message_row(&row).map(Some)
}

/// Makes a live message a tombstone: its body, search terms and reactions go; a reply no
/// longer counts on its root. The tombstone, `None` when it already was one.
pub(crate) async fn delete_message(
    connection: &mut AnyConnection,
    message: &MessageRow,
    now: i64,
) -> Result<Option<MessageRow>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE channels_messages SET body = '', deleted_ms = $2, reaction_count = 0 WHERE id = $1 AND deleted_ms IS NULL \
         RETURNING {MESSAGE_COLUMNS}"
    )))
    .bind(message.id)
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    for table in ["channels_search", "channels_reactions"] {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE message_id = $1"
        )))
        .bind(message.id)
        .execute(&mut *connection)
        .await?;
    }
    if let Some(root) = message.thread_root_id {
        sqlx::query(
            "UPDATE channels_messages SET reply_count = reply_count - 1 WHERE id = $1 AND reply_count > 0",
        )
        .bind(root)
        .execute(&mut *connection)
        .await?;
    }
    message_row(&row).map(Some)
}

/// Which way a page of history goes from its cursor.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Page {
    /// The newest.
    Latest,
    /// Those just before this sequence number.
    Before(i64),
    /// Those just after it.
    After(i64),
}

/// A page of `channel_id`'s messages (replies too with `replies`), oldest first; `limit + 1`
/// are read so the caller knows whether there are more.
pub(crate) async fn history(
    pool: &AnyPool,
    channel_id: i64,
    page: Page,
    replies: bool,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    let roots = if replies {
        ""
    } else {
        " AND thread_root_id IS NULL"
    };
    let (condition, order, cursor) = match page {
        Page::Latest => ("", "DESC", 0),
        Page::Before(seq) => (" AND seq < $3", "DESC", seq),
        Page::After(seq) => (" AND seq > $3", "ASC", seq),
    };
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM channels_messages WHERE channel_id = $1{roots}{condition} \
         ORDER BY seq {order} LIMIT $2"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(channel_id)
        .bind(limit + 1);
    // PostgreSQL refuses a value bound to no placeholder.
    if !matches!(page, Page::Latest) {
        query = query.bind(cursor);
    }
    let mut rows = query
        .fetch_all(pool)
        .await?
        .iter()
        .map(message_row)
        .collect::<Result<Vec<_>, _>>()?;
    if order == "DESC" {
        rows.reverse();
    }
    Ok(rows)
}

/// Replies to `root_id` after `after`, oldest first, `limit + 1` of them.
pub(crate) async fn replies(
    pool: &AnyPool,
    root_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM channels_messages WHERE thread_root_id = $1 AND seq > $2 \
         ORDER BY seq LIMIT $3"
    )))
    .bind(root_id)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?
    .iter()
    .map(message_row)
    .collect()
}

/// One reaction.
#[derive(Debug)]
pub(crate) struct ReactionRow {
    pub message_id: i64,
    pub emoji: String,
    pub user_id: i64,
}

/// The reactions to `message_ids`, by message, emoji and time.
pub(crate) async fn reactions(
    pool: &AnyPool,
    message_ids: &[i64],
) -> Result<Vec<ReactionRow>, sqlx::Error> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT message_id, emoji, user_id FROM channels_reactions WHERE message_id IN ({}) \
         ORDER BY message_id, created_ms, emoji, user_id",
        placeholders(1, message_ids.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in message_ids {
        query = query.bind(id);
    }
    query
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            Ok(ReactionRow {
                message_id: row.try_get("message_id")?,
                emoji: row.try_get("emoji")?,
                user_id: row.try_get("user_id")?,
            })
        })
        .collect()
}

/// Adds or removes one reaction; whether anything changed.
pub(crate) async fn set_reaction(
    connection: &mut AnyConnection,
    message_id: i64,
    user_id: i64,
    emoji: &str,
    present: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = if present {
        sqlx::query(
            "INSERT INTO channels_reactions (message_id, user_id, emoji, created_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(message_id)
        .bind(user_id)
        .bind(emoji)
        .bind(now)
        .execute(&mut *connection)
        .await?
    } else {
        sqlx::query(
            "DELETE FROM channels_reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
        )
        .bind(message_id)
        .bind(user_id)
        .bind(emoji)
        .execute(&mut *connection)
        .await?
    };
    let changed = result.rows_affected() == 1;
    if changed {
        sqlx::query(
            "UPDATE channels_messages SET reaction_count = reaction_count + $1 WHERE id = $2",
        )
        .bind(if present { 1_i64 } else { -1 })
        .bind(message_id)
        .execute(&mut *connection)
        .await?;
    }
    Ok(changed)
}

/// Whether `message_id` has `user_id`'s `emoji`.
pub(crate) async fn has_reaction(
    pool: &AnyPool,
    message_id: i64,
    user_id: i64,
    emoji: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "SELECT 1 AS present FROM channels_reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
    )
    .bind(message_id)
    .bind(user_id)
    .bind(emoji)
    .fetch_optional(pool)
    .await?
    .is_some())
}

/// One word of a search: a whole word, or (`prefix`) the start of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub word: String,
    pub prefix: bool,
}

/// Live messages `user_id` may read (in channels they are in, or public ones; in
/// `channel_id` only when given) with every term, newest first, with an id below `before`.
pub(crate) async fn search(
    pool: &AnyPool,
    user_id: i64,
    terms: &[Term],
    channel_id: Option<i64>,
    before: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    // One word drives: a batch of its index entries is read newest first (the primary key is
    // (term, message_id)), in a subquery with its own ORDER BY and LIMIT that both engines
    // plan alone, as a backwards walk of that index, with or without statistics; the outer
    // query keeps the candidates that are live, readable by the caller and have every other
    // word, by primary key. One query answers a page when the batch holds enough; else the
    // next, larger batch starts where this one ended. (One join of the index with the
    // messages instead made SQLite without statistics sort every match, and PostgreSQL on a
    // table never analysed scan every message.) An exact word drives when there is one (its
    // entries are in id order already); the longest is likely the rarest. Bytewise order
    // makes a prefix a range.
    let driver = terms
        .iter()
        .enumerate()
        .max_by_key(|(_, term)| (!term.prefix, term.word.len()))
        .map_or(0, |(at, _)| at);
    let condition = |term: &Term, alias: &str, values: &mut Vec<String>, first: usize| {
        values.push(term.word.clone());
        let low = first + values.len() - 1;
        if term.prefix {
            values.push(format!("{}\u{10FFFF}", term.word));
            format!("{alias}.term >= ${low} AND {alias}.term < ${}", low + 1)
        } else {
            format!("{alias}.term = ${low}")
        }
    };
    // A batch of the driving word's entries below a cursor ($1), in a channel or any ($2),
    // at most $3, the word's values from $4; `first` numbers them from elsewhere.
    let batch_sql = |first: usize| {
        let mut values = Vec::new();
        let driving = condition(&terms[driver], "s", &mut values, first + 3);
        // A prefix matches several words of one message: DISTINCT keeps it once.
        let distinct = if terms[driver].prefix {
            "DISTINCT "
        } else {
            ""
        };
        let sql = format!(
            "SELECT {distinct}s.message_id FROM channels_search s \
             WHERE {driving} AND s.message_id < ${first} AND (${channel} = 0 OR s.channel_id = ${channel}) \
             ORDER BY s.message_id DESC LIMIT ${limit}",
            channel = first + 1,
            limit = first + 2,
        );
        (sql, values)
    };
    // The page: the caller ($1), the other words' values ($2…), then the batch's.
    let mut other_values = Vec::new();
    let mut others = String::new();
    for (at, term) in terms.iter().enumerate().filter(|&(at, _)| at != driver) {
        let alias = format!("o{at}");
        let matches = condition(term, &alias, &mut other_values, 2);
        others.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM channels_search {alias} \
             WHERE {matches} AND {alias}.message_id = m.id)"
        ));
    }
    let (batch_in_page, driving_values) = batch_sql(2 + other_values.len());
    let page_sql = format!(
        "SELECT {columns} FROM channels_messages m \
         WHERE m.id IN ({batch_in_page}) AND m.deleted_ms IS NULL{others} \
           AND (m.channel_id IN (SELECT channel_id FROM channels_members WHERE user_id = $1) \
                OR m.channel_id IN (SELECT id FROM channels_channels WHERE kind = 'public')) \
         ORDER BY m.id DESC",
        columns = MESSAGE_COLUMNS
            .split(", ")
            .map(|column| format!("m.{column}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let (alone_sql, _) = batch_sql(1);
    let wanted = usize::try_from(limit + 1).unwrap_or(usize::MAX);
    // The first batch is the smallest that holds a page; each next one the next size.
    let mut batch = SEARCH_BATCHES
        .iter()
        .copied()
        .find(|&size| size >= wanted)
        .unwrap_or(SEARCH_BATCHES[SEARCH_BATCHES.len() - 1]);
    let mut found = Vec::new();
    let mut cursor = before;
    let channel = channel_id.unwrap_or(0);
    loop {
        let size = i64::try_from(batch).unwrap_or(i64::MAX);
        let mut query = sqlx::query(AssertSqlSafe(page_sql.as_str())).bind(user_id);
        for value in &other_values {
            query = query.bind(value);
        }
        query = query.bind(cursor).bind(channel).bind(size);
        for value in &driving_values {
            query = query.bind(value);
        }
        for row in query.fetch_all(pool).await? {
            found.push(message_row(&row)?);
        }
        if found.len() >= wanted {
            break;
        }
        // Too few kept: where did the batch end, and was it the last?
        let mut query = sqlx::query(AssertSqlSafe(alone_sql.as_str()))
            .bind(cursor)
            .bind(channel)
            .bind(size);
        for value in &driving_values {
            query = query.bind(value);
        }
        let candidates = query.fetch_all(pool).await?;
        let Some(last) = candidates.last() else {
            break;
        };
        if candidates.len() < batch {
            break;
        }
        cursor = last.try_get("message_id")?;
        batch = SEARCH_BATCHES
            .iter()
            .copied()
            .find(|&size| size > batch)
            .unwrap_or(batch);
    }
    found.truncate(wanted);
    Ok(found)
}

/// How many candidates a search reads from its driving word's index at a time: the first
/// batch the smallest that holds a page, each next one the next size.
const SEARCH_BATCHES: [usize; 3] = [16, 64, 256];

/// What an earlier create with this `Idempotency-Key` made: its fingerprint and resource.
pub(crate) async fn idempotent(
    pool: &AnyPool,
    user_id: i64,
    key: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query(
        "SELECT fingerprint, resource_id FROM channels_idempotency WHERE user_id = $1 AND key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(pool)
    .await?
    .map(|row| Ok((row.try_get("fingerprint")?, row.try_get("resource_id")?)))
    .transpose()
}

/// Records what a create with `key` made, in its transaction; `false` when a concurrent
/// request with the same key got there first (the caller rolls back).
pub(crate) async fn remember(
    connection: &mut AnyConnection,
    user_id: i64,
    key: &str,
    fingerprint: &str,
    resource_id: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    match sqlx::query(
        "INSERT INTO channels_idempotency (user_id, key, fingerprint, resource_id, created_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(key)
    .bind(fingerprint)
    .bind(resource_id)
    .bind(now)
    .execute(&mut *connection)
    .await
    {
        Ok(_) => Ok(true),
        Err(error) if is_unique_violation(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Forgets idempotency keys older than `before`.
pub(crate) async fn prune(pool: &AnyPool, before: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM channels_idempotency WHERE created_ms < $1")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(())
}
