-- Sign-in through upstream identity providers (OpenID Connect / OAuth 2.0).

-- Accounts at an upstream provider linked to a user: `provider` is a configured provider's id
-- or `org:<org id>` for an organization's own SSO; `subject` is the provider's stable user id.
CREATE TABLE identities (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    email        TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user ON identities(user_id);

-- Sign-ins in flight at a provider: single use, bound to the browser that started them.
CREATE TABLE upstream_logins (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    binding_hash  TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next          TEXT NOT NULL,
    link_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    login_hint    TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX upstream_logins_expiry ON upstream_logins(expires_at);

-- An upstream account whose verified email belongs to an existing user: linked only after
-- that user signs in (proves the account) and confirms.
CREATE TABLE pending_links (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    email      TEXT,
    next       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_links_expiry ON pending_links(expires_at);

-- An organization's own OpenID provider.
CREATE TABLE org_sso (
    org_id        TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    issuer        TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret TEXT,
    default_role  TEXT NOT NULL,
    require_sso   BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);

-- Email domains an organization claims; verified ones route "Continue with SSO" and JIT
-- membership. Several orgs may claim a domain, only one may verify it.
CREATE TABLE org_domains (
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    domain      TEXT NOT NULL,
    token       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    verified_at BIGINT,
    PRIMARY KEY (org_id, domain)
);
CREATE UNIQUE INDEX org_domains_verified ON org_domains(domain) WHERE verified_at IS NOT NULL;
