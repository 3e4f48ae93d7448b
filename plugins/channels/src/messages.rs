//! Messages: posting (with threads and `Idempotency-Key`), history by sequence number,
//! editing, deleting to a tombstone, reactions, threads and search.

use std::collections::BTreeMap;

use accounts::Caller;
use plexichat::http::HeaderMap;
use plexichat::prelude::*;
use plexichat::sqlx::AnyPool;

use crate::api::{Change, ChannelPath, Created, Seen, forbidden, limit};
use crate::store::{self, MessageRow, Page};
use crate::{Channels, MessagePosting, text};

/// The people who reacted to a message with one emoji.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct ReactionSummary {
    /// The emoji or its name.
    pub emoji: String,
    /// How many reacted with it.
    pub count: i64,
    /// Who, in the order they reacted.
    pub user_ids: Vec<i64>,
}

/// A message.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Its id.
    pub id: i64,
    /// Its channel.
    pub channel_id: i64,
    /// The channel's sequence number of the event that posted it.
    pub seq: i64,
    /// Who wrote it.
    pub author_id: i64,
    /// The text (empty once deleted).
    pub body: String,
    /// The message whose thread it is in, if it is a reply.
    pub thread_root_id: Option<i64>,
    /// Replies to it (a thread's root).
    pub reply_count: i64,
    /// Attached files (`GET /api/v1/files/{id}`), in order.
    pub file_ids: Vec<i64>,
    /// When it was posted (RFC 3339).
    pub created_at: String,
    /// When it was last edited (RFC 3339), if it was.
    pub edited_at: Option<String>,
    /// Whether it was deleted (a tombstone keeps its place in the history and its thread).
    pub deleted: bool,
    /// Reactions, by emoji in the order they first appeared.
    pub reactions: Vec<ReactionSummary>,
}

impl Message {
    fn of(row: &MessageRow, reactions: Vec<ReactionSummary>) -> Message {
        Message {
            id: row.id,
            channel_id: row.channel_id,
            seq: row.seq,
            author_id: row.author_id,
            body: row.body.clone(),
            thread_root_id: row.thread_root_id,
            reply_count: row.reply_count,
            file_ids: row.file_ids.clone(),
            created_at: store::rfc3339(row.created_ms),
            edited_at: row.edited_ms.map(store::rfc3339),
            deleted: row.deleted_ms.is_some(),
            reactions,
        }
    }

    /// `rows` with their reactions, read in one query.
    async fn all(pool: &AnyPool, rows: &[MessageRow]) -> Result<Vec<Message>, ApiError> {
        let ids: Vec<i64> = rows
            .iter()
            .filter(|row| row.reaction_count > 0)
            .map(|row| row.id)
            .collect();
        let mut by_message: BTreeMap<i64, Vec<ReactionSummary>> = BTreeMap::new();
        for reaction in store::reactions(pool, &ids).await? {
            let summaries = by_message.entry(reaction.message_id).or_default();
            match summaries
                .iter_mut()
                .find(|summary| summary.emoji == reaction.emoji)
            {
                Some(summary) => {
                    summary.count += 1;
                    summary.user_ids.push(reaction.user_id);
                }
                None => summaries.push(ReactionSummary {
                    emoji: reaction.emoji,
                    count: 1,
                    user_ids: vec![reaction.user_id],
                }),
            }
        }
        Ok(rows
            .iter()
            .map(|row| Message::of(row, by_message.remove(&row.id).unwrap_or_default()))
            .collect())
    }

    async fn one(pool: &AnyPool, row: &MessageRow) -> Result<Message, ApiError> {
        Ok(Message::all(pool, std::slice::from_ref(row))
            .await?
            .pop()
            .unwrap_or_else(|| Message::of(row, Vec::new())))
    }

    fn value(&self) -> Value {
        plexichat::serde_json::to_value(self).unwrap_or_default()
    }
}

fn message_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("no message {id} that you can see")).with_code("message_not_found")
}

