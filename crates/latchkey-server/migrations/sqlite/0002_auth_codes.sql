-- Authorization codes (RFC 6749 §4.1), stored by hash, single use, 60 s.
CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id         TEXT REFERENCES orgs(id) ON DELETE SET NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce          TEXT,
    device_name    TEXT,
    ip             TEXT,
    user_agent     TEXT,
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    session_id     TEXT
);
CREATE INDEX auth_codes_expiry ON auth_codes(expires_at);
