ALTER TABLE shares DROP COLUMN bytes_served;