/// The message `id` and its channel, if the caller may read the channel.
async fn seen_message(
    pool: &AnyPool,
    id: i64,
    caller: &Caller,
) -> Result<(MessageRow, Seen), ApiError> {
    let message = store::message(pool, id)
        .await?
        .ok_or_else(|| message_not_found(id))?;
    // A message in a channel the caller may not see does not exist for them either.
    let seen = Seen::of(pool, message.channel_id, caller)
        .await
        .map_err(|_| message_not_found(id))?;
    Ok((message, seen))
}

fn deleted(id: i64) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, format!("message {id} was deleted"))
        .with_code("message_deleted")
}

/// `POST /api/v1/channels/{id}/messages`' body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// The text: not blank, at most `max_message_chars` (4000 unless configured).
    pub body: String,
    /// A message of the channel to reply to, in its thread (a reply to a reply goes to the
    /// thread's root).
    pub thread_root_id: Option<i64>,
    /// Files the caller uploaded (`POST /api/v1/files`) to attach, at most 10; the
    /// channel's readers may then read them.
    pub file_ids: Option<Vec<i64>>,
}

/// Posts a message (201), as a member of the channel (403 `not_a_member` otherwise). With an
/// `Idempotency-Key` header, a retry answers the message the first request posted
/// (`Idempotent-Replayed: true`) instead of posting it twice; the key reused for other text
/// is 422 `idempotency_key_reused`. Plugins may rewrite or refuse it first
/// (`channels.message.posting`).
#[route(POST, "/channels/{id}/messages")]
async fn post_message(
    plugin: PluginState<Channels>,
    context: PluginContext<Channels>,
    config: PluginConfig<Channels>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): Path<ChannelPath>,
    Json(post): Json<PostMessage>,
) -> Result<Created<Message>, ApiError> {
    let key = text::idempotency_key(&headers)?;
    let posting = Posting {
        caller: &caller,
        key,
        channel_id: path.id,
        post,
        admit: &|| Ok(()),
    };
    post_to(&plugin, &context, &config, posting).await
}

impl Channels {
    /// Posts `post` to channel `channel_id` as `author`, exactly as `POST
    /// /api/v1/channels/{id}/messages` does for them (membership, rate limit, the
    /// `channels.message.posting` proposal, `idempotency_key`): for a plugin that posts on a
    /// person's behalf, such as an incoming webhook. `admit` is asked once a retry under the
    /// same key has been answered and before anything is posted (the caller's own rate
    /// limit); its error is the answer. Answers the message, and whether it was posted before
    /// under the same key.
    pub async fn post_as(
        &self,
        author: &Caller,
        channel_id: i64,
        post: PostMessage,
        idempotency_key: Option<String>,
        admit: &(dyn Fn() -> Result<(), ApiError> + Sync),
    ) -> Result<(Message, bool), ApiError> {
        let context = self
            .context
            .get()
            .ok_or_else(|| ApiError::unavailable("channels has not started"))?;
        let config = context.config::<Channels>().unwrap_or_default();
        let posting = Posting {
            caller: author,
            key: idempotency_key,
            channel_id,
            post,
            admit,
        };
        let created = post_to(self, context, &config, posting).await?;
        Ok(created.into_parts())
    }
}

/// One post to make: by whom, where, what, under which `Idempotency-Key`, and what the
/// caller asks before anything is posted.
struct Posting<'a> {
    caller: &'a Caller,
    key: Option<String>,
    channel_id: i64,
    post: PostMessage,
    admit: &'a (dyn Fn() -> Result<(), ApiError> + Sync),
}

