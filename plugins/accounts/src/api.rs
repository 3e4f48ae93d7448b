//! `/api/v1/auth/…`: registering, signing in (with TOTP), renewing and ending sessions,
//! changing the password, enrolling in TOTP, and invitations.

use plexichat::axum::extract::FromRequestParts;
use plexichat::extract::ClientAddress;
use plexichat::http::request::Parts;
use plexichat::http::{HeaderMap, header};
use plexichat::prelude::*;
use plexichat::response::Response;

use crate::caller::{Caller, Role, bearer};
use crate::limits::{self, Key, Window};
use crate::store::{self, Refreshed, UserRow};
use crate::users::{Me, me_of};
use crate::{Accounts, AccountsConfig, Registration, SessionEnded, UserRegistered, crypto};

/// The longest password accepted, in bytes: hashing is the cost, and it grows with length.
const MAX_PASSWORD_BYTES: usize = 1024;
/// Recovery codes handed out on enrolment.
const RECOVERY_CODES: usize = 10;

/// The rules of a username: 3 to 32 of `a-z 0-9 . _ -`, starting with a letter or digit;
/// case does not matter (it is kept lowercase).
pub(crate) fn normalize_username(field: &str, given: &str) -> Result<String, ApiError> {
    let name = given.trim().to_ascii_lowercase();
    let valid = (3..=32).contains(&name.len())
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte)
        })
        && name
            .bytes()
            .next()
            .is_some_and(|byte| byte.is_ascii_alphanumeric());
    if valid {
        Ok(name)
    } else {
        Err(ApiError::invalid_field(
            field,
            "a username is 3 to 32 letters, digits, `.`, `_` or `-`, starting with a letter or digit",
        )
        .with_code("invalid_username"))
    }
}

/// A display name: 1 to 64 characters once trimmed, no control characters.
pub(crate) fn check_display_name(field: &str, given: &str) -> Result<String, ApiError> {
    let name = given.trim();
    let count = name.chars().count();
    if (1..=64).contains(&count) && !name.chars().any(char::is_control) {
        Ok(name.to_string())
    } else {
        Err(ApiError::invalid_field(
            field,
            "a display name is 1 to 64 characters, without control characters",
        ))
    }
}

fn check_password(
    config: &AccountsConfig,
    field: &str,
    password: &str,
    username: &str,
) -> Result<(), ApiError> {
    let min = config.password_min_length as usize;
    let problem = if password.chars().count() < min {
        Some(format!("a password has at least {min} characters"))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some(format!("a password has at most {MAX_PASSWORD_BYTES} bytes"))
    } else if password.trim().eq_ignore_ascii_case(username) {
        Some("the password cannot be the username".to_string())
    } else {
        None
    };
    match problem {
        Some(message) => Err(ApiError::invalid_field(field, message).with_code("weak_password")),
        None => Ok(()),
    }
}

fn window(config: &AccountsConfig) -> Window {
    Window {
        ms: i64::try_from(config.window().as_millis()).unwrap_or(i64::MAX),
    }
}

fn internal(error: String) -> ApiError {
    ApiError::internal(error)
}

/// What a client keeps after signing in.
#[payload(response)]
#[derive(Debug)]
pub struct Tokens {
    /// Sent as `Authorization: Bearer <access_token>`; lasts `expires_in` seconds.
    pub access_token: String,
    /// Spent once at `POST /api/v1/auth/refresh` for a new pair; a second use ends the session.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lasts.
    pub expires_in: u32,
    /// The session these tokens belong to.
    pub session_id: i64,
    /// The person signed in.
    pub user: Me,
}

/// A new session for `user`, and its tokens.
async fn open_session(
    pool: &plexichat::sqlx::AnyPool,
    config: &AccountsConfig,
    user: &UserRow,
    headers: &HeaderMap,
    address: ClientAddress,
) -> Result<Tokens, ApiError> {
    let (access, refresh) = (crypto::token("pxa_"), crypto::token("pxr_"));
    let now = store::now_ms();
    let access_expires = now + millis(config.access_ttl());
    let expires = now + millis(config.session_ttl());
    let user_agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect();
    let address = address.0.map(|ip| ip.to_string()).unwrap_or_default();
    let session_id = store::create_session(
        pool,
        user.id,
        &crypto::digest(&access),
        access_expires,
        &crypto::digest(&refresh),
        expires,
        &user_agent,
        &address,
    )
    .await?;
    Ok(Tokens {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer".to_string(),
        expires_in: config.access_token_ttl_secs,
        session_id,
        user: me_of(pool, user).await?,
    })
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// `POST /api/v1/auth/register`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// 3 to 32 letters, digits, `.`, `_` or `-`; case does not matter.
    pub username: String,
    /// At least `password_min_length` characters (8 unless configured).
    pub password: String,
    /// What others see; the username when absent.
    pub display_name: Option<String>,
    /// An invitation code, when registration is by invitation.
    pub invite_code: Option<String>,
}

