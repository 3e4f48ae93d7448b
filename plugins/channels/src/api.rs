//! `/api/v1/channels/…`: creating, listing, reading and changing channels; their members;
//! read markers; and each channel's event log. Also what the message routes share: who may
//! see a channel, and how a change becomes an event.

use accounts::{Accounts, Caller, UserError};
use plexichat::http::{HeaderMap, HeaderValue};
use plexichat::lifecycle::{Db, WriteTransaction};
use plexichat::prelude::*;
use plexichat::response::Response;
use plexichat::sqlx::{AnyConnection, AnyPool};

use crate::store::{self, ChannelRow, MemberRow};
use crate::{ChannelEvent, Channels, text};

/// Most items in one page of any list.
pub(crate) const MAX_LIMIT: i64 = 200;

/// `limit` of a list: `default` when absent, else 1 to 200.
pub(crate) fn limit(given: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match given {
        None => Ok(default),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::invalid_field(
            "limit",
            format!("`limit` is 1 to {MAX_LIMIT}"),
        )),
    }
}

pub(crate) fn channel_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("no channel {id} that you can see")).with_code("channel_not_found")
}

/// A channel as the caller may see it, with their membership.
pub(crate) struct Seen {
    pub channel: ChannelRow,
    pub member: Option<MemberRow>,
}

impl Seen {
    /// The channel `id`, if the caller may read it: a public one, or one they are in. Any
    /// other is "not found", so that a private channel's existence does not leak.
    pub(crate) async fn of(pool: &AnyPool, id: i64, caller: &Caller) -> Result<Seen, ApiError> {
        let (channel, member) = store::channel_and_membership(pool, id, caller.user_id)
            .await?
            .ok_or_else(|| channel_not_found(id))?;
        if channel.kind != "public" && member.is_none() {
            return Err(channel_not_found(id));
        }
        Ok(Seen { channel, member })
    }

    /// The caller's membership, needed to write: 403 for a public channel they have not
    /// joined.
    pub(crate) fn member(&self) -> Result<&MemberRow, ApiError> {
        self.member.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "join channel {} first: `POST /api/v1/channels/{}/members`",
                    self.channel.id, self.channel.id
                ),
            )
            .with_code("not_a_member")
        })
    }

    /// Whether the caller moderates the channel: its owner, or an admin.
    pub(crate) fn moderates(&self, caller: &Caller) -> bool {
        caller.is_admin()
            || self
                .member
                .as_ref()
                .is_some_and(|member| member.role == "owner")
    }

    fn is_direct(&self) -> bool {
        self.channel.kind == "direct"
    }
}

/// One event of a channel: what the bus carries, the log keeps and clients are sent.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// Unique: `<channel_id>-<seq>`, for a client to drop a duplicate.
    pub event_id: String,
    /// The channel.
    pub channel_id: i64,
    /// The channel's sequence number of this event: one more than the event before it, so a
    /// client sees a gap.
    pub seq: i64,
    /// `channel.created`, `channel.updated`, `member.joined`, `member.left`,
    /// `message.created`, `message.updated`, `message.deleted`, `reaction.added` or
    /// `reaction.removed`.
    pub kind: String,
    /// What changed: the channel, the message, or `{message_id, emoji, user_id}` /
    /// `{user_id, role, by}`.
    pub data: Value,
    /// When (RFC 3339).
    pub at: String,
}

impl EventRecord {
    pub(crate) fn new(channel_id: i64, seq: i64, kind: &str, data: Value, now: i64) -> EventRecord {
        EventRecord {
            event_id: format!("{channel_id}-{seq}"),
            channel_id,
            seq,
            kind: kind.to_string(),
            data,
            at: store::rfc3339(now),
        }
    }

