-- Audit search (`audit::search`): the selective filters, each with seq so
-- a page walks the index newest first. The person filter reads the JSON
-- subjects (SQLite has no index over JSON array elements); it is narrowed
-- by the others.
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_institution ON audit_events (institution, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_at ON audit_events (at_us);
