-- Signed checkpoints of the audit chain, and the key that signs them (its
-- private half sealed under the master key).
CREATE TABLE audit_keys (
    id             TEXT PRIMARY KEY,
    public_key     BYTEA NOT NULL,
    sealed_private BYTEA NOT NULL,
    created_at_us  BIGINT NOT NULL
);

CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    hash      BYTEA NOT NULL,
    at_us     BIGINT NOT NULL,
    key_id    TEXT NOT NULL,
    signature BYTEA NOT NULL
);
