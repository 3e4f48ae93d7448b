-- Uploaded files; the bytes are in the plugin's data folder, `blobs/<id>`.
CREATE TABLE files_files (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX files_files_by_owner ON files_files (owner_id, id);

-- The channels a file was attached to in: their readers may read it.
CREATE TABLE files_grants (
    file_id BIGINT NOT NULL REFERENCES files_files (id) ON DELETE CASCADE,
    channel_id BIGINT NOT NULL,
    PRIMARY KEY (file_id, channel_id)
);

-- Links that let anyone with the token download a file until they expire; the token is
-- stored as its SHA-256 digest.
CREATE TABLE files_shares (
    token_hash TEXT PRIMARY KEY,
    file_id BIGINT NOT NULL REFERENCES files_files (id) ON DELETE CASCADE,
    created_by BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