/// Creates an account and signs it in (201 with tokens). The first account of a server, and
/// any named in `admins`, is an admin. With `registration = "invite"` it takes an
/// `invite_code`; with `closed`, only the first account can register.
#[route(POST, "/auth/register")]
async fn register(
    plugin: PluginState<Accounts>,
    config: PluginConfig<Accounts>,
    context: PluginContext<Accounts>,
    address: ClientAddress,
    headers: HeaderMap,
    Json(body): Json<RegisterBody>,
) -> Result<(StatusCode, Json<Tokens>), ApiError> {
    let pool = plugin.pool()?;
    let window = window(&config);
    let per_address = Key::registrations(address.0, config.registrations_per_address);
    limits::check(pool, std::slice::from_ref(&per_address), window).await?;
    let username = normalize_username("username", &body.username)?;
    check_password(&config, "password", &body.password, &username)?;
    let display_name = match &body.display_name {
        Some(name) => check_display_name("display_name", name)?,
        None => username.clone(),
    };
    let first = store::user_count(pool).await? == 0;
    let mut invite = None;
    if !first {
        match config.registration {
            Registration::Open => {}
            Registration::Closed => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "registration is closed on this server; ask an admin for an account",
                )
                .with_code("registration_closed"));
            }
            Registration::Invite => {
                let Some(code) = body.invite_code.as_deref().map(str::trim) else {
                    return Err(ApiError::invalid_field(
                        "invite_code",
                        "registration on this server is by invitation: send `invite_code`",
                    )
                    .with_code("invite_required"));
                };
                let hash = crypto::digest(code);
                if !store::consume_invite(pool, &hash).await? {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "the invitation code is not valid (unknown, used up or expired)",
                    )
                    .with_code("invalid_invite")
                    .with_details(json!({ "field": "invite_code" })));
                }
                invite = Some(hash);
            }
        }
    }
    let role = if first || config.names_admin(&username) {
        Role::Admin
    } else {
        Role::Member
    };
    let hash = crypto::hash_password(body.password.clone(), config.cost())
        .await
        .map_err(internal)?;
    let inserted = store::insert_user(
        pool,
        &username,
        &display_name,
        &hash,
        role.as_str(),
        store::now_ms(),
    )
    .await;
    let mut user = match inserted {
        Ok(Some(user)) => user,
        Ok(None) | Err(_) => {
            if let Some(invite) = &invite {
                store::return_invite(pool, invite).await?;
            }
            inserted?;
            // A taken name counts like a registration, so that probing for names is as
            // limited per address as registering is.
            limits::count(pool, std::slice::from_ref(&per_address), window).await?;
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "this username is taken; choose another",
            )
            .with_code("username_taken")
            .with_details(json!({ "field": "username" })));
        }
    };
    limits::count(pool, std::slice::from_ref(&per_address), window).await?;
    // Two first registrations at once both saw an empty server: only the older stays admin.
    if first && !config.names_admin(&username) && !store::is_first_user(pool, user.id).await? {
        store::set_role(pool, user.id, Role::Member.as_str()).await?;
        user.role = Role::Member.as_str().to_string();
    }
    let tokens = open_session(pool, &config, &user, &headers, address).await?;
    context
        .publish(&UserRegistered {
            user_id: user.id,
            username: user.username.clone(),
            role: user.role.clone(),
        })
        .await;
    Ok((StatusCode::CREATED, Json(tokens)))
}

/// `POST /api/v1/auth/login`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The username (any case).
    pub username: String,
    /// The password.
    pub password: String,
    /// The authenticator app's 6-digit code, for an account with TOTP.
    pub totp_code: Option<String>,
    /// A one-time recovery code instead of `totp_code`.
    pub recovery_code: Option<String>,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "wrong username or password")
        .with_code("invalid_credentials")
}

