//! `/api/v1/users/…`: the caller's own account, other people's public profiles, search, and
//! presence; and the Rust API other plugins read people through.

use plexichat::prelude::*;
use plexichat::sqlx::AnyPool;

use crate::api::{account_gone, check_display_name};
use crate::caller::Caller;
use crate::store::{self, UserRow};
use crate::{Accounts, PresenceUpdated, UserUpdated};

/// A person as anyone signed in sees them.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct PublicUser {
    /// Their id.
    pub id: i64,
    /// Their username (lowercase).
    pub username: String,
    /// What they call themselves.
    pub display_name: String,
    /// A few words about them.
    pub about: String,
    /// `member` or `admin`.
    pub role: String,
    /// `online`, `away`, `dnd` or `offline`.
    pub presence: String,
    /// Their status line.
    pub status_text: String,
    /// When they registered (RFC 3339).
    pub created_at: String,
}

impl PublicUser {
    pub(crate) fn of(row: &UserRow) -> PublicUser {
        PublicUser {
            id: row.id,
            username: row.username.clone(),
            display_name: row.display_name.clone(),
            about: row.about.clone(),
            role: row.role.clone(),
            presence: row.presence.clone(),
            status_text: row.status_text.clone(),
            created_at: store::rfc3339(row.created_ms),
        }
    }
}

/// The caller's own account.
#[payload(response)]
#[derive(Clone, Debug)]
pub struct Me {
    /// What others see.
    #[serde(flatten)]
    pub user: PublicUser,
    /// Whether sign-in asks for a TOTP code.
    pub totp_enabled: bool,
    /// Unused recovery codes left (0 without TOTP).
    pub recovery_codes_left: i64,
}

pub(crate) async fn me_of(pool: &AnyPool, row: &UserRow) -> Result<Me, ApiError> {
    let totp_enabled = row.totp_secret.is_some();
    let recovery_codes_left = if totp_enabled {
        store::recovery_codes_left(pool, row.id).await?
    } else {
        0
    };
    Ok(Me {
        user: PublicUser::of(row),
        totp_enabled,
        recovery_codes_left,
    })
}

/// Why a person could not be read.
#[derive(Debug)]
pub enum UserError {
    /// No such person.
    NotFound,
    /// The database failed, or `accounts` has not started.
    Unavailable(ApiError),
}

impl Accounts {
    /// The person `id`, as anyone signed in sees them.
    pub async fn user(&self, id: i64) -> Result<PublicUser, UserError> {
        let pool = self.pool().map_err(UserError::Unavailable)?;
        match store::user_by_id(pool, id).await {
            Ok(Some(row)) => Ok(PublicUser::of(&row)),
            Ok(None) => Err(UserError::NotFound),
            Err(error) => Err(UserError::Unavailable(error.into())),
        }
    }
}

/// The caller's own account.
#[route(GET, "/users/me")]
async fn me(plugin: PluginState<Accounts>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let pool = plugin.pool()?;
    let row = store::user_by_id(pool, caller.user_id)
        .await?
        .ok_or_else(account_gone)?;
    Ok(Json(me_of(pool, &row).await?))
}

/// `PATCH /api/v1/users/me`'s body: the fields to change.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// 1 to 64 characters.
    pub display_name: Option<String>,
    /// Up to 500 characters.
    pub about: Option<String>,
}

/// Changes the caller's display name or about text; answers the account.
#[route(PATCH, "/users/me")]
async fn update_me(
    plugin: PluginState<Accounts>,
    context: PluginContext<Accounts>,
    caller: Caller,
    Json(patch): Json<ProfilePatch>,
) -> Result<Json<Me>, ApiError> {
    let pool = plugin.pool()?;
    let row = store::user_by_id(pool, caller.user_id)
        .await?
        .ok_or_else(account_gone)?;
    let display_name = match &patch.display_name {
        Some(name) => check_display_name("display_name", name)?,
        None => row.display_name.clone(),
    };
    let about = match &patch.about {
        Some(about) if about.chars().count() > 500 => {
            return Err(ApiError::invalid_field(
                "about",
                "`about` has at most 500 characters",
            ));
        }
        Some(about) => about.trim().to_string(),
        None => row.about.clone(),
    };
    store::update_profile(pool, row.id, &display_name, &about).await?;
    let row = store::user_by_id(pool, caller.user_id)
        .await?
        .ok_or_else(account_gone)?;
    context
        .publish(&UserUpdated {
            user: PublicUser::of(&row),
        })
        .await;
    Ok(Json(me_of(pool, &row).await?))
}

