-- The OpenID Connect provider: services (clients), signing keys, pending
-- authorization requests, codes and tokens. Codes and tokens are stored
-- only as SHA-256 hashes. Times are Unix seconds (UTC).

CREATE TABLE oidc_services (
    client_id       TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    -- SHA-256 of the client secret; NULL for public and private_key_jwt clients.
    secret_hash     BLOB,
    jwks_uri        TEXT,
    jwks            TEXT,
    -- JSON arrays of exact URIs.
    redirect_uris   TEXT NOT NULL,
    post_logout_uris TEXT NOT NULL,
    -- Space-separated grant types.
    grants          TEXT NOT NULL,
    package         TEXT NOT NULL,
    min_acr         TEXT NOT NULL,
    public_client   INTEGER NOT NULL,
    id_token_alg    TEXT NOT NULL,
    -- Salt of the pairwise subject (minimal package).
    pairwise_salt   BLOB NOT NULL,
    created_at      INTEGER NOT NULL
);

-- Private keys sealed with the master key's secrets key.
CREATE TABLE oidc_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    private_sealed BLOB NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    not_after      INTEGER,
    retire_at      INTEGER
);

-- Authorization requests waiting for a login, keyed by the hash of a
-- random id that travels through the login page.
CREATE TABLE oidc_pending (
    id_hash    BLOB PRIMARY KEY,
    client_id  TEXT NOT NULL,
    request    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE oidc_codes (
    code_hash  BLOB PRIMARY KEY,
    client_id  TEXT NOT NULL,
    grant_data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    -- The token family the code was redeemed into (revoked on reuse).
    family     TEXT
);

-- Access and refresh tokens. A family is one grant: the tokens of a code
-- exchange and all their refreshes.
CREATE TABLE oidc_tokens (
    token_hash BLOB PRIMARY KEY,
    kind       TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    family     TEXT NOT NULL,
    person_id  INTEGER,
    grant_data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX oidc_tokens_family ON oidc_tokens (family);
CREATE INDEX oidc_tokens_client ON oidc_tokens (client_id);
CREATE INDEX oidc_tokens_expires ON oidc_tokens (expires_at);

-- private_key_jwt: the ids of client assertions seen, so none is used
-- twice before it expires.
CREATE TABLE oidc_assertions (
    client_id  TEXT NOT NULL,
    jti_hash   BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti_hash)
);
