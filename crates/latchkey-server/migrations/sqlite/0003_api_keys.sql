-- API keys (lk_...), stored as SHA-256 of the whole key.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    key_hash     TEXT NOT NULL,
    name         TEXT NOT NULL,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    created_by   TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_org ON api_keys(org_id);
CREATE INDEX api_keys_creator ON api_keys(created_by);
