ALTER TABLE uploads DROP COLUMN writer_until_ms;
ALTER TABLE uploads DROP COLUMN writer;
