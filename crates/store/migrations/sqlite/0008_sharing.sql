-- Sharing: providers, the link of a service to its provider, data access
-- requests, approvals (versioned instructions), blocks, a history per
-- service and institution, and licences. Institutions are referred to by
-- number, services by client id (as the audit log does). Times are Unix
-- seconds (UTC); request and approval contents are JSON snapshots.

CREATE TABLE sharing_providers (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    cvr              TEXT NOT NULL,
    address          TEXT NOT NULL,
    contact          TEXT NOT NULL,
    security_contact TEXT NOT NULL,
    -- Set only by an operator: a public authority may receive the
    -- authority package.
    authority        INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);

CREATE TABLE sharing_services (
    client_id        TEXT PRIMARY KEY,
    provider_id      INTEGER REFERENCES sharing_providers (id),
    licence_required INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sharing_requests (
    id          INTEGER PRIMARY KEY,
    client_id   TEXT NOT NULL,
    institution TEXT NOT NULL,
    spec        TEXT NOT NULL,
    -- pending, listed, approved, rejected, superseded
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    decided_at  INTEGER,
    decided_by  TEXT,
    reason      TEXT
);
CREATE INDEX sharing_requests_pair ON sharing_requests (client_id, institution);
CREATE INDEX sharing_requests_institution ON sharing_requests (institution, status);

CREATE TABLE sharing_approvals (
    id          INTEGER PRIMARY KEY,
    client_id   TEXT NOT NULL,
    institution TEXT NOT NULL,
    version     INTEGER NOT NULL,
    request_id  INTEGER NOT NULL REFERENCES sharing_requests (id),
    spec        TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at INTEGER NOT NULL,
    ended_at    INTEGER,
    ended_by    TEXT,
    end_reason  TEXT,
    UNIQUE (client_id, institution, version)
);

CREATE TABLE sharing_blocks (
    client_id   TEXT NOT NULL,
    institution TEXT NOT NULL,
    blocked_at  INTEGER NOT NULL,
    blocked_by  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (client_id, institution)
);

CREATE TABLE sharing_history (
    id          INTEGER PRIMARY KEY,
    client_id   TEXT NOT NULL,
    institution TEXT NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    details     TEXT NOT NULL
);
CREATE INDEX sharing_history_pair ON sharing_history (client_id, institution, id);

CREATE TABLE licences (
    id           INTEGER PRIMARY KEY,
    client_id    TEXT NOT NULL,
    institution  TEXT NOT NULL,
    -- institution, group or person; target is the group id or user id
    scope        TEXT NOT NULL,
    target       TEXT NOT NULL,
    valid_from   TEXT NOT NULL,
    valid_to     TEXT,
    granted_by   TEXT NOT NULL,
    consent      TEXT,
    created_at   INTEGER NOT NULL,
    withdrawn_at INTEGER,
    withdrawn_by TEXT
);
CREATE INDEX licences_service ON licences (client_id, institution);