async fn post_to(
    plugin: &Channels,
    context: &PluginContext<Channels>,
    config: &crate::ChannelsConfig,
    posting: Posting<'_>,
) -> Result<Created<Message>, ApiError> {
    let Posting {
        caller,
        key,
        channel_id,
        post,
        admit,
    } = posting;
    let pool = plugin.pool()?;
    let path = ChannelPath { id: channel_id };
    let caller = caller.clone();
    let root = post
        .thread_root_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    let file_ids = post.file_ids.clone().unwrap_or_default();
    let files = format!("{file_ids:?}");
    let fingerprint = text::fingerprint(&[
        "POST /channels/{id}/messages",
        &path.id.to_string(),
        &post.body,
        &root,
        &files,
    ]);
    if let Some(key) = &key
        && let Some(answer) = replay(pool, &caller, key, &fingerprint).await?
    {
        return Ok(answer);
    }
    admit()?;
    let seen = Seen::of(pool, path.id, &caller).await?;
    seen.member()?;
    // A retry of a post that went through is answered above, and costs nothing.
    if let Err(wait) = plugin.sends.take(
        caller.user_id,
        std::time::Duration::from_secs(1) / config.messages_per_second.max(1),
        config.message_burst,
    ) {
        let seconds = plexichat::limit::retry_after_seconds(wait);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("you are posting faster than this server allows; try again in {seconds} s"),
        )
        .with_code("rate_limited")
        .with_retry_after(seconds));
    }
    let body = text::body("body", &post.body, config.max_message_chars)?;
    let thread_root_id = match post.thread_root_id {
        None => None,
        Some(id) => {
            let root = store::message(pool, id)
                .await?
                .filter(|root| root.channel_id == path.id)
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "thread_root_id",
                        format!("there is no message {id} in this channel"),
                    )
                    .with_code("message_not_found")
                })?;
            let root = match root.thread_root_id {
                Some(top) => store::message(pool, top).await?.unwrap_or(root),
                None => root,
            };
            if root.deleted_ms.is_some() {
                return Err(deleted(root.id));
            }
            Some(root.id)
        }
    };
    if file_ids.len() > 10 {
        return Err(ApiError::invalid_field(
            "file_ids",
            "a message has at most 10 files",
        ));
    }
    let mut posting = MessagePosting {
        channel_id: path.id,
        author_id: caller.user_id,
        body,
        thread_root_id,
        file_ids: file_ids.clone(),
        files_accepted: false,
    };
    context.propose(&mut posting).await?;
    if !posting.file_ids.is_empty() && !posting.files_accepted {
        return Err(ApiError::invalid_field(
            "file_ids",
            "this server keeps no files (the `files` plugin is not running)",
        ));
    }
    // A pre-handler's rewrite is held to the same rules.
    let body = text::body("body", &posting.body, config.max_message_chars)?;
    let terms = text::terms(&body);
    let mut change = Change::begin(plugin.db()?, path.id)
        .await?
        .ok_or_else(|| crate::api::channel_not_found(path.id))?;
    let (seq, now) = (change.seq, change.now);
    let row = store::insert_message(
        change.connection(),
        path.id,
        seq,
        caller.user_id,
        &body,
        thread_root_id,
        &posting.file_ids,
        &terms,
        now,
    )
    .await?;
    if let Some(key) = &key
        && !store::remember(
            change.connection(),
            caller.user_id,
            key,
            &fingerprint,
            row.id,
            now,
        )
        .await?
    {
        // The same key, sent again while the first was being written: that one stands.
        drop(change);
        return replay(pool, &caller, key, &fingerprint)
            .await?
            .ok_or_else(|| ApiError::unavailable("a request with this key is in flight; retry"));
    }
    let message = Message::of(&row, Vec::new());
    // The author has read what they wrote.
    store::mark_own_read(change.connection(), path.id, caller.user_id, seq).await?;
    change
        .commit(context, &seen.channel, "message.created", message.value())
        .await?;
    // Messages per channel per day, and who posted each day (daily active people): two
    // metrics, so that neither has a row per channel and person. Neither waits.
    let analytics = context.analytics();
    analytics.record("chat.messages", &[("channel", &path.id.to_string())]);
    analytics.record("chat.posters", &[("user", &caller.user_id.to_string())]);
    Ok(Created::new(StatusCode::CREATED, message))
}

