-- Rights an operator grants for a whole municipality (by its code, as the
-- roster's institutions carry it): `municipality_admin` makes the holder an
-- institution admin of every institution of the municipality. Counts only
-- while the grantee is active and holds an active employee role somewhere.
-- Revoking deletes the row; the audit log keeps the history (right.granted,
-- right.revoked). Times are Unix seconds (UTC).
CREATE TABLE municipality_grants (
    municipality_code TEXT NOT NULL,
    person_id         INTEGER NOT NULL REFERENCES persons (id),
    right_name        TEXT NOT NULL,
    -- The operator's audit actor (e.g. `cli`).
    granted_by        TEXT NOT NULL,
    reason            TEXT NOT NULL,
    granted_at        INTEGER NOT NULL,
    PRIMARY KEY (municipality_code, person_id, right_name)
);
CREATE INDEX municipality_grants_person ON municipality_grants (person_id);
CREATE INDEX institutions_municipality ON institutions (municipality_code);
