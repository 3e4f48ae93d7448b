-- One-time codes that set a person's password without the old one, made by an admin for
-- someone locked out (handed over out of band). Stored as SHA-256 digests; one per person.
CREATE TABLE accounts_password_resets (
    code_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL UNIQUE REFERENCES accounts_users (id) ON DELETE CASCADE,
    created_by BIGINT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
