-- The provider portal: persons who log in for a provider (external
-- accounts). Such a person has a `persons` row the roster never delivers
-- (user id `udb-…`) and one row here naming their provider.

CREATE TABLE provider_users (
    person_id   BIGINT PRIMARY KEY REFERENCES persons (id),
    provider_id BIGINT NOT NULL REFERENCES sharing_providers (id),
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX provider_users_provider ON provider_users (provider_id);