/// Signs in with a password (and, for an account with TOTP, a code): 200 with tokens.
///
/// A wrong username and a wrong password get the same answer, in the same time. An account
/// with TOTP and no code is answered 401 `mfa_required`; a wrong code 401 `invalid_mfa_code`.
/// Failures are limited per account name and per client address (429 with `Retry-After`).
#[route(POST, "/auth/login")]
async fn login(
    plugin: PluginState<Accounts>,
    config: PluginConfig<Accounts>,
    address: ClientAddress,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> Result<Json<Tokens>, ApiError> {
    let pool = plugin.pool()?;
    let window = window(&config);
    // A name that can be no account is still counted, under what was typed.
    let name = body.username.trim().to_ascii_lowercase();
    let name: String = name.chars().take(64).collect();
    let keys = [
        Key::account(&name, config.login_failures_per_account),
        Key::address(address.0, config.login_failures_per_address),
    ];
    limits::check(pool, &keys, window).await?;
    let user = store::user_by_name(pool, &name).await?;
    let password = body
        .password
        .chars()
        .take(MAX_PASSWORD_BYTES)
        .collect::<String>();
    let verified = match &user {
        Some(user) => crypto::verify_password(password, user.password_hash.clone()).await,
        None => {
            let decoy = plugin.decoy(config.cost()).await;
            crypto::verify_password(password, decoy).await;
            false
        }
    };
    let Some(mut user) = user.filter(|_| verified) else {
        limits::count(pool, &keys, window).await?;
        return Err(invalid_credentials());
    };
    if let Some(secret) = user.totp_secret.clone() {
        let factor = second_factor(
            pool,
            user.id,
            &secret,
            body.totp_code.as_deref(),
            body.recovery_code.as_deref(),
        )
        .await?;
        match factor {
            Factor::Missing => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "this account has two-factor authentication: send `totp_code` (or a `recovery_code`)",
                )
                .with_code("mfa_required")
                .with_details(json!({ "field": "totp_code" })));
            }
            Factor::Wrong => {
                limits::count(pool, &keys, window).await?;
                return Err(invalid_mfa_code());
            }
            Factor::Passed => {}
        }
    }
    limits::clear(pool, &keys[0]).await?;
    if config.names_admin(&user.username) && user.role != Role::Admin.as_str() {
        store::set_role(pool, user.id, Role::Admin.as_str()).await?;
        user.role = Role::Admin.as_str().to_string();
    }
    Ok(Json(
        open_session(pool, &config, &user, &headers, address).await?,
    ))
}

fn invalid_mfa_code() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "the two-factor code is wrong, expired or already used",
    )
    .with_code("invalid_mfa_code")
    .with_details(json!({ "field": "totp_code" }))
}

/// The outcome of a second factor.
enum Factor {
    Missing,
    Wrong,
    Passed,
}

/// Checks a TOTP code (each usable once) or a recovery code (spent) of `user_id`.
async fn second_factor(
    pool: &plexichat::sqlx::AnyPool,
    user_id: i64,
    secret: &str,
    totp_code: Option<&str>,
    recovery_code: Option<&str>,
) -> Result<Factor, ApiError> {
    if let Some(code) = totp_code.filter(|code| !code.trim().is_empty()) {
        let now = u64::try_from(store::now_ms() / 1000).unwrap_or(0);
        return Ok(match crypto::totp_match(secret, code, now) {
            Some(step) if store::use_totp_step(pool, user_id, step as i64).await? => Factor::Passed,
            _ => Factor::Wrong,
        });
    }
    if let Some(code) = recovery_code.filter(|code| !code.trim().is_empty()) {
        let hash = crypto::digest(&crypto::normalize_recovery_code(code));
        return Ok(if store::use_recovery_code(pool, user_id, &hash).await? {
            Factor::Passed
        } else {
            Factor::Wrong
        });
    }
    Ok(Factor::Missing)
}

/// `POST /api/v1/auth/refresh`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    /// The refresh token last received.
    pub refresh_token: String,
}

