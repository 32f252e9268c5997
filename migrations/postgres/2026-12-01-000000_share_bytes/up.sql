-- Bytes a share link has served (or is serving): a link allows max_downloads x size in all,
-- however the downloads are split into ranges.
ALTER TABLE shares ADD COLUMN bytes_served BIGINT NOT NULL DEFAULT 0;
