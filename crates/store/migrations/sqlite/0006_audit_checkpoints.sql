-- Signed checkpoints of the audit chain, and the key that signs them (its
-- private half sealed under the master key).
CREATE TABLE audit_keys (
    id             TEXT PRIMARY KEY,
    public_key     BLOB NOT NULL,
    sealed_private BLOB NOT NULL,
    created_at_us  INTEGER NOT NULL
);

CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL,
    at_us     INTEGER NOT NULL,
    key_id    TEXT NOT NULL,
    signature BLOB NOT NULL
);
