-- Audit search (`audit::search`) and "my data": the action filter, with
-- seq so a page walks the index newest first. One index only: a GIN index
-- over the subjects and one on institution cut the append rate by more
-- than half (bench/RESULTS.md); person, institution, time and service
-- filters ride on the seq order (time grows with seq).
CREATE INDEX audit_events_action ON audit_events (action, seq);
