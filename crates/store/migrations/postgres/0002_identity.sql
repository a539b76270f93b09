-- Accounts, sessions and login throttling. Times are Unix seconds (UTC).

-- One account per roster person, made when first needed.
CREATE TABLE accounts (
    person_id             BIGINT PRIMARY KEY REFERENCES persons (id),
    password_hash         TEXT,
    password_set_at       BIGINT,
    failed_logins         INTEGER NOT NULL DEFAULT 0,
    lockouts              INTEGER NOT NULL DEFAULT 0,
    locked_until          BIGINT,
    activation_hash       BYTEA,
    activation_expires_at BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_activation ON accounts (activation_hash) WHERE activation_hash IS NOT NULL;

-- Server-side sessions; the cookie holds a random id, the table its hash.
CREATE TABLE sessions (
    id_hash      BYTEA PRIMARY KEY,
    person_id    BIGINT NOT NULL REFERENCES persons (id),
    csrf         TEXT NOT NULL,
    acr          TEXT NOT NULL,
    amr          TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    user_agent   TEXT
);
CREATE INDEX sessions_person ON sessions (person_id);

-- Login attempts per bucket (a client address, or everything) and minute,
-- in the database so every replica sees the same counts.
CREATE TABLE login_attempts (
    bucket TEXT NOT NULL,
    minute BIGINT NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (bucket, minute)
);