/// Spends a refresh token for a new access token and refresh token (the session goes on).
/// A refresh token works once: presenting a spent one again ends its session (someone else
/// may hold a copy) and is answered 401 `refresh_token_reused`.
#[route(POST, "/auth/refresh")]
async fn refresh(
    plugin: PluginState<Accounts>,
    config: PluginConfig<Accounts>,
    context: PluginContext<Accounts>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<Tokens>, ApiError> {
    let pool = plugin.pool()?;
    let (access, refresh) = (crypto::token("pxa_"), crypto::token("pxr_"));
    let now = store::now_ms();
    let outcome = store::refresh(
        pool,
        &crypto::digest(body.refresh_token.trim()),
        &crypto::digest(&access),
        now + millis(config.access_ttl()),
        &crypto::digest(&refresh),
        now + millis(config.session_ttl()),
    )
    .await?;
    let (session_id, user_id) = match outcome {
        Refreshed::Rotated {
            session_id,
            user_id,
        } => (session_id, user_id),
        Refreshed::Invalid => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the refresh token is not valid (unknown, or its session ended); sign in again",
            )
            .with_code("invalid_refresh_token"));
        }
        Refreshed::Replayed {
            session_id,
            user_id,
        } => {
            plexichat::tracing::warn!(
                session_id,
                user_id,
                "a spent refresh token was presented again; the session is ended"
            );
            context
                .publish(&SessionEnded {
                    session_id,
                    user_id,
                    reason: "refresh_token_reused".to_string(),
                })
                .await;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this refresh token was already used, so its session has been ended; sign in again",
            )
            .with_code("refresh_token_reused"));
        }
    };
    let user = store::user_by_id(pool, user_id)
        .await?
        .ok_or_else(account_gone)?;
    Ok(Json(Tokens {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer".to_string(),
        expires_in: config.access_token_ttl_secs,
        session_id,
        user: me_of(pool, &user).await?,
    }))
}

async fn end_sessions(
    context: &PluginContext<Accounts>,
    user_id: i64,
    sessions: impl IntoIterator<Item = i64>,
    reason: &str,
) {
    for session_id in sessions {
        context
            .publish(&SessionEnded {
                session_id,
                user_id,
                reason: reason.to_string(),
            })
            .await;
    }
}