    /// Logs the event in the transaction that makes the change.
    pub(crate) async fn log(
        &self,
        connection: &mut AnyConnection,
        now: i64,
    ) -> Result<(), ApiError> {
        store::log_event(
            connection,
            self.channel_id,
            self.seq,
            &self.kind,
            &self.data.to_string(),
            now,
        )
        .await?;
        Ok(())
    }

    /// Logs the event in `transaction`, which makes the change, with its copy in the outbox
    /// (for webhooks); commits; then tells the bus.
    pub(crate) async fn commit(
        self,
        mut transaction: WriteTransaction,
        context: &PluginContext<Channels>,
        channel: &ChannelRow,
        now: i64,
    ) -> Result<(), ApiError> {
        self.log(&mut transaction, now).await?;
        let event = ChannelEvent {
            record: self,
            public: channel.kind == "public",
        };
        context
            .outbox()
            .write(&mut transaction, &event)
            .await
            .map_err(|error| ApiError::internal(error.to_string()))?;
        transaction.commit().await?;
        context.publish(&event).await;
        Ok(())
    }
}

/// One change to a channel, as one transaction: it takes the channel's next sequence number
/// first (so a channel's changes commit in the order of their numbers), the change is written
/// through [`Change::connection`], and [`Change::commit`] logs its event in the same
/// transaction, commits, and then publishes it.
pub(crate) struct Change {
    transaction: WriteTransaction,
    /// The channel.
    pub channel_id: i64,
    /// The change's sequence number.
    pub seq: i64,
    /// When it happens.
    pub now: i64,
}

impl Change {
    /// A change to `channel_id`; `None` when there is no such channel.
    pub(crate) async fn begin(
        db: &Db<Channels>,
        channel_id: i64,
    ) -> Result<Option<Change>, ApiError> {
        let mut transaction = db.begin_write().await?;
        // After the turn came: the channel's events are numbered in time order.
        let now = store::now_ms();
        let Some(seq) = store::next_seq(&mut transaction, channel_id, now).await? else {
            return Ok(None);
        };
        Ok(Some(Change {
            transaction,
            channel_id,
            seq,
            now,
        }))
    }

    /// The transaction, to write the change through.
    pub(crate) fn connection(&mut self) -> &mut AnyConnection {
        &mut self.transaction
    }

    /// Logs the change as a `kind` event carrying `data`, commits, and publishes the event.
    pub(crate) async fn commit(
        self,
        context: &PluginContext<Channels>,
        channel: &ChannelRow,
        kind: &str,
        data: Value,
    ) -> Result<(), ApiError> {
        EventRecord::new(self.channel_id, self.seq, kind, data, self.now)
            .commit(self.transaction, context, channel, self.now)
            .await
    }
}

/// Public, private or direct.
#[payload]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Anyone signed in reads it and may join.
    Public,
    /// Only its members know it exists.
    Private,
    /// Two people (or one, for notes to self).
    Direct,
}

impl ChannelKind {
    fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Public => "public",
            ChannelKind::Private => "private",
            ChannelKind::Direct => "direct",
        }
    }
}

/// The caller's membership of a channel.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct Membership {
    /// `owner` or `member`.
    pub role: String,
    /// When they joined (RFC 3339).
    pub joined_at: String,
    /// The sequence number they have read up to.
    pub last_read_seq: i64,
    /// Messages from others after it.
    pub unread: i64,
}

/// A channel.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// Its id.
    pub id: i64,
    /// `public`, `private` or `direct`.
    pub kind: String,
    /// Its name (lowercase; `dm-<id>-<id>` for a direct channel).
    pub name: String,
    /// What it is about.
    pub topic: String,
    /// Who created it.
    pub created_by: i64,
    /// When (RFC 3339).
    pub created_at: String,
    /// When its last event happened (RFC 3339).
    pub updated_at: String,
    /// The sequence number of its last event.
    pub last_seq: i64,
    /// How many members it has.
    pub member_count: i64,
    /// A direct channel's two people (one, for notes to self).
    pub direct_user_ids: Option<Vec<i64>>,
    /// The caller's membership; absent for a public channel they have not joined.
    pub membership: Option<Membership>,
}

