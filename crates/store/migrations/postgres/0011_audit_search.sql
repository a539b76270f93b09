-- Audit search (`audit::search`): the selective filters, each with seq so
-- a page walks the index newest first; a GIN index over the subjects for
-- the person filter (`subjects::jsonb @> '[id]'`).
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_institution ON audit_events (institution, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_at ON audit_events (at_us);
CREATE INDEX audit_events_subjects ON audit_events USING gin ((subjects::jsonb) jsonb_path_ops);
