-- The nodes of a cluster, by stable id; `incarnation` grows by one on every start, so that
-- what a node held before a restart is told apart from what it holds now.
CREATE TABLE nodes (
    id          TEXT PRIMARY KEY,
    incarnation BIGINT NOT NULL,
    started_ms  BIGINT NOT NULL
);
-- The fence of every owned thing (a room, a direct conversation, a transfer): the epoch
-- grows by one each time a node takes it over, and every write that commits a `seq` or
-- moves an offset checks, in its own transaction, that its owner's epoch is still this one.
CREATE TABLE owners (
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    node        TEXT NOT NULL,
    incarnation BIGINT NOT NULL,
    claimed_ms  BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
