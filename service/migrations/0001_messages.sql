-- Messages, one row each, owned by the token subject that created them.
-- Portable SQL: the same statement runs on SQLite and PostgreSQL. Ids are
-- UUIDv7 in canonical text form, so ordering by id is ordering by creation.
CREATE TABLE messages (
    id TEXT PRIMARY KEY CHECK (length(id) = 36),
    owner TEXT NOT NULL CHECK (length(owner) BETWEEN 1 AND 255),
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every query filters by owner and pages by id.
CREATE INDEX messages_owner_id ON messages (owner, id);
