-- Channels: public (anyone signed in reads and may join), private (members only) and direct
-- (two people; `direct_key` is their ids, smaller first, so there is one per pair).
-- `last_seq` is the channel's event counter: every event (a message, an edit, a reaction, a
-- member joining) takes the next number in the transaction that writes it.
CREATE TABLE channels_channels (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    direct_key TEXT UNIQUE,
    created_by BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX channels_channels_by_name ON channels_channels (name) WHERE kind <> 'direct';
CREATE INDEX channels_channels_by_kind ON channels_channels (kind, id);

CREATE TABLE channels_members (
    channel_id BIGINT NOT NULL REFERENCES channels_channels (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL,
    role TEXT NOT NULL,
    joined_ms BIGINT NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channels_members_by_user ON channels_members (user_id, channel_id);

-- Messages; `seq` is the number of the event that created it. A deleted message keeps its
-- row (a tombstone) with its body emptied.
CREATE TABLE channels_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channels_channels (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    author_id BIGINT NOT NULL,
    body TEXT NOT NULL,
    thread_root_id BIGINT,
    reply_count BIGINT NOT NULL DEFAULT 0,
    -- Attached files' ids, comma-separated, in order.
    file_ids TEXT NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL,
    edited_ms BIGINT,
    deleted_ms BIGINT
);
CREATE UNIQUE INDEX channels_messages_by_seq ON channels_messages (channel_id, seq);
CREATE INDEX channels_messages_by_thread ON channels_messages (thread_root_id, seq);

-- The search index: each distinct word of a live message's body, lowercased, written in the
-- message's transaction. A plain table rather than FTS5 or tsvector, so that it is the same
-- on both engines and in backups, and a search is an indexed lookup per word. Terms compare
-- bytewise (PostgreSQL: COLLATE "C"), so the words a prefix starts are one range.
CREATE TABLE channels_search (
    term TEXT COLLATE "C" NOT NULL,
    message_id BIGINT NOT NULL REFERENCES channels_messages (id) ON DELETE CASCADE,
    channel_id BIGINT NOT NULL,
    PRIMARY KEY (term, message_id)
);
CREATE INDEX channels_search_by_message ON channels_search (message_id);

CREATE TABLE channels_reactions (
    message_id BIGINT NOT NULL REFERENCES channels_messages (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL,
    emoji TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

-- Every event of a channel, by its sequence number: what a reconnecting client is replayed.
CREATE TABLE channels_events (
    channel_id BIGINT NOT NULL REFERENCES channels_channels (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (channel_id, seq)
);

-- A create retried with the same `Idempotency-Key` finds what the first one made; the
-- fingerprint tells a retry from a different request reusing the key.
CREATE TABLE channels_idempotency (
    user_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX channels_idempotency_by_age ON channels_idempotency (created_ms);
