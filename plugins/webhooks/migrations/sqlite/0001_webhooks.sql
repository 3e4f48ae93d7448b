-- Outgoing endpoints. `event_types` is a JSON array of event names; `[]` takes every event.
-- While a rotated secret's overlap lasts, `previous_secret` signs beside `secret`.
-- `failing_since`: when the first of the deliveries that have failed since the last success
-- failed; past `disable_after_minutes` the endpoint is disabled.
CREATE TABLE webhooks_endpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    event_types TEXT NOT NULL DEFAULT '[]',
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_until_ms INTEGER,
    owner_id INTEGER,
    disabled_ms INTEGER,
    disabled_reason TEXT,
    failing_since_ms INTEGER,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- One event as it is delivered: the body is the JSON every endpoint receives.
CREATE TABLE webhooks_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX webhooks_messages_by_time ON webhooks_messages (created_ms);

-- One message to one endpoint. `pending` until it succeeds or runs out of attempts.
-- A worker claims it by setting `claim` and `claimed_until` (its lease); the attempt's result
-- is recorded only while the claim is still its own.
CREATE TABLE webhooks_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id INTEGER NOT NULL REFERENCES webhooks_endpoints (id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES webhooks_messages (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER,
    claim TEXT,
    claimed_until_ms INTEGER,
    last_status_code INTEGER,
    last_error TEXT,
    last_response TEXT,
    last_latency_ms INTEGER,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE INDEX webhooks_deliveries_due ON webhooks_deliveries (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX webhooks_deliveries_by_endpoint ON webhooks_deliveries (endpoint_id, id);
CREATE INDEX webhooks_deliveries_by_message ON webhooks_deliveries (message_id);

-- Every attempt, with what the endpoint answered (the first bytes of it).
CREATE TABLE webhooks_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES webhooks_deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    response TEXT,
    outcome TEXT NOT NULL
);
CREATE INDEX webhooks_attempts_by_delivery ON webhooks_attempts (delivery_id, id);

-- Incoming hooks: a token (kept as its SHA-256) that posts to one channel as its owner.
CREATE TABLE webhooks_incoming (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_digest TEXT NOT NULL UNIQUE,
    channel_id INTEGER NOT NULL,
    owner_id INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    last_used_ms INTEGER
);
CREATE INDEX webhooks_incoming_by_owner ON webhooks_incoming (owner_id, id);
