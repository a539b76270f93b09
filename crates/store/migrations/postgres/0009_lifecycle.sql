-- Lifecycle: when an account was last used and when it was closed for
-- disuse; when a person was archived and erased (the end itself is
-- persons.inactive_since), kept so a changes feed can tell providers; and
-- one lease row per scheduled job, so only one replica runs a job at a time.
-- Times are Unix seconds (UTC).

ALTER TABLE accounts ADD COLUMN last_login_at BIGINT;
ALTER TABLE accounts ADD COLUMN closed_at BIGINT;
ALTER TABLE persons ADD COLUMN archived_at BIGINT;
ALTER TABLE persons ADD COLUMN erased_at BIGINT;
CREATE INDEX persons_inactive ON persons (inactive_since) WHERE inactive_since IS NOT NULL;

CREATE TABLE job_leases (
    job         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    last_run_at BIGINT
);
