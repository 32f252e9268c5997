-- Resumable uploads (tus). The bytes live in the blob store under the upload's id; `digest`
-- is the SHA-256 state after `received` bytes, `sha256` the digest once complete.
CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    mime          TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    length        BIGINT NOT NULL,
    received      BIGINT NOT NULL,
    digest        BYTEA NOT NULL,
    sha256        TEXT,
    created_ms    BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL
);
CREATE INDEX uploads_expiry ON uploads (expires_ms);