/// Signs out: ends the session of the access token sent (204).
#[route(POST, "/auth/logout")]
async fn logout(
    plugin: PluginState<Accounts>,
    context: PluginContext<Accounts>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let pool = plugin.pool()?;
    if store::revoke_session(pool, caller.user_id, caller.session_id, "signed_out").await? {
        end_sessions(&context, caller.user_id, [caller.session_id], "signed_out").await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// One of a person's sessions.
#[payload(response)]
#[derive(Debug)]
pub struct SessionInfo {
    /// Its id.
    pub id: i64,
    /// When it signed in (RFC 3339).
    pub created_at: String,
    /// When it was last used, to the minute.
    pub last_used_at: String,
    /// When it ends unless refreshed.
    pub expires_at: String,
    /// The browser or program that signed in, as it said.
    pub user_agent: String,
    /// The address it signed in from.
    pub address: String,
    /// Whether it is the session of this request.
    pub current: bool,
}

/// `GET /api/v1/auth/sessions`'s answer.
#[payload(response)]
#[derive(Debug)]
pub struct Sessions {
    /// Live sessions, most recently used first.
    pub sessions: Vec<SessionInfo>,
}

/// The caller's live sessions: where they are signed in.
#[route(GET, "/auth/sessions")]
async fn sessions(
    plugin: PluginState<Accounts>,
    caller: Caller,
) -> Result<Json<Sessions>, ApiError> {
    let pool = plugin.pool()?;
    let sessions = store::sessions_of(pool, caller.user_id, store::now_ms())
        .await?
        .into_iter()
        .map(|row| SessionInfo {
            id: row.id,
            created_at: store::rfc3339(row.created_ms),
            last_used_at: store::rfc3339(row.last_used_ms),
            expires_at: store::rfc3339(row.expires_ms),
            user_agent: row.user_agent,
            address: row.address,
            current: row.id == caller.session_id,
        })
        .collect();
    Ok(Json(Sessions { sessions }))
}

/// Path of `DELETE /api/v1/auth/sessions/{id}`.
#[payload(request)]
#[derive(Debug)]
pub struct SessionPath {
    /// The session's id.
    pub id: i64,
}

/// Ends one of the caller's sessions (204); another person's is 404, as an unknown one.
#[route(DELETE, "/auth/sessions/{id}")]
async fn end_session(
    plugin: PluginState<Accounts>,
    context: PluginContext<Accounts>,
    caller: Caller,
    Path(path): Path<SessionPath>,
) -> Result<StatusCode, ApiError> {
    let pool = plugin.pool()?;
    if !store::revoke_session(pool, caller.user_id, path.id, "revoked").await? {
        return Err(
            ApiError::not_found(format!("you have no live session {}", path.id))
                .with_code("session_not_found"),
        );
    }
    end_sessions(&context, caller.user_id, [path.id], "revoked").await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/auth/sessions`' answer.
#[payload(response)]
#[derive(Debug)]
pub struct Ended {
    /// How many sessions ended.
    pub ended: usize,
}

/// Signs out everywhere else: ends every session of the caller but this one.
#[route(DELETE, "/auth/sessions")]
async fn end_other_sessions(
    plugin: PluginState<Accounts>,
    context: PluginContext<Accounts>,
    caller: Caller,
) -> Result<Json<Ended>, ApiError> {
    let pool = plugin.pool()?;
    let ended =
        store::revoke_other_sessions(pool, caller.user_id, Some(caller.session_id), "revoked")
            .await?;
    let count = ended.len();
    end_sessions(&context, caller.user_id, ended, "revoked").await;
    Ok(Json(Ended { ended: count }))
}

/// `POST /api/v1/auth/password`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The password now.
    pub current_password: String,
    /// The new one.
    pub new_password: String,
}

/// Re-checks the caller's password (403 `invalid_password` when wrong, counted like a failed
/// sign-in); the account.
async fn confirm_password(
    plugin: &Accounts,
    config: &AccountsConfig,
    caller: &Caller,
    address: ClientAddress,
    field: &str,
    password: &str,
) -> Result<UserRow, ApiError> {
    let pool = plugin.pool()?;
    let window = window(config);
    let keys = [
        Key::account(&caller.username, config.login_failures_per_account),
        Key::address(address.0, config.login_failures_per_address),
    ];
    limits::check(pool, &keys, window).await?;
    let user = store::user_by_id(pool, caller.user_id)
        .await?
        .ok_or_else(account_gone)?;
    let given: String = password.chars().take(MAX_PASSWORD_BYTES).collect();
    if !crypto::verify_password(given, user.password_hash.clone()).await {
        limits::count(pool, &keys, window).await?;
        return Err(
            ApiError::new(StatusCode::FORBIDDEN, "the password is wrong")
                .with_code("invalid_password")
                .with_details(json!({ "field": field })),
        );
    }
    Ok(user)
}

/// An account that vanished under a live token.
pub(crate) fn account_gone() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "the account no longer exists")
}

/// Changes the caller's password and ends every other session (200 with how many).
#[route(POST, "/auth/password")]
async fn change_password(
    plugin: PluginState<Accounts>,
    config: PluginConfig<Accounts>,
    context: PluginContext<Accounts>,
    caller: Caller,
    address: ClientAddress,
    Json(body): Json<PasswordBody>,
) -> Result<Json<Ended>, ApiError> {
    let pool = plugin.pool()?;
    check_password(
        &config,
        "new_password",
        &body.new_password,
        &caller.username,
    )?;
    let user = confirm_password(
        &plugin,
        &config,
        &caller,
        address,
        "current_password",
        &body.current_password,
    )
    .await?;
    let hash = crypto::hash_password(body.new_password.clone(), config.cost())
        .await
        .map_err(internal)?;
    store::set_password(pool, user.id, &hash).await?;
    let ended =
        store::revoke_other_sessions(pool, user.id, Some(caller.session_id), "password_changed")
            .await?;
    let count = ended.len();
    end_sessions(&context, user.id, ended, "password_changed").await;
    Ok(Json(Ended { ended: count }))
}

/// `POST /api/v1/auth/2fa/totp/setup`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct TotpSetupBody {
    /// The caller's password: a stolen access token alone cannot enrol a second factor.
    pub password: String,
}

/// What an authenticator app needs.
#[payload(response)]
#[derive(Debug)]
pub struct TotpSetup {
    /// The secret, base32 (typed into an app by hand).
    pub secret: String,
    /// The `otpauth://` URI (shown as a QR code).
    pub otpauth_uri: String,
    /// The issuer the app shows.
    pub issuer: String,
    /// `SHA1`.
    pub algorithm: String,
    /// 6.
    pub digits: u32,
    /// 30 (seconds).
    pub period: u64,
    /// The QR code of `otpauth_uri`, for a page to draw: rows of modules, `1` dark and `0`
    /// light, without the quiet zone (leave 4 light modules around it).
    pub qr_modules: Vec<String>,
}

/// Starts TOTP enrolment: a new secret (RFC 6238, SHA-1, 6 digits, 30 s) for any
/// authenticator app. It takes effect once `POST /api/v1/auth/2fa/totp/confirm` gets a code
/// from it. 409 `totp_enabled` when TOTP is already on.
#[route(POST, "/auth/2fa/totp/setup")]
async fn totp_setup(
    plugin: PluginState<Accounts>,
    config: PluginConfig<Accounts>,
    caller: Caller,
    address: ClientAddress,
    Json(body): Json<TotpSetupBody>,
) -> Result<Json<TotpSetup>, ApiError> {
    let pool = plugin.pool()?;
    let user = confirm_password(
        &plugin,
        &config,
        &caller,
        address,
        "password",
        &body.password,
    )
    .await?;
    if user.totp_secret.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "two-factor authentication is already on; turn it off first to enrol a new app",
        )
        .with_code("totp_enabled"));
    }
    let secret = crypto::totp_secret();
    store::set_totp_pending(pool, user.id, &secret).await?;
    let issuer = config.totp_issuer.clone();
    let otpauth_uri = crypto::otpauth_uri(&issuer, &user.username, &secret);
    Ok(Json(TotpSetup {
        qr_modules: crypto::qr_modules(&otpauth_uri),
        otpauth_uri,
        secret,
        issuer,
        algorithm: "SHA1".to_string(),
        digits: crypto::TOTP_DIGITS,
        period: crypto::TOTP_PERIOD,
    }))
}

