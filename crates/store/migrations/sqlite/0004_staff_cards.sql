-- Staff rights granted by an institution admin, and QR login cards for
-- pupils. Times are Unix seconds (UTC).

-- A right granted explicitly at an institution (rights from roster roles
-- are computed, not stored). Counts only while the grantee still holds an
-- active employee role there. Revoking deletes the row; the audit log keeps
-- the history (right.granted, right.revoked).
CREATE TABLE right_grants (
    institution_id INTEGER NOT NULL REFERENCES institutions (id),
    person_id      INTEGER NOT NULL REFERENCES persons (id),
    right_name     TEXT NOT NULL,
    -- NULL: an operator, through the CLI.
    granted_by     INTEGER REFERENCES persons (id),
    reason         TEXT NOT NULL,
    granted_at     INTEGER NOT NULL,
    PRIMARY KEY (institution_id, person_id, right_name)
);
CREATE INDEX right_grants_person ON right_grants (person_id);

-- One live login card per pupil; only the SHA-256 of its code is stored.
-- Re-issuing replaces the row, revoking deletes it.
CREATE TABLE login_cards (
    person_id INTEGER PRIMARY KEY REFERENCES persons (id),
    code_hash BLOB NOT NULL UNIQUE,
    issued_by TEXT NOT NULL,
    issued_at INTEGER NOT NULL
);
