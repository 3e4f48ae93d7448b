//! Incoming hooks (Mattermost's and Slack's): a secret URL, `POST /hooks/{token}` with
//! `{"text": "..."}`, posts a message to one channel as the person who made the hook, held to
//! everything their own post would be (membership, the channel's rules, the message
//! pre-handlers) and to a rate per hook.

use accounts::{Accounts, Caller, Role};
use channels::{Channels, PostMessage};
use plexichat::http::HeaderMap;
use plexichat::prelude::*;

use crate::store::{self, HookRow};
use crate::{Webhooks, signing};

/// Each hook's posts.
pub(crate) type HookLimiter = plexichat::limit::RateLimiter<i64>;

/// An incoming hook.
#[payload(response)]
#[derive(Debug)]
pub struct IncomingHook {
    /// Its id.
    pub id: i64,
    /// The channel it posts to.
    pub channel_id: i64,
    /// Who it posts as: the person who made it.
    pub owner_id: i64,
    /// What it is for.
    pub description: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When it last posted (RFC 3339).
    pub last_used_at: Option<String>,
}

impl IncomingHook {
    fn of(row: &HookRow) -> IncomingHook {
        IncomingHook {
            id: row.id,
            channel_id: row.channel_id,
            owner_id: row.owner_id,
            description: row.description.clone(),
            created_at: store::rfc3339(row.created_ms),
            last_used_at: row.last_used_ms.map(store::rfc3339),
        }
    }
}

/// A new incoming hook, with its secret.
#[payload(response)]
#[derive(Debug)]
pub struct CreatedHook {
    /// The hook.
    #[serde(flatten)]
    pub hook: IncomingHook,
    /// The secret token, shown only now.
    pub token: String,
    /// Where to post: `/hooks/<token>` on this server.
    pub path: String,
}

/// `POST /api/v1/webhooks/incoming`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct NewHook {
    /// The channel to post to; you must be a member.
    pub channel_id: i64,
    /// What it is for (at most 500 characters).
    pub description: Option<String>,
}

/// The caller's incoming hooks (an admin sees everyone's).
#[payload(response)]
#[derive(Debug)]
pub struct IncomingHooks {
    /// By id.
    pub hooks: Vec<IncomingHook>,
}

/// Path of an incoming hook.
#[payload(request)]
#[derive(Debug)]
pub struct HookPath {
    /// The hook's id.
    pub id: i64,
}

/// Makes an incoming hook for a channel you are a member of (201); its messages are posted
/// as you. The token in its path is shown only in this answer.
#[route(POST, "/api/v1/webhooks/incoming")]
async fn create_hook(
    plugin: PluginState<Webhooks>,
    channels: PluginState<Channels>,
    caller: Caller,
    Json(body): Json<NewHook>,
) -> Result<(StatusCode, Json<CreatedHook>), ApiError> {
    let pool = plugin.db()?.pool().clone();
    let access = channels.access(body.channel_id, caller.user_id).await?;
    if !matches!(access, channels::Access::Member) {
        return Err(ApiError::invalid_field(
            "channel_id",
            format!(
                "you are not a member of channel {}; join it first",
                body.channel_id
            ),
        )
        .with_code("not_a_member"));
    }
    let description = body.description.unwrap_or_default();
    if description.chars().count() > 500 {
        return Err(ApiError::invalid_field(
            "description",
            "`description` is at most 500 characters",
        ));
    }
    let token = signing::hook_token();
    let row = store::insert_hook(
        &pool,
        &signing::digest(&token),
        body.channel_id,
        caller.user_id,
        description.trim(),
        store::now_ms(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedHook {
            hook: IncomingHook::of(&row),
            path: format!("/hooks/{token}"),
            token,
        }),
    ))
}

/// Your incoming hooks; an admin sees everyone's.
#[route(GET, "/api/v1/webhooks/incoming")]
async fn list_hooks(
    plugin: PluginState<Webhooks>,
    caller: Caller,
) -> Result<Json<IncomingHooks>, ApiError> {
    let pool = plugin.db()?.pool().clone();
    let owner = (!caller.is_admin()).then_some(caller.user_id);
    let rows = store::hooks(&pool, owner).await?;
    Ok(Json(IncomingHooks {
        hooks: rows.iter().map(IncomingHook::of).collect(),
    }))
}

