-- People. `username` is the lowercase handle others find them by; `role` is member or admin.
CREATE TABLE accounts_users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    about TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    presence TEXT NOT NULL DEFAULT 'offline',
    status_text TEXT NOT NULL DEFAULT '',
    totp_secret TEXT,
    totp_pending TEXT,
    totp_last_step BIGINT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- Signed-in sessions. The access token and the refresh tokens are stored as SHA-256 digests;
-- a revoked session keeps its row (and why) until it expires.
CREATE TABLE accounts_sessions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES accounts_users (id) ON DELETE CASCADE,
    access_hash TEXT NOT NULL UNIQUE,
    access_expires_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_used_ms BIGINT NOT NULL,
    user_agent TEXT NOT NULL,
    address TEXT NOT NULL,
    revoked_ms BIGINT,
    revoked_reason TEXT
);
CREATE INDEX accounts_sessions_by_user ON accounts_sessions (user_id);

-- Every refresh token a session was given: the current one has no `spent_ms`; presenting a
-- spent one again revokes its session (the family).
CREATE TABLE accounts_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES accounts_sessions (id) ON DELETE CASCADE,
    created_ms BIGINT NOT NULL,
    spent_ms BIGINT
);
CREATE INDEX accounts_refresh_tokens_by_session ON accounts_refresh_tokens (session_id);

-- One-time recovery codes of a person with TOTP, as SHA-256 digests.
CREATE TABLE accounts_recovery_codes (
    code_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES accounts_users (id) ON DELETE CASCADE,
    used_ms BIGINT
);
CREATE INDEX accounts_recovery_codes_by_user ON accounts_recovery_codes (user_id);

-- Invitations, for `registration = "invite"`: digests of the codes, with uses left.
CREATE TABLE accounts_invites (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_hash TEXT NOT NULL UNIQUE,
    created_by BIGINT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    uses_left BIGINT NOT NULL
);

-- Failed sign-ins per account name and per client address, in a window: the database holds
-- them so every replica counts the same attempts.
CREATE TABLE accounts_login_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start_ms BIGINT NOT NULL
);
