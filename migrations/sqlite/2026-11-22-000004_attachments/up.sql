-- A file posted with a message (`say` with `upload`): JSON {upload, name, size, sha256, url}.
ALTER TABLE messages ADD COLUMN attachment TEXT;
ALTER TABLE direct_messages ADD COLUMN attachment TEXT;