/// Deletes an incoming hook (204): its maker's, or any for an admin. Its URL stops working
/// at once.
#[route(DELETE, "/api/v1/webhooks/incoming/{id}")]
async fn delete_hook(
    plugin: PluginState<Webhooks>,
    caller: Caller,
    Path(path): Path<HookPath>,
) -> Result<StatusCode, ApiError> {
    let pool = plugin.db()?.pool().clone();
    let hook = store::hook(&pool, path.id)
        .await?
        .filter(|hook| hook.owner_id == caller.user_id || caller.is_admin())
        .ok_or_else(|| {
            ApiError::not_found(format!("you have no incoming hook {}", path.id))
                .with_code("hook_not_found")
        })?;
    store::delete_hook(&pool, hook.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /hooks/{token}`'s body, as Mattermost and Slack clients send it.
#[payload(request)]
#[derive(Debug)]
pub struct HookPost {
    /// The message.
    pub text: String,
}

/// Path of `POST /hooks/{token}`.
#[payload(request)]
#[derive(Debug)]
pub struct TokenPath {
    /// The hook's secret token.
    pub token: String,
}

/// What an incoming hook posted.
#[payload(response)]
#[derive(Debug)]
pub struct HookPosted {
    /// The message's id.
    pub message_id: i64,
    /// Its channel.
    pub channel_id: i64,
    /// Its sequence number in the channel.
    pub seq: i64,
}

/// Posts `text` to the hook's channel as its maker (201), authenticated by the secret token
/// in the path; an `Idempotency-Key` makes a retry answer the first post. 404 for a token
/// that is not a hook's; 429 with `Retry-After` past `incoming_per_minute`.
#[route(POST, "/hooks/{token}")]
async fn post_through_hook(
    plugin: PluginState<Webhooks>,
    channels: PluginState<Channels>,
    accounts: PluginState<Accounts>,
    config: PluginConfig<Webhooks>,
    headers: HeaderMap,
    Path(path): Path<TokenPath>,
    Json(post): Json<HookPost>,
) -> Result<(StatusCode, Json<HookPosted>), ApiError> {
    let pool = plugin.db()?.pool().clone();
    let unknown = || {
        ApiError::not_found("there is no incoming hook at this address").with_code("hook_not_found")
    };
    if !path.token.starts_with("pxh_") {
        return Err(unknown());
    }
    let hook = store::hook_by_digest(&pool, &signing::digest(&path.token))
        .await?
        .ok_or_else(unknown)?;
    let owner = accounts
        .user(hook.owner_id)
        .await
        .map_err(|error| match error {
            accounts::UserError::NotFound => ApiError::new(
                StatusCode::GONE,
                "the person who made this hook no longer exists",
            )
            .with_code("hook_owner_gone"),
            accounts::UserError::Unavailable(error) => error,
        })?;
    let author = Caller {
        user_id: owner.id,
        username: owner.username.clone(),
        role: if owner.role == "admin" {
            Role::Admin
        } else {
            Role::Member
        },
        // Not a session: the hook's token stands for its maker, for this post only.
        session_id: 0,
    };
    if post.text.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "text",
            "`text` is the message: it cannot be blank",
        ));
    }
    // Checked here too, so that the problem names this route's field (`text`), not the chat's.
    let max = plugin
        .context()?
        .config::<Channels>()
        .map_or(4000, |config| config.max_message_chars);
    if post.text.chars().count() > max as usize {
        return Err(ApiError::invalid_field(
            "text",
            format!("`text` is at most {max} characters"),
        ));
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .filter(|key| (1..=255).contains(&key.len()))
        .map(|key| format!("hook-{}-{key}", hook.id));
    // Charged once a retry under the same key has been answered: a retry costs nothing.
    let admit = || {
        let interval = std::time::Duration::from_secs(60) / config.incoming_per_minute.max(1);
        plugin
            .incoming
            .take(hook.id, interval, config.incoming_per_minute)
            .map_err(|wait| {
                let seconds = plexichat::limit::retry_after_seconds(wait);
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "this hook posts faster than this server allows; try again in {seconds} s"
                    ),
                )
                .with_code("rate_limited")
                .with_retry_after(seconds)
            })
    };
    let (message, replayed) = channels
        .post_as(
            &author,
            hook.channel_id,
            PostMessage {
                body: post.text,
                thread_root_id: None,
                file_ids: None,
            },
            key,
            &admit,
        )
        .await?;
    // The message is posted: failing to note the hook's use must not make the client retry.
    if let Err(error) = store::touch_hook(&pool, hook.id, store::now_ms()).await {
        plexichat::tracing::warn!(hook = hook.id, %error, "webhooks: could not record an incoming hook's use");
    }
    Ok((
        if replayed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(HookPosted {
            message_id: message.id,
            channel_id: message.channel_id,
            seq: message.seq,
        }),
    ))
}
