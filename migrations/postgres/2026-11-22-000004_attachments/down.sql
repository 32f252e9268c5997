ALTER TABLE direct_messages DROP COLUMN attachment;
ALTER TABLE messages DROP COLUMN attachment;
