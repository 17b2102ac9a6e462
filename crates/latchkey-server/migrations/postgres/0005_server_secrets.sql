-- Server-wide secrets shared by every replica (the refresh-token derivation key).
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
