//! The accounts tables, on either engine: literal SQL with bound parameters only. Times are
//! Unix milliseconds; tokens and codes are stored as their SHA-256 digests.

use plexichat::sqlx::{self, AnyPool, Row, any::AnyRow};
pub(crate) use plexichat::storage::{
    is_unique_violation, now_millis as now_ms, rfc3339_millis as rfc3339,
};

/// One account, as stored.
#[derive(Clone)]
pub(crate) struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub about: String,
    pub password_hash: String,
    pub role: String,
    pub presence: String,
    pub status_text: String,
    pub totp_secret: Option<String>,
    pub totp_pending: Option<String>,
    pub created_ms: i64,
}

// Never shows the password hash or the TOTP secrets.
impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

macro_rules! user_columns {
    () => {
        "id, username, display_name, about, password_hash, role, presence, status_text, totp_secret, totp_pending, created_ms"
    };
}

fn user_row(row: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        about: row.try_get("about")?,
        password_hash: row.try_get("password_hash")?,
        role: row.try_get("role")?,
        presence: row.try_get("presence")?,
        status_text: row.try_get("status_text")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_pending: row.try_get("totp_pending")?,
        created_ms: row.try_get("created_ms")?,
    })
}

pub(crate) async fn user_count(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM accounts_users")
        .fetch_one(pool)
        .await?
        .try_get("n")
}

/// A new account; `Ok(None)` when the username is taken.
pub(crate) async fn insert_user(
    pool: &AnyPool,
    username: &str,
    display_name: &str,
    password_hash: &str,
    role: &str,
    now: i64,
) -> Result<Option<UserRow>, sqlx::Error> {
    let inserted = sqlx::query(concat!(
        "INSERT INTO accounts_users (username, display_name, about, password_hash, role, presence, status_text, created_ms, updated_ms) \
         VALUES ($1, $2, '', $3, $4, 'offline', '', $5, $5) RETURNING ",
        user_columns!()
    ))
    .bind(username)
    .bind(display_name)
    .bind(password_hash)
    .bind(role)
    .bind(now)
    .fetch_one(pool)
    .await;
    match inserted {
        Ok(row) => user_row(&row).map(Some),
        Err(error) if is_unique_violation(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

pub(crate) async fn user_by_name(
    pool: &AnyPool,
    username: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM accounts_users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(user_row)
    .transpose()
}

pub(crate) async fn user_by_id(pool: &AnyPool, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM accounts_users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(user_row)
    .transpose()
}

/// Up to `limit` accounts whose username or display name contains `needle` (lowercase, with
/// `%`, `_` and `\` escaped), by id after `after`.
pub(crate) async fn search_users(
    pool: &AnyPool,
    needle: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<UserRow>, sqlx::Error> {
    let pattern = format!("%{needle}%");
    sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM accounts_users WHERE id > $1 AND (username LIKE $2 ESCAPE '\\' OR lower(display_name) LIKE $2 ESCAPE '\\') ORDER BY id LIMIT $3"
    ))
    .bind(after)
    .bind(pattern)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(user_row)
    .collect()
}

pub(crate) async fn set_role(pool: &AnyPool, id: i64, role: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts_users SET role = $1, updated_ms = $2 WHERE id = $3")
        .bind(role)
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn update_profile(
    pool: &AnyPool,
    id: i64,
    display_name: &str,
    about: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts_users SET display_name = $1, about = $2, updated_ms = $3 WHERE id = $4",
    )
    .bind(display_name)
    .bind(about)
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn set_presence(
    pool: &AnyPool,
    id: i64,
    presence: &str,
    status_text: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts_users SET presence = $1, status_text = $2, updated_ms = $3 WHERE id = $4",
    )
    .bind(presence)
    .bind(status_text)
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn set_password(pool: &AnyPool, id: i64, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts_users SET password_hash = $1, updated_ms = $2 WHERE id = $3")
        .bind(hash)
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A new session with its first refresh token, in one transaction; its id.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create_session(
    pool: &AnyPool,
    user_id: i64,
    access_hash: &str,
    access_expires_ms: i64,
    refresh_hash: &str,
    expires_ms: i64,
    user_agent: &str,
    address: &str,
) -> Result<i64, sqlx::Error> {
    let now = now_ms();
    let mut transaction = pool.begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO accounts_sessions (user_id, access_hash, access_expires_ms, expires_ms, created_ms, last_used_ms, user_agent, address) \
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7) RETURNING id",
    )
    .bind(user_id)
    .bind(access_hash)
    .bind(access_expires_ms)
    .bind(expires_ms)
    .bind(now)
    .bind(user_agent)
    .bind(address)
    .fetch_one(&mut *transaction)
    .await?
    .try_get("id")?;
    sqlx::query(
        "INSERT INTO accounts_refresh_tokens (token_hash, session_id, created_ms) VALUES ($1, $2, $3)",
    )
    .bind(refresh_hash)
    .bind(id)
    .bind(now)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(id)
}

/// What an access token proves.
#[derive(Clone, Debug)]
pub(crate) struct Authenticated {
    pub session_id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: String,
    pub access_expires_ms: i64,
    pub last_used_ms: i64,
}

/// The live session whose access token has digest `access_hash`, if any (expired or not).
pub(crate) async fn session_by_access(
    pool: &AnyPool,
    access_hash: &str,
) -> Result<Option<Authenticated>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT s.id, s.user_id, s.access_expires_ms, s.last_used_ms, u.username, u.role \
         FROM accounts_sessions s JOIN accounts_users u ON u.id = s.user_id \
         WHERE s.access_hash = $1 AND s.revoked_ms IS NULL",
    )
    .bind(access_hash)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Authenticated {
            session_id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            username: row.try_get("username")?,
            role: row.try_get("role")?,
            access_expires_ms: row.try_get("access_expires_ms")?,
            last_used_ms: row.try_get("last_used_ms")?,
        })
    })
    .transpose()
}

