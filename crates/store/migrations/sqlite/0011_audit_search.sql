-- Audit search (`audit::search`): the selective filters, each with seq so
-- a page walks the index newest first. Kept to two: every index slows the
-- append path. The person filter reads the JSON subjects (SQLite has no
-- index over JSON array elements), time and service filters ride on the
-- seq order (time grows with seq); both are narrowed by the others.
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_institution ON audit_events (institution, seq);
