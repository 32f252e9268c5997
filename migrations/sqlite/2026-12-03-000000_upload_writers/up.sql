-- The request writing an upload's bytes, on whichever node, and until when its claim
-- holds unless renewed. A PATCH claims the upload at the offset it names, in one
-- conditional update, so two PATCHes of one upload on two nodes can never both write.
ALTER TABLE uploads ADD COLUMN writer TEXT;
ALTER TABLE uploads ADD COLUMN writer_until_ms BIGINT NOT NULL DEFAULT 0;
-- When a HEAD last told the offset (microseconds since the epoch): a PATCH that began
-- before that claims nothing, so one that its client dropped before it could claim (the
-- client then asked HEAD where to go on) never writes after the HEAD's answer.
ALTER TABLE uploads ADD COLUMN settled_us BIGINT NOT NULL DEFAULT 0;
