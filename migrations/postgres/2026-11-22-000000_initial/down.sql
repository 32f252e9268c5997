DROP TABLE direct_messages;
DROP TABLE messages;
DROP TABLE rooms;
DROP TABLE tokens;
DROP TABLE users;
