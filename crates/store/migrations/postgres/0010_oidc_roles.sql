-- Several roles: the role context (INSTITUTION/ACTOR) a person chose for a
-- service, remembered in the database so every replica sees it. Removing
-- the service removes its choices (remove_service).
CREATE TABLE oidc_role_choices (
    person_id   BIGINT NOT NULL,
    client_id   TEXT NOT NULL,
    role        TEXT NOT NULL,
    chosen_at   BIGINT NOT NULL,
    PRIMARY KEY (person_id, client_id)
);