/// The answer to a retried post: the message the key's first request posted, as it is now
/// and if the caller may still read it.
async fn replay(
    pool: &AnyPool,
    caller: &Caller,
    key: &str,
    fingerprint: &str,
) -> Result<Option<Created<Message>>, ApiError> {
    let Some((earlier, id)) = store::idempotent(pool, caller.user_id, key).await? else {
        return Ok(None);
    };
    if earlier != fingerprint {
        return Err(text::key_reused());
    }
    let (row, _) = seen_message(pool, id, caller).await?;
    let message = Message::one(pool, &row).await?;
    Ok(Some(Created::replayed(message)))
}

/// `GET /api/v1/channels/{id}/messages`' query.
#[payload(request)]
#[derive(Debug, Default)]
pub struct HistoryQuery {
    /// Messages before this sequence number (older ones).
    pub before: Option<i64>,
    /// Messages after this sequence number (newer ones); not with `before`.
    pub after: Option<i64>,
    /// At most this many (50 unless given, at most 200).
    pub limit: Option<i64>,
    /// Thread replies too (else only messages in the channel itself, each with its
    /// `reply_count`).
    pub replies: Option<bool>,
}

/// A page of messages.
#[payload(response)]
#[derive(Debug)]
pub struct MessagePage {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// Whether there are more in the direction asked (older for `before` or the latest,
    /// newer for `after`).
    pub has_more: bool,
}

/// A channel's history by sequence number, oldest first: the latest messages, those
/// `before` a sequence number (scrolling back) or `after` one (catching up). Deleted
/// messages stay as tombstones.
#[route(GET, "/channels/{id}/messages")]
async fn history(
    plugin: PluginState<Channels>,
    caller: Caller,
    Path(path): Path<ChannelPath>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let pool = plugin.pool()?;
    Seen::of(pool, path.id, &caller).await?;
    let limit = limit(query.limit, 50)?;
    let page = match (query.before, query.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field(
                "after",
                "give `before` or `after`, not both",
            ));
        }
        (Some(before), None) => Page::Before(before),
        (None, Some(after)) => Page::After(after),
        (None, None) => Page::Latest,
    };
    let mut rows =
        store::history(pool, path.id, page, query.replies.unwrap_or(false), limit).await?;
    let has_more = rows.len() as i64 > limit;
    if has_more {
        // The extra row is the farthest from the cursor.
        match page {
            Page::After(_) => {
                rows.pop();
            }
            Page::Latest | Page::Before(_) => {
                rows.remove(0);
            }
        }
    }
    Ok(Json(MessagePage {
        messages: Message::all(pool, &rows).await?,
        has_more,
    }))
}

/// Path of a message.
#[payload(request)]
#[derive(Debug)]
pub struct MessagePath {
    /// The message's id.
    pub id: i64,
}

/// One message, in a channel the caller may see.
#[route(GET, "/messages/{id}")]
async fn get_message(
    plugin: PluginState<Channels>,
    caller: Caller,
    Path(path): Path<MessagePath>,
) -> Result<Json<Message>, ApiError> {
    let pool = plugin.pool()?;
    let (row, _) = seen_message(pool, path.id, &caller).await?;
    Ok(Json(Message::one(pool, &row).await?))
}

/// `PATCH /api/v1/messages/{id}`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    /// The new text.
    pub body: String,
}

