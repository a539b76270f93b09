-- Operators on the web: a person named operator by the CLI (`tilgang user
-- grant-right USER --right operator`) reads and acknowledges security
-- reports on /operator. Revoking deletes the row; the audit log keeps the
-- history (right.granted, right.revoked). Times are Unix seconds (UTC).
CREATE TABLE operator_grants (
    person_id  INTEGER PRIMARY KEY REFERENCES persons (id),
    reason     TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at INTEGER NOT NULL
);

-- Who acknowledged a security report, and when (NULL: new).
ALTER TABLE security_reports ADD COLUMN acknowledged_at INTEGER;
ALTER TABLE security_reports ADD COLUMN acknowledged_by TEXT;