/// `POST /api/v1/auth/2fa/totp/confirm`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmBody {
    /// A code the app shows now.
    pub code: String,
}

/// The recovery codes of a new enrolment.
#[payload(response)]
#[derive(Debug)]
pub struct RecoveryCodes {
    /// Ten one-time codes, each usable once instead of a TOTP code; shown only now.
    pub recovery_codes: Vec<String>,
}

/// Turns TOTP on with a code from the app just set up; answers the one-time recovery codes.
#[route(POST, "/auth/2fa/totp/confirm")]
async fn totp_confirm(
    plugin: PluginState<Accounts>,
    caller: Caller,
    Json(body): Json<TotpConfirmBody>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let pool = plugin.pool()?;
    let user = store::user_by_id(pool, caller.user_id)
        .await?
        .ok_or_else(account_gone)?;
    if user.totp_secret.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "two-factor authentication is already on",
        )
        .with_code("totp_enabled"));
    }
    let Some(secret) = user.totp_pending else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no enrolment is under way: start with `POST /api/v1/auth/2fa/totp/setup`",
        )
        .with_code("totp_not_set_up"));
    };
    let now = u64::try_from(store::now_ms() / 1000).unwrap_or(0);
    let Some(step) = crypto::totp_match(&secret, &body.code, now) else {
        return Err(ApiError::invalid_field(
            "code",
            "the code does not match; check the app's clock and try the current code",
        )
        .with_code("invalid_mfa_code"));
    };
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| crypto::recovery_code())
        .collect();
    let hashes: Vec<String> = codes.iter().map(|code| crypto::digest(code)).collect();
    if !store::enable_totp(pool, user.id, &secret, step as i64, &hashes).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the enrolment changed meanwhile; start again",
        )
        .with_code("totp_not_set_up"));
    }
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// `DELETE /api/v1/auth/2fa/totp`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct TotpDisableBody {
    /// The caller's password.
    pub password: String,
    /// A current code from the app…
    pub code: Option<String>,
    /// …or a recovery code.
    pub recovery_code: Option<String>,
}

