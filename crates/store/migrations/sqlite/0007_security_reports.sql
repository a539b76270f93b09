-- Reports of security problems sent through the public reporting page.
CREATE TABLE security_reports (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    contact     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    details     TEXT NOT NULL
);