impl Channel {
    pub(crate) fn of(
        row: &ChannelRow,
        member_count: i64,
        member: Option<(&MemberRow, i64)>,
    ) -> Channel {
        let direct_user_ids = row.direct_key.as_deref().map(|key| {
            let mut ids: Vec<i64> = key.split(':').filter_map(|id| id.parse().ok()).collect();
            ids.dedup();
            ids
        });
        Channel {
            id: row.id,
            kind: row.kind.clone(),
            name: row.name.clone(),
            topic: row.topic.clone(),
            created_by: row.created_by,
            created_at: store::rfc3339(row.created_ms),
            updated_at: store::rfc3339(row.updated_ms),
            last_seq: row.last_seq,
            member_count,
            direct_user_ids,
            membership: member.map(|(member, unread)| Membership {
                role: member.role.clone(),
                joined_at: store::rfc3339(member.joined_ms),
                last_read_seq: member.last_read_seq,
                unread,
            }),
        }
    }

    /// The channel as `caller` sees it now.
    async fn read(pool: &AnyPool, id: i64, caller: &Caller) -> Result<Channel, ApiError> {
        let seen = Seen::of(pool, id, caller).await?;
        let count = store::member_count(pool, id).await?;
        let unread = match &seen.member {
            Some(member) => store::unread(pool, id, caller.user_id, member.last_read_seq).await?,
            None => 0,
        };
        Ok(Channel::of(
            &seen.channel,
            count,
            seen.member.as_ref().map(|member| (member, unread)),
        ))
    }

    /// What an event about the channel carries: no one's membership.
    fn public_view(mut self) -> Value {
        self.membership = None;
        plexichat::serde_json::to_value(self).unwrap_or_default()
    }
}

/// The person `id`, or 400 naming `field`.
async fn existing_user(accounts: &Accounts, field: &str, id: i64) -> Result<(), ApiError> {
    match accounts.user(id).await {
        Ok(_) => Ok(()),
        Err(UserError::NotFound) => Err(ApiError::invalid_field(
            field,
            format!("there is no user {id}"),
        )
        .with_code("user_not_found")),
        Err(UserError::Unavailable(error)) => Err(error),
    }
}

/// `POST /api/v1/channels`' body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// `public`, `private` or `direct`.
    pub kind: ChannelKind,
    /// Public and private: 1 to 64 of `a-z 0-9 - _` (case does not matter), unique.
    pub name: Option<String>,
    /// What it is about, up to 250 characters.
    pub topic: Option<String>,
    /// Direct: the other person.
    pub user_id: Option<i64>,
    /// Public and private: people to add besides the caller (at most 100).
    pub member_ids: Option<Vec<i64>>,
}

/// What a create answers: the resource with its status (201, or 200 where an existing one
/// is the answer), marked `Idempotent-Replayed: true` when it repeats what an earlier request
/// with the same `Idempotency-Key` made. Documented in OpenAPI as `T`'s JSON.
pub(crate) struct Created<T> {
    status: StatusCode,
    body: T,
    replayed: bool,
}

impl<T> Created<T> {
    /// What it answers, and whether it answers an earlier request's.
    pub(crate) fn into_parts(self) -> (T, bool) {
        (self.body, self.replayed)
    }

    /// `body`, answered with `status`.
    pub(crate) fn new(status: StatusCode, body: T) -> Created<T> {
        Created {
            status,
            body,
            replayed: false,
        }
    }

    /// `body` again, for a retry with the same key.
    pub(crate) fn replayed(body: T) -> Created<T> {
        Created {
            status: StatusCode::CREATED,
            body,
            replayed: true,
        }
    }
}

impl<T: plexichat::serde::Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}