/// Records that a session was used now (at most once a minute, by the caller's choice).
pub(crate) async fn touch_session(pool: &AnyPool, id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts_sessions SET last_used_ms = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// What a refresh token did.
pub(crate) enum Refreshed {
    /// Rotated: the session and whose it is.
    Rotated { session_id: i64, user_id: i64 },
    /// Unknown, or its session ended or expired.
    Invalid,
    /// Already spent: its session has now been revoked.
    Replayed { session_id: i64, user_id: i64 },
}

/// Spends the refresh token with digest `refresh_hash` and gives its session a new access
/// token and refresh token, in one transaction. Only one of two concurrent uses of a token
/// can spend it (`spent_ms IS NULL` is part of the update); the other is a replay.
pub(crate) async fn refresh(
    pool: &AnyPool,
    refresh_hash: &str,
    new_access_hash: &str,
    access_expires_ms: i64,
    new_refresh_hash: &str,
    expires_ms: i64,
) -> Result<Refreshed, sqlx::Error> {
    let now = now_ms();
    let mut transaction = pool.begin().await?;
    let row = sqlx::query(
        "SELECT r.session_id, r.spent_ms, s.user_id, s.revoked_ms, s.expires_ms \
         FROM accounts_refresh_tokens r JOIN accounts_sessions s ON s.id = r.session_id \
         WHERE r.token_hash = $1",
    )
    .bind(refresh_hash)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some(row) = row else {
        return Ok(Refreshed::Invalid);
    };
    let session_id: i64 = row.try_get("session_id")?;
    let user_id: i64 = row.try_get("user_id")?;
    let spent: Option<i64> = row.try_get("spent_ms")?;
    let revoked: Option<i64> = row.try_get("revoked_ms")?;
    let session_expires: i64 = row.try_get("expires_ms")?;
    if revoked.is_some() || session_expires <= now {
        return Ok(Refreshed::Invalid);
    }
    let spent_now = spent.is_none()
        && sqlx::query(
            "UPDATE accounts_refresh_tokens SET spent_ms = $1 WHERE token_hash = $2 AND spent_ms IS NULL",
        )
        .bind(now)
        .bind(refresh_hash)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
    if !spent_now {
        revoke(&mut transaction, session_id, "refresh_token_reused", now).await?;
        transaction.commit().await?;
        return Ok(Refreshed::Replayed {
            session_id,
            user_id,
        });
    }
    sqlx::query(
        "UPDATE accounts_sessions SET access_hash = $1, access_expires_ms = $2, expires_ms = $3, last_used_ms = $4 WHERE id = $5",
    )
    .bind(new_access_hash)
    .bind(access_expires_ms)
    .bind(expires_ms)
    .bind(now)
    .bind(session_id)
    .execute(&mut *transaction)
    .await?;
    sqlx::query(
        "INSERT INTO accounts_refresh_tokens (token_hash, session_id, created_ms) VALUES ($1, $2, $3)",
    )
    .bind(new_refresh_hash)
    .bind(session_id)
    .bind(now)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(Refreshed::Rotated {
        session_id,
        user_id,
    })
}

async fn revoke(
    connection: &mut sqlx::AnyConnection,
    session_id: i64,
    reason: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE accounts_sessions SET revoked_ms = $1, revoked_reason = $2 WHERE id = $3 AND revoked_ms IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(session_id)
    .execute(connection)
    .await?
    .rows_affected()
        == 1)
}

