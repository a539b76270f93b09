-- Second factors, recovery codes and WebAuthn ceremony state. Times are
-- Unix seconds (UTC).

-- A person's second factors: TOTP (the seed sealed with the data keys, and
-- the last accepted time step, for replay protection across replicas) or
-- a passkey (webauthn-rs's serialised credential and its credential id).
CREATE TABLE second_factors (
    id            INTEGER PRIMARY KEY,
    person_id     INTEGER NOT NULL REFERENCES persons (id),
    kind          TEXT NOT NULL CHECK (kind IN ('totp', 'passkey')),
    label         TEXT NOT NULL,
    secret_enc    BLOB,
    last_step     INTEGER,
    credential_id BLOB,
    credential    TEXT,
    user_handle   BLOB,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX second_factors_person ON second_factors (person_id);
CREATE UNIQUE INDEX second_factors_credential ON second_factors (credential_id) WHERE credential_id IS NOT NULL;

-- Single-use recovery codes: only the SHA-256 of each is kept.
CREATE TABLE recovery_codes (
    id         INTEGER PRIMARY KEY,
    person_id  INTEGER NOT NULL REFERENCES persons (id),
    code_hash  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE UNIQUE INDEX recovery_codes_person ON recovery_codes (person_id, code_hash);

-- A ceremony begun on one replica and finished on any: a TOTP enrolment's
-- pending (sealed) seed, a WebAuthn challenge state. Keyed by the SHA-256
-- of a random id or of the session; short-lived.
CREATE TABLE factor_ceremonies (
    key_hash   BLOB PRIMARY KEY,
    person_id  INTEGER REFERENCES persons (id),
    kind       TEXT NOT NULL,
    state      BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX factor_ceremonies_expiry ON factor_ceremonies (expires_at);
