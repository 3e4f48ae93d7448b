//! `accounts`: the people of a PlexiChat server. Registration (open, by invitation, or
//! closed), sign-in with Argon2id passwords and TOTP, short-lived access tokens with rotating
//! refresh tokens (a replayed one revokes its session), sessions a person can list and end,
//! profiles, presence and the `member`/`admin` roles.
//!
//! Other plugins authenticate people through this crate: a route takes [`Caller`] (the
//! signed-in person, or 401), and a plugin that depends on `accounts` reaches the rest through
//! [`Accounts`]' methods. An `admin` user's access token is vouched for on the admin API, so
//! an admin needs no admin token. Everything lives in the database, so any number of servers on one
//! database agree on who is signed in.

pub mod api;
mod caller;
mod crypto;
mod limits;
mod self_tests;
mod store;
pub mod users;

use std::sync::OnceLock;
use std::time::Duration;

use plexichat::prelude::*;
use plexichat::sqlx::AnyPool;

pub use caller::{Caller, Role};
pub use users::{PublicUser, UserError};

/// People's accounts: registration, sign-in with Argon2id passwords and TOTP, rotating
/// sessions, profiles, presence and roles.
#[plugin(
    author = "PlexiChat",
    type = core,
    prefix = "/api/v1",
    // `admin:api`: an `admin` user's own session is vouched for on the admin API.
    permissions = ["database", "events:publish", "admin:api"],
    migrations = "migrations",
    config = AccountsConfig,
    lifecycle = true,
    tags = ["chat", "auth"],
)]
#[derive(Default)]
pub struct Accounts {
    /// The pool, set when the plugin starts: what [`Caller`] and the Rust API read.
    pool: OnceLock<AnyPool>,
    /// A hash of a password no one has, with the configured cost: a sign-in for an unknown
    /// name is checked against it, so it takes as long as a wrong password.
    decoy: tokio::sync::OnceCell<String>,
}

/// Who may register.
#[payload]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone.
    #[default]
    Open,
    /// Whoever has an invitation code (an admin makes them: `POST /api/v1/auth/invites`).
    Invite,
    /// No one, except the first account of an empty server.
    Closed,
}

/// `[plugins.accounts]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountsConfig {
    /// Who may register: `open`, `invite` or `closed`. The first account of an empty server
    /// can always be registered, and is an admin.
    pub registration: Registration,
    /// Usernames that are admins (besides the first account), given that role when they
    /// register or sign in.
    pub admins: Vec<String>,
    /// How long an access token lasts, in seconds; a client renews it with its refresh token.
    #[schemars(range(min = 30, max = 86400))]
    pub access_token_ttl_secs: u32,
    /// How long a session lasts without being refreshed, in days.
    #[schemars(range(min = 1, max = 365))]
    pub session_ttl_days: u32,
    /// The shortest password accepted, in characters.
    #[schemars(range(min = 8, max = 128))]
    pub password_min_length: u32,
    /// The memory one Argon2id password hash uses, in KiB (OWASP's minimum is 19456).
    #[schemars(range(min = 1024, max = 1048576))]
    pub password_memory_kib: u32,
    /// Argon2id's passes over that memory.
    #[schemars(range(min = 1, max = 16))]
    pub password_iterations: u32,
    /// Failed sign-ins to one account name in a window before it must wait for the window
    /// to end.
    #[schemars(range(min = 1, max = 1000))]
    pub login_failures_per_account: u32,
    /// Failed sign-ins from one client address in a window.
    #[schemars(range(min = 1, max = 100000))]
    pub login_failures_per_address: u32,
    /// Registrations from one client address in a window.
    #[schemars(range(min = 1, max = 100000))]
    pub registrations_per_address: u32,
    /// The window of those limits, in seconds.
    #[schemars(range(min = 10, max = 86400))]
    pub limit_window_secs: u32,
    /// The issuer authenticator apps show next to the account.
    pub totp_issuer: String,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            registration: Registration::Open,
            admins: Vec::new(),
            access_token_ttl_secs: 900,
            session_ttl_days: 30,
            password_min_length: 8,
            password_memory_kib: 19456,
            password_iterations: 2,
            login_failures_per_account: 10,
            login_failures_per_address: 100,
            registrations_per_address: 20,
            limit_window_secs: 900,
            totp_issuer: "PlexiChat".to_string(),
        }
    }
}