/// Turns TOTP off (204), given the password and a current code or a recovery code.
#[route(DELETE, "/auth/2fa/totp")]
async fn totp_disable(
    plugin: PluginState<Accounts>,
    config: PluginConfig<Accounts>,
    caller: Caller,
    address: ClientAddress,
    Json(body): Json<TotpDisableBody>,
) -> Result<StatusCode, ApiError> {
    let pool = plugin.pool()?;
    let user = confirm_password(
        &plugin,
        &config,
        &caller,
        address,
        "password",
        &body.password,
    )
    .await?;
    let Some(secret) = user.totp_secret.as_deref() else {
        // Nothing to turn off; a pending enrolment is dropped.
        store::disable_totp(pool, user.id).await?;
        return Ok(StatusCode::NO_CONTENT);
    };
    match second_factor(
        pool,
        user.id,
        secret,
        body.code.as_deref(),
        body.recovery_code.as_deref(),
    )
    .await?
    {
        Factor::Passed => {}
        Factor::Missing => {
            return Err(ApiError::invalid_field(
                "code",
                "send a current `code` or a `recovery_code`",
            )
            .with_code("mfa_required"));
        }
        Factor::Wrong => return Err(invalid_mfa_code()),
    }
    store::disable_totp(pool, user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Someone allowed to manage the server: an `admin` person signed in, or the admin token.
pub struct Operator {
    /// The person, when it is one (not the admin token).
    pub user_id: Option<i64>,
}

impl<S: Send + Sync> FromRequestParts<S> for Operator
where
    Caller: FromRequestParts<S, Rejection = Response>,
    Admin: FromRequestParts<S, Rejection = Response>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Operator, Response> {
        let person = bearer(&parts.headers).is_some_and(|token| token.starts_with("pxa_"));
        if !person {
            Admin::from_request_parts(parts, state).await?;
            return Ok(Operator { user_id: None });
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_admin() {
            Ok(Operator {
                user_id: Some(caller.user_id),
            })
        } else {
            Err(
                ApiError::new(StatusCode::FORBIDDEN, "only an admin may do this")
                    .with_code("forbidden")
                    .into_response(),
            )
        }
    }
}

impl plexichat::openapi::InputDoc for Operator {
    fn describe_input(describer: &mut plexichat::openapi::Describer) {
        describer.requires_admin();
    }
}

/// `POST /api/v1/auth/invites`' body.
#[payload(request)]
#[derive(Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    /// How many registrations it admits (1 unless given).
    #[schemars(range(min = 1, max = 10000))]
    pub uses: Option<u32>,
    /// Hours until it expires (a week unless given).
    #[schemars(range(min = 1, max = 8760))]
    pub expires_in_hours: Option<u32>,
}

/// A new invitation.
#[payload(response)]
#[derive(Debug)]
pub struct Invite {
    /// The code, shown only now: `invite_code` of `POST /api/v1/auth/register`.
    pub code: String,
    /// Registrations it admits.
    pub uses: u32,
    /// When it expires (RFC 3339).
    pub expires_at: String,
}

/// Makes an invitation code (an admin, or the admin token), for `registration = "invite"`.
#[route(POST, "/auth/invites")]
async fn create_invite(
    plugin: PluginState<Accounts>,
    operator: Operator,
    body: Option<Json<InviteBody>>,
) -> Result<(StatusCode, Json<Invite>), ApiError> {
    let pool = plugin.pool()?;
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let uses = body.uses.unwrap_or(1);
    if !(1..=10_000).contains(&uses) {
        return Err(ApiError::invalid_field("uses", "`uses` is 1 to 10000"));
    }
    let hours = body.expires_in_hours.unwrap_or(168);
    if !(1..=8760).contains(&hours) {
        return Err(ApiError::invalid_field(
            "expires_in_hours",
            "`expires_in_hours` is 1 to 8760",
        ));
    }
    let code = crypto::token("pxi_");
    let expires = store::now_ms() + i64::from(hours) * 3_600_000;
    store::create_invite(
        pool,
        &crypto::digest(&code),
        operator.user_id,
        expires,
        i64::from(uses),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Invite {
            code,
            uses,
            expires_at: store::rfc3339(expires),
        }),
    ))
}

/// `POST /api/v1/auth/password-resets`' body: whose password, by id or username.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetBody {
    /// The person's id.
    pub user_id: Option<i64>,
    /// Or their username.
    pub username: Option<String>,
    /// Hours until the code expires (24 unless given).
    #[schemars(range(min = 1, max = 168))]
    pub expires_in_hours: Option<u32>,
}