impl<T: plexichat::schemars::JsonSchema> plexichat::openapi::OutputDoc for Created<T> {
    fn describe_output(describer: &mut plexichat::openapi::Describer) {
        <(StatusCode, Json<T>) as plexichat::openapi::OutputDoc>::describe_output(describer);
    }
}

/// Creates a channel; the caller is its owner. A public or private channel needs a `name`
/// no other has (409 `name_taken`); a direct channel names the other person (`user_id`), and
/// there is one per pair: asking again answers the existing one with 200. Takes an
/// `Idempotency-Key`: a retry answers what the first request made.
#[route(POST, "/channels")]
async fn create_channel(
    plugin: PluginState<Channels>,
    accounts: PluginState<Accounts>,
    context: PluginContext<Channels>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<CreateChannel>,
) -> Result<Created<Channel>, ApiError> {
    let pool = plugin.pool()?;
    let key = text::idempotency_key(&headers)?;
    let request = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        body.kind, body.name, body.topic, body.user_id, body.member_ids
    );
    let fingerprint = text::fingerprint(&["POST /channels", &request]);
    if let Some(key) = &key
        && let Some((earlier, id)) = store::idempotent(pool, caller.user_id, key).await?
    {
        if earlier != fingerprint {
            return Err(text::key_reused());
        }
        let channel = Channel::read(pool, id, &caller).await?;
        return Ok(Created::replayed(channel));
    }
    let topic = text::topic("topic", body.topic.as_deref().unwrap_or(""))?;
    let now = store::now_ms();
    let (status, row, members, transaction) = match body.kind {
        ChannelKind::Direct => {
            if body.name.is_some() || body.member_ids.is_some() {
                return Err(ApiError::invalid_field(
                    if body.name.is_some() {
                        "name"
                    } else {
                        "member_ids"
                    },
                    "a direct channel has no name and no other members: give `user_id`",
                ));
            }
            let Some(other) = body.user_id else {
                return Err(ApiError::invalid_field(
                    "user_id",
                    "a direct channel needs `user_id`: the person to talk to",
                ));
            };
            existing_user(&accounts, "user_id", other).await?;
            let (low, high) = (caller.user_id.min(other), caller.user_id.max(other));
            let key = format!("{low}:{high}");
            let name = format!("dm-{low}-{high}");
            let members = if other == caller.user_id {
                vec![other]
            } else {
                vec![caller.user_id, other]
            };
            let mut transaction = plugin.db()?.begin_write().await?;
            match store::create_channel(
                &mut transaction,
                "direct",
                &name,
                &topic,
                Some(&key),
                &members,
                now,
            )
            .await?
            {
                Some(row) => (StatusCode::CREATED, row, members, Some(transaction)),
                None => {
                    drop(transaction);
                    let row = store::channel_by_direct_key(pool, &key)
                        .await?
                        .ok_or_else(|| {
                            ApiError::unavailable("the direct channel vanished; try again")
                        })?;
                    (StatusCode::OK, row, members, None)
                }
            }
        }
        kind => {
            if body.user_id.is_some() {
                return Err(ApiError::invalid_field(
                    "user_id",
                    "`user_id` is for direct channels; add people with `member_ids`",
                ));
            }
            let Some(name) = &body.name else {
                return Err(ApiError::invalid_field("name", "a channel needs a `name`"));
            };
            let name = text::channel_name("name", name)?;
            let others = body.member_ids.clone().unwrap_or_default();
            if others.len() > 100 {
                return Err(ApiError::invalid_field(
                    "member_ids",
                    "add at most 100 people at creation; add more with `POST /api/v1/channels/{id}/members`",
                ));
            }
            let mut members = vec![caller.user_id];
            for id in others {
                existing_user(&accounts, "member_ids", id).await?;
                if !members.contains(&id) {
                    members.push(id);
                }
            }
            let mut transaction = plugin.db()?.begin_write().await?;
            let Some(row) = store::create_channel(
                &mut transaction,
                kind.as_str(),
                &name,
                &topic,
                None,
                &members,
                now,
            )
            .await?
            else {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("a channel is already called `{name}`"),
                )
                .with_code("name_taken")
                .with_details(json!({ "field": "name" })));
            };
            (StatusCode::CREATED, row, members, Some(transaction))
        }
    };
    if let Some(transaction) = transaction {
        EventRecord::new(row.id, 1, "channel.created", created(&row, &members), now)
            .commit(transaction, &context, &row, now)
            .await?;
    }
    if let Some(key) = &key {
        let mut connection = pool.acquire().await.map_err(ApiError::from)?;
        store::remember(
            &mut connection,
            caller.user_id,
            key,
            &fingerprint,
            row.id,
            now,
        )
        .await?;
    }
    let channel = Channel::read(pool, row.id, &caller).await?;
    Ok(Created::new(status, channel))
}

