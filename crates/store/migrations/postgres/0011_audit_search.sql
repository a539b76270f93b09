-- Audit search (`audit::search`): the selective filters, each with seq so
-- a page walks the index newest first, and a GIN index over the subjects
-- for the person filter (`subjects::jsonb @> '[id]'`). Kept to these:
-- every index slows the append path. Time and service filters ride on the
-- seq order (time grows with seq).
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_institution ON audit_events (institution, seq);
CREATE INDEX audit_events_subjects ON audit_events USING gin ((subjects::jsonb) jsonb_path_ops);