/// A new password reset code.
#[payload(response)]
#[derive(Debug)]
pub struct PasswordReset {
    /// The code, shown only now: hand it to the person (the web client takes it as
    /// `/plugins/chat_web/chat/#reset=<code>`), who sets a new password with
    /// `POST /api/v1/auth/password/reset`.
    pub code: String,
    /// Whose password it resets.
    pub user_id: i64,
    /// When it expires (RFC 3339).
    pub expires_at: String,
}

/// Makes a one-time code that sets someone's password without the old one (an admin, or
/// the admin token), for a person locked out; any earlier code for them stops working.
#[route(POST, "/auth/password-resets")]
async fn create_password_reset(
    plugin: PluginState<Accounts>,
    operator: Operator,
    Json(body): Json<PasswordResetBody>,
) -> Result<(StatusCode, Json<PasswordReset>), ApiError> {
    let pool = plugin.pool()?;
    let user = match (body.user_id, body.username.as_deref()) {
        (Some(id), None) => store::user_by_id(pool, id).await?,
        (None, Some(name)) => store::user_by_name(pool, &name.trim().to_lowercase()).await?,
        _ => {
            return Err(ApiError::invalid_field(
                "user_id",
                "give `user_id` or `username`, one of them",
            ));
        }
    };
    let user =
        user.ok_or_else(|| ApiError::not_found("no such person").with_code("user_not_found"))?;
    let hours = body.expires_in_hours.unwrap_or(24);
    if !(1..=168).contains(&hours) {
        return Err(ApiError::invalid_field(
            "expires_in_hours",
            "`expires_in_hours` is 1 to 168",
        ));
    }
    let code = crypto::token("pxr_");
    let expires = store::now_ms() + i64::from(hours) * 3_600_000;
    store::create_password_reset(
        pool,
        &crypto::digest(&code),
        user.id,
        operator.user_id,
        expires,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(PasswordReset {
            code,
            user_id: user.id,
            expires_at: store::rfc3339(expires),
        }),
    ))
}

/// `POST /api/v1/auth/password/reset`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordBody {
    /// The code an admin made (`POST /api/v1/auth/password-resets`).
    pub code: String,
    /// The new password.
    pub new_password: String,
}

/// Sets a new password with a reset code, and ends every session of the account (signing
/// in again is the next step). A code that is wrong, expired or already used is one answer,
/// 400 `invalid_reset_code`, that says nothing about any account; wrong codes count against
/// the client's address like failed sign-ins.
#[route(POST, "/auth/password/reset")]
async fn reset_password(
    plugin: PluginState<Accounts>,
    config: PluginConfig<Accounts>,
    context: PluginContext<Accounts>,
    address: ClientAddress,
    Json(body): Json<ResetPasswordBody>,
) -> Result<Json<Ended>, ApiError> {
    let pool = plugin.pool()?;
    let window = window(&config);
    let keys = [Key::address(address.0, config.login_failures_per_address)];
    limits::check(pool, &keys, window).await?;
    let digest = crypto::digest(body.code.trim());
    let invalid = || {
        ApiError::invalid_field(
            "code",
            "the reset code is wrong, expired or already used: ask an admin for a new one",
        )
        .with_code("invalid_reset_code")
    };
    let Some(user_id) = store::password_reset_user(pool, &digest).await? else {
        limits::count(pool, &keys, window).await?;
        return Err(invalid());
    };
    let user = store::user_by_id(pool, user_id)
        .await?
        .ok_or_else(invalid)?;
    // A password refused leaves the code for another try.
    check_password(&config, "new_password", &body.new_password, &user.username)?;
    let hash = crypto::hash_password(body.new_password.clone(), config.cost())
        .await
        .map_err(internal)?;
    // Spent here, once: of two requests racing with one code, one sets the password.
    if store::take_password_reset(pool, &digest).await? != Some(user.id) {
        return Err(invalid());
    }
    store::set_password(pool, user.id, &hash).await?;
    let ended = store::revoke_other_sessions(pool, user.id, None, "password_reset").await?;
    let count = ended.len();
    end_sessions(&context, user.id, ended, "password_reset").await;
    Ok(Json(Ended { ended: count }))
}