/// Ends session `session_id` of `user_id`; whether there was such a live session.
pub(crate) async fn revoke_session(
    pool: &AnyPool,
    user_id: i64,
    session_id: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE accounts_sessions SET revoked_ms = $1, revoked_reason = $2 WHERE id = $3 AND user_id = $4 AND revoked_ms IS NULL",
    )
    .bind(now_ms())
    .bind(reason)
    .bind(session_id)
    .bind(user_id)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Ends every live session of `user_id` but `keep`; the ids ended.
pub(crate) async fn revoke_other_sessions(
    pool: &AnyPool,
    user_id: i64,
    keep: Option<i64>,
    reason: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    let ids: Vec<i64> = sqlx::query(
        "UPDATE accounts_sessions SET revoked_ms = $1, revoked_reason = $2 \
         WHERE user_id = $3 AND id <> $4 AND revoked_ms IS NULL RETURNING id",
    )
    .bind(now_ms())
    .bind(reason)
    .bind(user_id)
    .bind(keep.unwrap_or(-1))
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// One session, as its owner sees it.
#[derive(Clone, Debug)]
pub(crate) struct SessionRow {
    pub id: i64,
    pub created_ms: i64,
    pub last_used_ms: i64,
    pub expires_ms: i64,
    pub user_agent: String,
    pub address: String,
}

/// The live sessions of `user_id`, most recently used first.
pub(crate) async fn sessions_of(
    pool: &AnyPool,
    user_id: i64,
    now: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query(
        "SELECT id, created_ms, last_used_ms, expires_ms, user_agent, address FROM accounts_sessions \
         WHERE user_id = $1 AND revoked_ms IS NULL AND expires_ms > $2 ORDER BY last_used_ms DESC, id DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| {
        Ok(SessionRow {
            id: row.try_get("id")?,
            created_ms: row.try_get("created_ms")?,
            last_used_ms: row.try_get("last_used_ms")?,
            expires_ms: row.try_get("expires_ms")?,
            user_agent: row.try_get("user_agent")?,
            address: row.try_get("address")?,
        })
    })
    .collect()
}

