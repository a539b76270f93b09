-- Reports of security problems sent through the public reporting page.
CREATE TABLE security_reports (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at BIGINT NOT NULL,
    contact     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    details     TEXT NOT NULL
);