/// What `channel.created` carries: the channel as anyone who may read it sees it, and its
/// first members (`member_ids`), who hear it from then on.
fn created(row: &ChannelRow, members: &[i64]) -> Value {
    let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
    let mut view = Channel::of(row, count, None).public_view();
    view["member_ids"] = json!(members);
    view
}

/// `GET /api/v1/channels`' query.
#[payload(request)]
#[derive(Debug, Default)]
pub struct ChannelQuery {
    /// Only channels the caller is in (else those and every public one).
    pub joined: Option<bool>,
    /// Only channels with a larger id: the `next_after` of the previous page.
    pub after: Option<i64>,
    /// At most this many (100 unless given, at most 200).
    pub limit: Option<i64>,
}

/// A page of channels.
#[payload(response)]
#[derive(Debug)]
pub struct ChannelPage {
    /// By id.
    pub channels: Vec<Channel>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// The channels the caller is in, with unread counts, and the public ones they may join
/// (`membership` absent).
#[route(GET, "/channels")]
async fn list_channels(
    plugin: PluginState<Channels>,
    caller: Caller,
    Query(query): Query<ChannelQuery>,
) -> Result<Json<ChannelPage>, ApiError> {
    let pool = plugin.pool()?;
    let limit = limit(query.limit, 100)?;
    let rows = store::list_channels(
        pool,
        caller.user_id,
        query.joined.unwrap_or(false),
        query.after.unwrap_or(0),
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let channels: Vec<Channel> = rows
        .iter()
        .take(limit as usize)
        .map(|listed| {
            Channel::of(
                &listed.channel,
                listed.member_count,
                listed.member.as_ref().map(|member| (member, listed.unread)),
            )
        })
        .collect();
    let next_after = more
        .then(|| channels.last().map(|channel| channel.id))
        .flatten();
    Ok(Json(ChannelPage {
        channels,
        next_after,
    }))
}

/// Path of a channel.
#[payload(request)]
#[derive(Debug)]
pub struct ChannelPath {
    /// The channel's id.
    pub id: i64,
}

/// A channel the caller may see: 404 `channel_not_found` for a private one they are not in.
#[route(GET, "/channels/{id}")]
async fn get_channel(
    plugin: PluginState<Channels>,
    caller: Caller,
    Path(path): Path<ChannelPath>,
) -> Result<Json<Channel>, ApiError> {
    Ok(Json(Channel::read(plugin.pool()?, path.id, &caller).await?))
}

/// `PATCH /api/v1/channels/{id}`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new topic.
    pub topic: Option<String>,
}

/// Renames a channel or changes its topic: its owner or an admin (403 `forbidden`); not a
/// direct channel (409 `direct_channel`).
#[route(PATCH, "/channels/{id}")]
async fn update_channel(
    plugin: PluginState<Channels>,
    context: PluginContext<Channels>,
    caller: Caller,
    Path(path): Path<ChannelPath>,
    Json(patch): Json<ChannelPatch>,
) -> Result<Json<Channel>, ApiError> {
    let pool = plugin.pool()?;
    let seen = Seen::of(pool, path.id, &caller).await?;
    if seen.is_direct() {
        return Err(direct_channel());
    }
    if !seen.moderates(&caller) {
        return Err(forbidden(
            "only the channel's owner or an admin may change it",
        ));
    }
    let name = match &patch.name {
        Some(name) => text::channel_name("name", name)?,
        None => seen.channel.name.clone(),
    };
    let topic = match &patch.topic {
        Some(topic) => text::topic("topic", topic)?,
        None => seen.channel.topic.clone(),
    };
    if name == seen.channel.name && topic == seen.channel.topic {
        return Ok(Json(Channel::read(pool, path.id, &caller).await?));
    }
    // Read before the transaction: a connection is not taken from the pool while one is held.
    let count = store::member_count(pool, path.id).await?;
    let mut change = Change::begin(plugin.db()?, path.id)
        .await?
        .ok_or_else(|| channel_not_found(path.id))?;
    if !store::update_channel(change.connection(), path.id, &name, &topic).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a channel is already called `{name}`"),
        )
        .with_code("name_taken")
        .with_details(json!({ "field": "name" })));
    }
    let mut row = seen.channel.clone();
    (row.name, row.topic, row.last_seq, row.updated_ms) = (name, topic, change.seq, change.now);
    let view = Channel::of(&row, count, None).public_view();
    change
        .commit(&context, &row, "channel.updated", view)
        .await?;
    Ok(Json(Channel::read(pool, path.id, &caller).await?))
}