impl AccountsConfig {
    fn cost(&self) -> crypto::Cost {
        crypto::Cost {
            memory_kib: self.password_memory_kib,
            iterations: self.password_iterations,
        }
    }

    fn access_ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.access_token_ttl_secs))
    }

    fn session_ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_ttl_days) * 86_400)
    }

    fn window(&self) -> Duration {
        Duration::from_secs(u64::from(self.limit_window_secs))
    }

    /// Whether `username` is named an admin here.
    fn names_admin(&self, username: &str) -> bool {
        self.admins
            .iter()
            .any(|admin| admin.trim().eq_ignore_ascii_case(username))
    }
}

impl Lifecycle for Accounts {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        // The pool is the same for the runtime's whole life; a restart finds it set.
        let _ = self.pool.set(context.db().pool().clone());
        if context.runs_scheduled_jobs() {
            context.spawn("prune", prune);
        }
        // An admin's access token opens the admin API as the admin token does.
        if let Some(accounts) = context.instance() {
            context.vouch_for_admins(move |token| {
                let accounts = std::sync::Arc::clone(&accounts);
                async move {
                    if !token.starts_with("pxa_") {
                        return None;
                    }
                    match accounts.authenticate(&token).await {
                        Ok(caller) if caller.is_admin() => Some(caller.username),
                        _ => None,
                    }
                }
            });
        }
        Ok(())
    }
}

impl Accounts {
    /// The pool, once the plugin has started.
    fn pool(&self) -> Result<&AnyPool, ApiError> {
        self.pool
            .get()
            .ok_or_else(|| ApiError::unavailable("accounts has not started"))
    }

    /// The decoy hash for `cost`, computed once.
    async fn decoy(&self, cost: crypto::Cost) -> String {
        self.decoy
            .get_or_init(|| async move {
                crypto::hash_password(crypto::token("decoy_"), cost)
                    .await
                    .unwrap_or_default()
            })
            .await
            .clone()
    }
}

/// Removes what has expired, hourly: ended sessions a week after their end, and limit
/// windows long past.
async fn prune(task: TaskContext<Accounts>) -> Result<(), BoxError> {
    loop {
        let config = task.config::<Accounts>().unwrap_or_default();
        let now = store::now_ms();
        store::prune(
            task.db().pool(),
            now,
            now - i64::try_from(config.window().as_millis()).unwrap_or(i64::MAX),
        )
        .await?;
        if !task.sleep(Duration::from_secs(3600)).await {
            return Ok(());
        }
    }
}

/// Published when someone registers.
#[event(name = "accounts.user.registered")]
#[derive(Clone, Debug)]
pub struct UserRegistered {
    /// Their id.
    pub user_id: i64,
    /// Their username.
    pub username: String,
    /// `member` or `admin`.
    pub role: String,
}

/// Published when someone's profile (display name, about) changes.
#[event(name = "accounts.user.updated")]
#[derive(Clone, Debug)]
pub struct UserUpdated {
    /// The person, as others now see them.
    pub user: PublicUser,
}

/// Published when someone sets their presence.
#[event(name = "accounts.presence.updated")]
#[derive(Clone, Debug)]
pub struct PresenceUpdated {
    /// Whose.
    pub user_id: i64,
    /// `online`, `away`, `dnd` or `offline`.
    pub presence: String,
    /// Their status line.
    pub status_text: String,
}

/// Published when a session ends (sign-out, revoked, password changed, refresh token
/// replayed), so live connections made with it can be closed.
#[event(name = "accounts.session.ended")]
#[derive(Clone, Debug)]
pub struct SessionEnded {
    /// The session.
    pub session_id: i64,
    /// Whose it was.
    pub user_id: i64,
    /// Why it ended.
    pub reason: String,
}