/// Keeps `secret` as the TOTP secret being enrolled.
pub(crate) async fn set_totp_pending(
    pool: &AnyPool,
    user_id: i64,
    secret: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts_users SET totp_pending = $1, updated_ms = $2 WHERE id = $3")
        .bind(secret)
        .bind(now_ms())
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Turns the pending secret on, used at `step`, with fresh recovery codes (digests).
pub(crate) async fn enable_totp(
    pool: &AnyPool,
    user_id: i64,
    secret: &str,
    step: i64,
    recovery_hashes: &[String],
) -> Result<bool, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let enabled = sqlx::query(
        "UPDATE accounts_users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $1, updated_ms = $2 \
         WHERE id = $3 AND totp_pending = $4 AND totp_secret IS NULL",
    )
    .bind(step)
    .bind(now_ms())
    .bind(user_id)
    .bind(secret)
    .execute(&mut *transaction)
    .await?
    .rows_affected()
        == 1;
    if !enabled {
        return Ok(false);
    }
    sqlx::query("DELETE FROM accounts_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *transaction)
        .await?;
    for hash in recovery_hashes {
        sqlx::query("INSERT INTO accounts_recovery_codes (code_hash, user_id) VALUES ($1, $2)")
            .bind(hash)
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(true)
}

/// Turns TOTP off and forgets the recovery codes.
pub(crate) async fn disable_totp(pool: &AnyPool, user_id: i64) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "UPDATE accounts_users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL, updated_ms = $1 WHERE id = $2",
    )
    .bind(now_ms())
    .bind(user_id)
    .execute(&mut *transaction)
    .await?;
    sqlx::query("DELETE FROM accounts_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await
}

/// Records that a code of `step` was used, unless one of this or a later step already was:
/// a code works once.
pub(crate) async fn use_totp_step(
    pool: &AnyPool,
    user_id: i64,
    step: i64,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE accounts_users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(user_id)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Spends a recovery code; whether it was one of `user_id`'s, unused.
pub(crate) async fn use_recovery_code(
    pool: &AnyPool,
    user_id: i64,
    code_hash: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE accounts_recovery_codes SET used_ms = $1 WHERE code_hash = $2 AND user_id = $3 AND used_ms IS NULL",
    )
    .bind(now_ms())
    .bind(code_hash)
    .bind(user_id)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// How many unused recovery codes `user_id` has.
pub(crate) async fn recovery_codes_left(pool: &AnyPool, user_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM accounts_recovery_codes WHERE user_id = $1 AND used_ms IS NULL",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?
    .try_get("n")
}

/// A new invitation; its id.
pub(crate) async fn create_invite(
    pool: &AnyPool,
    code_hash: &str,
    created_by: Option<i64>,
    expires_ms: i64,
    uses: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO accounts_invites (code_hash, created_by, created_ms, expires_ms, uses_left) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(code_hash)
    .bind(created_by)
    .bind(now_ms())
    .bind(expires_ms)
    .bind(uses)
    .fetch_one(pool)
    .await?
    .try_get("id")
}

/// A password reset code for `user_id`, replacing any earlier one.
pub(crate) async fn create_password_reset(
    pool: &AnyPool,
    code_hash: &str,
    user_id: i64,
    created_by: Option<i64>,
    expires_ms: i64,
) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("DELETE FROM accounts_password_resets WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *transaction)
        .await?;
    sqlx::query(
        "INSERT INTO accounts_password_resets (code_hash, user_id, created_by, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(code_hash)
    .bind(user_id)
    .bind(created_by)
    .bind(now_ms())
    .bind(expires_ms)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await
}

/// Whose password an unexpired reset code resets.
pub(crate) async fn password_reset_user(
    pool: &AnyPool,
    code_hash: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT user_id FROM accounts_password_resets WHERE code_hash = $1 AND expires_ms > $2",
    )
    .bind(code_hash)
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    row.map(|row| row.try_get("user_id")).transpose()
}

/// Spends a password reset code: whose account it resets, if it was valid and unexpired.
/// Deleting it first makes it single-use even when two requests race.
pub(crate) async fn take_password_reset(
    pool: &AnyPool,
    code_hash: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "DELETE FROM accounts_password_resets WHERE code_hash = $1 AND expires_ms > $2 RETURNING user_id",
    )
    .bind(code_hash)
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    row.map(|row| row.try_get("user_id")).transpose()
}

/// Uses an invitation once; whether it was valid.
pub(crate) async fn consume_invite(pool: &AnyPool, code_hash: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE accounts_invites SET uses_left = uses_left - 1 WHERE code_hash = $1 AND uses_left > 0 AND expires_ms > $2",
    )
    .bind(code_hash)
    .bind(now_ms())
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Gives an invitation's use back (the registration it admitted failed after all).
pub(crate) async fn return_invite(pool: &AnyPool, code_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts_invites SET uses_left = uses_left + 1 WHERE code_hash = $1")
        .bind(code_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// The failures counted against `key` in the window that started after `since`, and when
/// that window started.
pub(crate) async fn failures(
    pool: &AnyPool,
    key: &str,
    since: i64,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT failures, window_start_ms FROM accounts_login_failures WHERE key = $1 AND window_start_ms > $2",
    )
    .bind(key)
    .bind(since)
    .fetch_optional(pool)
    .await?;
    row.map(|row| Ok((row.try_get("failures")?, row.try_get("window_start_ms")?)))
        .transpose()
}

/// Counts one failure against `key`: in its current window, or in a new one starting `now`
/// when the last started at or before `since`.
pub(crate) async fn record_failure(
    pool: &AnyPool,
    key: &str,
    now: i64,
    since: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO accounts_login_failures (key, failures, window_start_ms) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN accounts_login_failures.window_start_ms <= $3 THEN 1 ELSE accounts_login_failures.failures + 1 END, \
         window_start_ms = CASE WHEN accounts_login_failures.window_start_ms <= $3 THEN $2 ELSE accounts_login_failures.window_start_ms END",
    )
    .bind(key)
    .bind(now)
    .bind(since)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the failures of `key` (a successful sign-in).
pub(crate) async fn clear_failures(pool: &AnyPool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM accounts_login_failures WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes sessions ended or expired more than a week before `now`, and limit windows that
/// started at or before `since`.
pub(crate) async fn prune(pool: &AnyPool, now: i64, since: i64) -> Result<(), sqlx::Error> {
    let week_ago = now - 7 * 86_400_000;
    sqlx::query(
        "DELETE FROM accounts_refresh_tokens WHERE session_id IN \
         (SELECT id FROM accounts_sessions WHERE expires_ms < $1 OR revoked_ms < $1)",
    )
    .bind(week_ago)
    .execute(pool)
    .await?;
    sqlx::query("DELETE FROM accounts_sessions WHERE expires_ms < $1 OR revoked_ms < $1")
        .bind(week_ago)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM accounts_login_failures WHERE window_start_ms <= $1")
        .bind(since)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM accounts_invites WHERE expires_ms < $1 OR uses_left <= 0")
        .bind(now)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM accounts_password_resets WHERE expires_ms < $1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether `id` is the oldest account.
pub(crate) async fn is_first_user(pool: &AnyPool, id: i64) -> Result<bool, sqlx::Error> {
    let first: Option<i64> = sqlx::query("SELECT MIN(id) AS first FROM accounts_users")
        .fetch_one(pool)
        .await?
        .try_get("first")?;
    Ok(first == Some(id))
}
