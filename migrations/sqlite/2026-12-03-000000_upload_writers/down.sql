ALTER TABLE uploads DROP COLUMN settled_us;
ALTER TABLE uploads DROP COLUMN writer_until_ms;
ALTER TABLE uploads DROP COLUMN writer;
