-- Audit search (`audit::search`) and "my data": the action filter, with
-- seq so a page walks the index newest first. One index only: each one
-- slows the append path (bench/audit.sh). Person, institution, time and
-- service filters ride on the seq order (time grows with seq).
CREATE INDEX audit_events_action ON audit_events (action, seq);
