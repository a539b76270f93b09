-- The changes feed (`core::changes`): one row per created, updated, ended
-- or deleted roster record, written in the transaction of the change.
-- Records name persons by internal id and by the user id they had then
-- (kept after erasure: a provider's deletion key; names, CPR and contact
-- data never enter this table). `actors`/`grade` are the person's actor
-- bits and grade bucket at the institution when the change was written,
-- for the approvals' filters. Times are Unix seconds (UTC).
--
-- Ordering: `seq` comes from the one-row `changes_head`, updated in the
-- writer's transaction and locked until it commits, so writers commit in
-- seq order and a reader at cursor N never later sees a new row below N
-- (a sequence would hand out numbers that commit out of order).
CREATE TABLE changes (
    seq           BIGINT PRIMARY KEY,
    at            BIGINT NOT NULL,
    institution   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    op            TEXT NOT NULL,
    record        TEXT,
    person_id     BIGINT,
    user_id       TEXT,
    pupil_id      BIGINT,
    pupil_user_id TEXT,
    actors        SMALLINT NOT NULL DEFAULT 0,
    grade         SMALLINT NOT NULL DEFAULT 63
);
CREATE INDEX changes_institution ON changes (institution, seq);

CREATE TABLE changes_head (
    id  SMALLINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO changes_head (id, seq) VALUES (1, 0);