/// Path of `GET /api/v1/users/{id}`.
#[payload(request)]
#[derive(Debug)]
pub struct UserPath {
    /// The person's id.
    pub id: i64,
}

/// Someone's public profile.
#[route(GET, "/users/{id}")]
async fn user(
    plugin: PluginState<Accounts>,
    _caller: Caller,
    Path(path): Path<UserPath>,
) -> Result<Json<PublicUser>, ApiError> {
    match plugin.user(path.id).await {
        Ok(user) => Ok(Json(user)),
        Err(UserError::NotFound) => {
            Err(ApiError::not_found(format!("no user {}", path.id)).with_code("user_not_found"))
        }
        Err(UserError::Unavailable(error)) => Err(error),
    }
}

/// `GET /api/v1/users`' query.
#[payload(request)]
#[derive(Debug, Default)]
pub struct UserQuery {
    /// Part of a username or display name (any case); everyone when absent.
    pub q: Option<String>,
    /// Only people with a larger id: the `next_after` of the previous page.
    pub after: Option<i64>,
    /// At most this many (50 unless given, at most 200).
    pub limit: Option<i64>,
}

/// A page of people.
#[payload(response)]
#[derive(Debug)]
pub struct UserPage {
    /// People, by id.
    pub users: Vec<PublicUser>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// Finds people by part of their username or display name, a page at a time.
#[route(GET, "/users")]
async fn search(
    plugin: PluginState<Accounts>,
    _caller: Caller,
    query: Option<Query<UserQuery>>,
) -> Result<Json<UserPage>, ApiError> {
    let pool = plugin.pool()?;
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "`limit` is 1 to 200"));
    }
    let needle: String = query
        .q
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_lowercase()
        .chars()
        .take(64)
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let mut rows = store::search_users(pool, &needle, query.after.unwrap_or(0), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_after = more.then(|| rows.last().map(|row| row.id)).flatten();
    Ok(Json(UserPage {
        users: rows.iter().map(PublicUser::of).collect(),
        next_after,
    }))
}

/// `PUT /api/v1/users/me/presence`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct PresenceBody {
    /// `online`, `away`, `dnd` or `offline`.
    pub presence: String,
    /// A status line, up to 100 characters (cleared when absent).
    pub status_text: Option<String>,
}

/// Sets the caller's presence and status line; everyone connected is told.
#[route(PUT, "/users/me/presence")]
async fn set_presence(
    plugin: PluginState<Accounts>,
    context: PluginContext<Accounts>,
    caller: Caller,
    Json(body): Json<PresenceBody>,
) -> Result<Json<PublicUser>, ApiError> {
    let pool = plugin.pool()?;
    let presence = body.presence.trim().to_ascii_lowercase();
    if !["online", "away", "dnd", "offline"].contains(&presence.as_str()) {
        return Err(ApiError::invalid_field(
            "presence",
            "`presence` is `online`, `away`, `dnd` or `offline`",
        ));
    }
    let status_text = body.status_text.as_deref().unwrap_or("").trim();
    if status_text.chars().count() > 100 || status_text.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "status_text",
            "`status_text` is at most 100 characters, without control characters",
        ));
    }
    store::set_presence(pool, caller.user_id, &presence, status_text).await?;
    context
        .publish(&PresenceUpdated {
            user_id: caller.user_id,
            presence: presence.clone(),
            status_text: status_text.to_string(),
        })
        .await;
    let row = store::user_by_id(pool, caller.user_id)
        .await?
        .ok_or_else(account_gone)?;
    Ok(Json(PublicUser::of(&row)))
}
