-- Uploaded files; the bytes are in the plugin's data folder, `blobs/<id>`.
CREATE TABLE files_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX files_files_by_owner ON files_files (owner_id, id);

-- The channels a file was attached to in: their readers may read it.
CREATE TABLE files_grants (
    file_id INTEGER NOT NULL REFERENCES files_files (id) ON DELETE CASCADE,
    channel_id INTEGER NOT NULL,
    PRIMARY KEY (file_id, channel_id)
);

-- Links that let anyone with the token download a file until they expire; the token is
-- stored as its SHA-256 digest.
CREATE TABLE files_shares (
    token_hash TEXT PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files_files (id) ON DELETE CASCADE,
    created_by INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