/// Edits a message: its author only, while they are a member; `edited_at` records it.
#[route(PATCH, "/messages/{id}")]
async fn edit_message(
    plugin: PluginState<Channels>,
    context: PluginContext<Channels>,
    config: PluginConfig<Channels>,
    caller: Caller,
    Path(path): Path<MessagePath>,
    Json(edit): Json<EditMessage>,
) -> Result<Json<Message>, ApiError> {
    let pool = plugin.pool()?;
    let (row, seen) = seen_message(pool, path.id, &caller).await?;
    seen.member()?;
    if row.author_id != caller.user_id {
        return Err(forbidden("only its author may edit a message"));
    }
    if row.deleted_ms.is_some() {
        return Err(deleted(row.id));
    }
    let body = text::body("body", &edit.body, config.max_message_chars)?;
    if body == row.body {
        return Ok(Json(Message::one(pool, &row).await?));
    }
    let terms = text::terms(&body);
    let mut change = Change::begin(plugin.db()?, row.channel_id)
        .await?
        .ok_or_else(|| message_not_found(row.id))?;
    let now = change.now;
    let Some(edited) = store::edit_message(change.connection(), &row, &body, &terms, now).await?
    else {
        return Err(deleted(row.id));
    };
    let event = Message::of(&edited, Vec::new()).value();
    change
        .commit(&context, &seen.channel, "message.updated", event)
        .await?;
    Ok(Json(Message::one(pool, &edited).await?))
}

