-- Transfers that have been accepted and not yet finished, so that they resume after a
-- restart of the node. `acked` bytes are hashed; `digest` is the SHA-256 state at
-- that offset. `receivers` is a JSON array of {id, name, acked, active}.
CREATE TABLE transfers (
    id           TEXT PRIMARY KEY,
    sender_id    TEXT NOT NULL,
    sender_name  TEXT NOT NULL,
    room         TEXT,
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    mime         TEXT NOT NULL,
    sha256       TEXT,
    receivers    TEXT NOT NULL,
    acked        BIGINT NOT NULL,
    digest       BYTEA NOT NULL,
    created_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL
);
