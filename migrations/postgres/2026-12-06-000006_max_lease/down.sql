ALTER TABLE pez.sequences DROP COLUMN max_lease;
