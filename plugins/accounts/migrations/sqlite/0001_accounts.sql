-- People. `username` is the lowercase handle others find them by; `role` is member or admin.
CREATE TABLE accounts_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    about TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    presence TEXT NOT NULL DEFAULT 'offline',
    status_text TEXT NOT NULL DEFAULT '',
    totp_secret TEXT,
    totp_pending TEXT,
    totp_last_step INTEGER,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- Signed-in sessions. The access token and the refresh tokens are stored as SHA-256 digests;
-- a revoked session keeps its row (and why) until it expires.
CREATE TABLE accounts_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES accounts_users (id) ON DELETE CASCADE,
    access_hash TEXT NOT NULL UNIQUE,
    access_expires_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    last_used_ms INTEGER NOT NULL,
    user_agent TEXT NOT NULL,
    address TEXT NOT NULL,
    revoked_ms INTEGER,
    revoked_reason TEXT
);
CREATE INDEX accounts_sessions_by_user ON accounts_sessions (user_id);

-- Every refresh token a session was given: the current one has no `spent_ms`; presenting a
-- spent one again revokes its session (the family).
CREATE TABLE accounts_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES accounts_sessions (id) ON DELETE CASCADE,
    created_ms INTEGER NOT NULL,
    spent_ms INTEGER
);
CREATE INDEX accounts_refresh_tokens_by_session ON accounts_refresh_tokens (session_id);

-- One-time recovery codes of a person with TOTP, as SHA-256 digests.
CREATE TABLE accounts_recovery_codes (
    code_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES accounts_users (id) ON DELETE CASCADE,
    used_ms INTEGER
);
CREATE INDEX accounts_recovery_codes_by_user ON accounts_recovery_codes (user_id);

-- Invitations, for `registration = "invite"`: digests of the codes, with uses left.
CREATE TABLE accounts_invites (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash TEXT NOT NULL UNIQUE,
    created_by INTEGER,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    uses_left INTEGER NOT NULL
);

-- Failed sign-ins per account name and per client address, in a window: the database holds
-- them so every replica counts the same attempts.
CREATE TABLE accounts_login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_start_ms INTEGER NOT NULL
);