/// Deletes a message (204): its author, the channel's owner or an admin. It stays as a
/// tombstone (`deleted`, empty body) so threads and history keep their shape; its reactions
/// go. Deleting a deleted message changes nothing.
#[route(DELETE, "/messages/{id}")]
async fn delete_message(
    plugin: PluginState<Channels>,
    context: PluginContext<Channels>,
    caller: Caller,
    Path(path): Path<MessagePath>,
) -> Result<StatusCode, ApiError> {
    let pool = plugin.pool()?;
    let (row, seen) = seen_message(pool, path.id, &caller).await?;
    if row.author_id != caller.user_id && !seen.moderates(&caller) {
        return Err(forbidden(
            "only its author, the channel's owner or an admin may delete a message",
        ));
    }
    if row.deleted_ms.is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let mut change = Change::begin(plugin.db()?, row.channel_id)
        .await?
        .ok_or_else(|| message_not_found(row.id))?;
    let now = change.now;
    let Some(tombstone) = store::delete_message(change.connection(), &row, now).await? else {
        // Deleted meanwhile; that deletion was the event.
        return Ok(StatusCode::NO_CONTENT);
    };
    let event = Message::of(&tombstone, Vec::new()).value();
    change
        .commit(&context, &seen.channel, "message.deleted", event)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/messages/{id}/thread`'s query.
#[payload(request)]
#[derive(Debug, Default)]
pub struct ThreadQuery {
    /// Replies after this sequence number.
    pub after: Option<i64>,
    /// At most this many replies (50 unless given, at most 200).
    pub limit: Option<i64>,
}

/// A thread: its root and replies.
#[payload(response)]
#[derive(Debug)]
pub struct Thread {
    /// The message replied to.
    pub root: Message,
    /// Replies, oldest first.
    pub replies: Vec<Message>,
    /// Whether more replies follow: ask again `after` the last one's `seq`.
    pub has_more: bool,
}

/// A message's thread (the thread it is in, for a reply).
#[route(GET, "/messages/{id}/thread")]
async fn thread(
    plugin: PluginState<Channels>,
    caller: Caller,
    Path(path): Path<MessagePath>,
    Query(query): Query<ThreadQuery>,
) -> Result<Json<Thread>, ApiError> {
    let pool = plugin.pool()?;
    let (row, _) = seen_message(pool, path.id, &caller).await?;
    let root = match row.thread_root_id {
        Some(root) => store::message(pool, root)
            .await?
            .ok_or_else(|| message_not_found(root))?,
        None => row,
    };
    let limit = limit(query.limit, 50)?;
    let mut replies = store::replies(pool, root.id, query.after.unwrap_or(0), limit).await?;
    let has_more = replies.len() as i64 > limit;
    replies.truncate(limit as usize);
    Ok(Json(Thread {
        root: Message::one(pool, &root).await?,
        replies: Message::all(pool, &replies).await?,
        has_more,
    }))
}

/// Path of a reaction.
#[payload(request)]
#[derive(Debug)]
pub struct ReactionPath {
    /// The message's id.
    pub id: i64,
    /// The emoji (percent-encoded in the URL) or its name.
    pub emoji: String,
}

/// Reacts to a message (204), as a member; reacting twice with one emoji is one reaction.
#[route(PUT, "/messages/{id}/reactions/{emoji}")]
async fn add_reaction(
    plugin: PluginState<Channels>,
    context: PluginContext<Channels>,
    caller: Caller,
    Path(path): Path<ReactionPath>,
) -> Result<StatusCode, ApiError> {
    react(&plugin, &context, &caller, path, true).await
}

/// Takes the caller's reaction back (204, also when there was none).
#[route(DELETE, "/messages/{id}/reactions/{emoji}")]
async fn remove_reaction(
    plugin: PluginState<Channels>,
    context: PluginContext<Channels>,
    caller: Caller,
    Path(path): Path<ReactionPath>,
) -> Result<StatusCode, ApiError> {
    react(&plugin, &context, &caller, path, false).await
}

async fn react(
    plugin: &Channels,
    context: &PluginContext<Channels>,
    caller: &Caller,
    path: ReactionPath,
    present: bool,
) -> Result<StatusCode, ApiError> {
    let pool = plugin.pool()?;
    let emoji = text::emoji("emoji", &path.emoji)?;
    let (row, seen) = seen_message(pool, path.id, caller).await?;
    seen.member()?;
    if row.deleted_ms.is_some() {
        return Err(deleted(row.id));
    }
    // Nothing to do is no event (and no sequence number spent).
    if store::has_reaction(pool, row.id, caller.user_id, &emoji).await? == present {
        return Ok(StatusCode::NO_CONTENT);
    }
    let mut change = Change::begin(plugin.db()?, row.channel_id)
        .await?
        .ok_or_else(|| message_not_found(row.id))?;
    let now = change.now;
    if !store::set_reaction(
        change.connection(),
        row.id,
        caller.user_id,
        &emoji,
        present,
        now,
    )
    .await?
    {
        return Ok(StatusCode::NO_CONTENT);
    }
    let kind = if present {
        "reaction.added"
    } else {
        "reaction.removed"
    };
    let reaction = json!({ "message_id": row.id, "emoji": emoji, "user_id": caller.user_id });
    change
        .commit(context, &seen.channel, kind, reaction)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/messages/search`' query.
#[payload(request)]
#[derive(Debug)]
pub struct SearchQuery {
    /// Words the messages all contain (any case; end one with `*` for words starting with
    /// it), 1 to 8.
    pub q: String,
    /// Only in this channel.
    pub channel_id: Option<i64>,
    /// Only messages with a smaller id: the `next_before` of the previous page.
    pub before: Option<i64>,
    /// At most this many (20 unless given, at most 200).
    pub limit: Option<i64>,
}

/// Search results.
#[payload(response)]
#[derive(Debug)]
pub struct SearchPage {
    /// Newest first.
    pub messages: Vec<Message>,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
}

/// Messages with every word of `q`, in the channels the caller may read (those they are in,
/// and public ones), newest first.
#[route(GET, "/messages/search")]
async fn search(
    plugin: PluginState<Channels>,
    caller: Caller,
    Query(query): Query<SearchQuery>,
) -> Result<Json<SearchPage>, ApiError> {
    let pool = plugin.pool()?;
    let terms = text::query("q", &query.q)?;
    let limit = limit(query.limit, 20)?;
    if let Some(channel_id) = query.channel_id {
        Seen::of(pool, channel_id, &caller).await?;
    }
    let mut rows = store::search(
        pool,
        caller.user_id,
        &terms,
        query.channel_id,
        query.before.unwrap_or(i64::MAX),
        limit,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_before = more.then(|| rows.last().map(|row| row.id)).flatten();
    Ok(Json(SearchPage {
        messages: Message::all(pool, &rows).await?,
        next_before,
    }))
}
