-- The roster and the audit chain. Rows are ended (ended_on), never deleted,
-- by imports; ids are internal and stable.

CREATE TABLE institutions (
    id                INTEGER PRIMARY KEY,
    number            TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    municipality_code TEXT,
    source_system     TEXT,
    school_year       TEXT,
    digest            INTEGER NOT NULL,
    -- XXH3 of the last full import's document; cleared by any other write
    -- to the institution's roster, so an unchanged file is skipped safely.
    import_digest     INTEGER,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE persons (
    id                INTEGER PRIMARY KEY,
    user_id           TEXT NOT NULL UNIQUE,
    given_name        TEXT NOT NULL,
    family_name       TEXT NOT NULL,
    alias_given_name  TEXT,
    alias_family_name TEXT,
    cpr_enc           BLOB,
    cpr_hash          INTEGER,
    birth_date        TEXT,
    gender            TEXT,
    email             TEXT,
    phones            TEXT,
    address           TEXT,
    protected         INTEGER NOT NULL DEFAULT 0,
    source_system     TEXT,
    local_person_id   TEXT,
    photo_id          TEXT,
    inactive_since    TEXT,
    digest            INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX persons_cpr_hash ON persons (cpr_hash) WHERE cpr_hash IS NOT NULL;

CREATE TABLE roster_groups (
    id             INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institutions (id),
    ext_id         TEXT NOT NULL,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    level          TEXT,
    line           TEXT,
    from_date      TEXT,
    to_date        TEXT,
    ended_on       TEXT,
    digest         INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (institution_id, ext_id)
);

CREATE TABLE roles (
    id             INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institutions (id),
    person_id      INTEGER NOT NULL REFERENCES persons (id),
    role           TEXT NOT NULL,
    actor          TEXT NOT NULL,
    grade_level    TEXT,
    student_number TEXT,
    main_group     TEXT,
    initials       TEXT,
    occupation     TEXT,
    ended_on       TEXT,
    digest         INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (institution_id, person_id, role)
);
CREATE INDEX roles_person ON roles (person_id);

CREATE TABLE memberships (
    id         INTEGER PRIMARY KEY,
    group_id   INTEGER NOT NULL REFERENCES roster_groups (id),
    person_id  INTEGER NOT NULL REFERENCES persons (id),
    ended_on   TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (group_id, person_id)
);
CREATE INDEX memberships_person ON memberships (person_id);

CREATE TABLE contacts (
    id             INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institutions (id),
    pupil_id       INTEGER NOT NULL REFERENCES persons (id),
    contact_id     INTEGER NOT NULL REFERENCES persons (id),
    relation       TEXT NOT NULL,
    custody        INTEGER NOT NULL,
    access_level   INTEGER,
    ended_on       TEXT,
    digest         INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (institution_id, pupil_id, contact_id)
);
CREATE INDEX contacts_pupil ON contacts (pupil_id);
CREATE INDEX contacts_contact ON contacts (contact_id);

-- The hash chain: each event carries the SHA-256 of the one before.
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY,
    at_us       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    institution TEXT,
    subjects    TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
);
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
