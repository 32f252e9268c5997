-- Share links to complete uploads. The link's token is stored only as its SHA-256 (hex).
CREATE TABLE shares (
    hash           TEXT PRIMARY KEY,
    upload_id      TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    owner_id       TEXT NOT NULL REFERENCES users (id),
    created_ms     BIGINT NOT NULL,
    expires_ms     BIGINT NOT NULL,
    max_downloads  BIGINT,
    downloads      BIGINT NOT NULL,
    revoked_ms     BIGINT
);
CREATE INDEX shares_upload ON shares (upload_id);
