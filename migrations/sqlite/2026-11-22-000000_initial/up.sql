-- Identities. Times are milliseconds since the Unix epoch, UTC.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- Tokens are stored only as the hex SHA-256 of the token.
CREATE TABLE tokens (
    hash          TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_ms    BIGINT NOT NULL,
    last_used_ms  BIGINT NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE rooms (
    name        TEXT PRIMARY KEY,
    created_ms  BIGINT NOT NULL
);

-- Room messages; (room, seq) is the order every member sees.
CREATE TABLE messages (
    room       TEXT NOT NULL REFERENCES rooms (name),
    seq        BIGINT NOT NULL,
    user_id    TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    body       TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    PRIMARY KEY (room, seq)
);

CREATE TABLE direct_messages (
    id         TEXT PRIMARY KEY,
    from_id    TEXT NOT NULL REFERENCES users (id),
    from_name  TEXT NOT NULL,
    to_id      TEXT NOT NULL REFERENCES users (id),
    body       TEXT NOT NULL,
    at_ms      BIGINT NOT NULL
);
CREATE INDEX direct_messages_to ON direct_messages (to_id, at_ms);
CREATE INDEX direct_messages_from ON direct_messages (from_id, at_ms);
