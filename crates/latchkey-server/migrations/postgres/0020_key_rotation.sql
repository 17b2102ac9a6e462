-- Signing key rotation: a key is published (JWKS) from created_at and signs from activates_at,
-- so every replica and every verifier knows it before the first token it signs.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT;
UPDATE signing_keys SET activates_at = created_at;
CREATE INDEX signing_keys_activates ON signing_keys(activates_at);
