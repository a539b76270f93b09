-- Retention per kind of audit event (`audit::retention`) and for the
-- changes feed.
--
-- Events sealed from now on link by version 2 ("tilgang-audit/2"): the
-- link covers seq, time, action and `content_hash`, the SHA-256 of the
-- personal content (actor, institution, subjects, details). Retention can
-- then clear the content (`redacted_at_us` set, the content emptied) and
-- the chain still verifies. Older events keep `content_hash` NULL and
-- their version 1 link; they are never redacted, only removed whole.
ALTER TABLE audit_events ADD COLUMN content_hash BYTEA;
ALTER TABLE audit_events ADD COLUMN redacted_at_us BIGINT;

-- How far redaction got per action: every event of it up to through_seq
-- is redacted (or version 1, or removed), so a run starts there.
CREATE TABLE audit_redactions (
    action      TEXT COLLATE "C" PRIMARY KEY,
    through_seq BIGINT NOT NULL
);

-- The changes feed's retention cut: rows up to pruned_through are gone,
-- and a cursor before it is refused (CHANGES_CURSOR_EXPIRED). Its own row,
-- not changes_head, which imports hold locked while they run.
CREATE TABLE changes_retention (
    id             SMALLINT PRIMARY KEY CHECK (id = 1),
    pruned_through BIGINT NOT NULL
);
INSERT INTO changes_retention (id, pruned_through) VALUES (1, 0);