pub(crate) fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message.to_string()).with_code("forbidden")
}

fn direct_channel() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "a direct channel's name and people do not change",
    )
    .with_code("direct_channel")
}

/// A member of a channel.
#[payload(response)]
#[derive(Debug)]
pub struct Member {
    /// The person.
    pub user_id: i64,
    /// `owner` or `member`.
    pub role: String,
    /// When they joined (RFC 3339).
    pub joined_at: String,
}

impl Member {
    fn of(row: &MemberRow) -> Member {
        Member {
            user_id: row.user_id,
            role: row.role.clone(),
            joined_at: store::rfc3339(row.joined_ms),
        }
    }
}

/// `GET /api/v1/channels/{id}/members`' query.
#[payload(request)]
#[derive(Debug, Default)]
pub struct MemberQuery {
    /// Only people with a larger id: the `next_after` of the previous page.
    pub after: Option<i64>,
    /// At most this many (100 unless given, at most 200).
    pub limit: Option<i64>,
}

/// A page of members.
#[payload(response)]
#[derive(Debug)]
pub struct MemberPage {
    /// By user id.
    pub members: Vec<Member>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// The members of a channel the caller may see.
#[route(GET, "/channels/{id}/members")]
async fn list_members(
    plugin: PluginState<Channels>,
    caller: Caller,
    Path(path): Path<ChannelPath>,
    Query(query): Query<MemberQuery>,
) -> Result<Json<MemberPage>, ApiError> {
    let pool = plugin.pool()?;
    Seen::of(pool, path.id, &caller).await?;
    let limit = limit(query.limit, 100)?;
    let rows = store::members(pool, path.id, query.after.unwrap_or(0), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let members: Vec<Member> = rows.iter().take(limit as usize).map(Member::of).collect();
    let next_after = more
        .then(|| members.last().map(|member| member.user_id))
        .flatten();
    Ok(Json(MemberPage {
        members,
        next_after,
    }))
}

/// `POST /api/v1/channels/{id}/members`' body.
#[payload(request)]
#[derive(Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// Who to add; the caller when absent (joining a public channel).
    pub user_id: Option<i64>,
}

/// Adds someone to a channel (201; 200 when they already were): the caller joins a public
/// channel, or a member adds another person. Not a direct channel.
#[route(POST, "/channels/{id}/members")]
async fn add_member(
    plugin: PluginState<Channels>,
    accounts: PluginState<Accounts>,
    context: PluginContext<Channels>,
    caller: Caller,
    Path(path): Path<ChannelPath>,
    body: Option<Json<AddMember>>,
) -> Result<(StatusCode, Json<Member>), ApiError> {
    let pool = plugin.pool()?;
    let user_id = body
        .and_then(|Json(body)| body.user_id)
        .unwrap_or(caller.user_id);
    let seen = Seen::of(pool, path.id, &caller).await?;
    if seen.is_direct() {
        return Err(direct_channel());
    }
    if user_id != caller.user_id {
        seen.member()?;
        existing_user(&accounts, "user_id", user_id).await?;
    }
    if let Some(member) = store::membership(pool, path.id, user_id).await? {
        return Ok((StatusCode::OK, Json(Member::of(&member))));
    }
    let mut change = Change::begin(plugin.db()?, path.id)
        .await?
        .ok_or_else(|| channel_not_found(path.id))?;
    let (seq, now) = (change.seq, change.now);
    // They have read nothing said before they came in: history is there, unread is not.
    if !store::add_member(change.connection(), path.id, user_id, seq, now).await? {
        drop(change);
        let member = store::membership(pool, path.id, user_id)
            .await?
            .ok_or_else(|| ApiError::unavailable("the membership changed meanwhile; try again"))?;
        return Ok((StatusCode::OK, Json(Member::of(&member))));
    }
    let joined = json!({ "user_id": user_id, "role": "member", "by": caller.user_id });
    change
        .commit(&context, &seen.channel, "member.joined", joined)
        .await?;
    let member = MemberRow {
        user_id,
        role: "member".to_string(),
        joined_ms: now,
        last_read_seq: seq,
    };
    Ok((StatusCode::CREATED, Json(Member::of(&member))))
}

/// Path of one member.
#[payload(request)]
#[derive(Debug)]
pub struct MemberPath {
    /// The channel's id.
    pub id: i64,
    /// The person's id.
    pub user_id: i64,
}

/// Takes someone out of a channel (204): anyone may leave; the owner or an admin may remove
/// others. Not a direct channel.
#[route(DELETE, "/channels/{id}/members/{user_id}")]
async fn remove_member(
    plugin: PluginState<Channels>,
    context: PluginContext<Channels>,
    caller: Caller,
    Path(path): Path<MemberPath>,
) -> Result<StatusCode, ApiError> {
    let pool = plugin.pool()?;
    let seen = Seen::of(pool, path.id, &caller).await?;
    if seen.is_direct() {
        return Err(direct_channel());
    }
    if path.user_id != caller.user_id && !seen.moderates(&caller) {
        return Err(forbidden(
            "only the channel's owner or an admin may remove someone else",
        ));
    }
    let mut change = Change::begin(plugin.db()?, path.id)
        .await?
        .ok_or_else(|| channel_not_found(path.id))?;
    if !store::remove_member(change.connection(), path.id, path.user_id).await? {
        return Err(ApiError::not_found(format!(
            "user {} is not a member of channel {}",
            path.user_id, path.id
        ))
        .with_code("not_a_member"));
    }
    let left = json!({ "user_id": path.user_id, "by": caller.user_id });
    change
        .commit(&context, &seen.channel, "member.left", left)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/channels/{id}/read`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    /// The sequence number read up to (a marker never moves back).
    pub seq: i64,
}

/// The caller's read marker of a channel.
#[payload(response)]
#[derive(Debug)]
pub struct ReadMarker {
    /// The sequence number read up to.
    pub last_read_seq: i64,
    /// Messages from others after it.
    pub unread: i64,
}

/// Marks a channel read up to a sequence number (a member only).
#[route(PUT, "/channels/{id}/read")]
async fn mark_read(
    plugin: PluginState<Channels>,
    caller: Caller,
    Path(path): Path<ChannelPath>,
    Json(body): Json<ReadBody>,
) -> Result<Json<ReadMarker>, ApiError> {
    let pool = plugin.pool()?;
    let seen = Seen::of(pool, path.id, &caller).await?;
    seen.member()?;
    if body.seq < 0 {
        return Err(ApiError::invalid_field("seq", "`seq` is 0 or more"));
    }
    let seq = body.seq.min(seen.channel.last_seq);
    let last_read_seq = store::mark_read(pool, path.id, caller.user_id, seq)
        .await?
        // The membership ended since it was read.
        .ok_or_else(|| channel_not_found(path.id))?;
    let unread = store::unread(pool, path.id, caller.user_id, last_read_seq).await?;
    Ok(Json(ReadMarker {
        last_read_seq,
        unread,
    }))
}

/// `GET /api/v1/channels/{id}/events`' query.
#[payload(request)]
#[derive(Debug, Default)]
pub struct EventQuery {
    /// Events after this sequence number (the last one the client has; 0 for all).
    pub after: Option<i64>,
    /// At most this many (100 unless given, at most 200).
    pub limit: Option<i64>,
}

/// A page of a channel's events.
#[payload(response)]
#[derive(Debug)]
pub struct EventPage {
    /// In sequence order.
    pub events: Vec<EventRecord>,
    /// Whether more follow: ask again after the last one.
    pub has_more: bool,
}

impl EventRecord {
    fn of(channel_id: i64, row: store::EventRow) -> EventRecord {
        EventRecord {
            event_id: format!("{channel_id}-{}", row.seq),
            channel_id,
            seq: row.seq,
            kind: row.kind,
            data: plexichat::serde_json::from_str(&row.payload).unwrap_or(Value::Null),
            at: store::rfc3339(row.created_ms),
        }
    }
}

/// What a channel is to one person, for plugins that deliver its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// They are a member: they read and write it.
    Member,
    /// A public channel they are not in: they may read it.
    Reader,
    /// No such channel, or a private one they are not in.
    None,
}

/// The Rust API other plugins read channels through (a plugin that depends on `channels`).
impl Channels {
    /// The channels `user_id` is a member of.
    pub async fn channel_ids_of(&self, user_id: i64) -> Result<Vec<i64>, ApiError> {
        Ok(store::channel_ids_of(self.pool()?, user_id).await?)
    }

    /// What channel `channel_id` is to `user_id`.
    pub async fn access(&self, channel_id: i64, user_id: i64) -> Result<Access, ApiError> {
        let Some((channel, member)) =
            store::channel_and_membership(self.pool()?, channel_id, user_id).await?
        else {
            return Ok(Access::None);
        };
        Ok(match member {
            Some(_) => Access::Member,
            None if channel.kind == "public" => Access::Reader,
            None => Access::None,
        })
    }

    /// Up to `limit` events of `channel_id` after sequence number `after`, in order. Says
    /// nothing about who may see them: check [`Channels::access`] first.
    pub async fn events_after(
        &self,
        channel_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>, ApiError> {
        let rows = store::events_after(self.pool()?, channel_id, after, limit).await?;
        Ok(rows
            .into_iter()
            .map(|row| EventRecord::of(channel_id, row))
            .collect())
    }
}

/// A channel's events after a sequence number: what a client that was away catches up with.
#[route(GET, "/channels/{id}/events")]
async fn list_events(
    plugin: PluginState<Channels>,
    caller: Caller,
    Path(path): Path<ChannelPath>,
    Query(query): Query<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let pool = plugin.pool()?;
    Seen::of(pool, path.id, &caller).await?;
    let limit = limit(query.limit, 100)?;
    let rows = store::events_after(pool, path.id, query.after.unwrap_or(0), limit + 1).await?;
    let has_more = rows.len() as i64 > limit;
    let events = rows
        .into_iter()
        .take(limit as usize)
        .map(|row| EventRecord::of(path.id, row))
        .collect();
    Ok(Json(EventPage { events, has_more }))
}
