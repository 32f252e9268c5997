-- SQLite 3.35+ drops a column that no index or constraint uses.
ALTER TABLE shares DROP COLUMN bytes_served;
