ALTER TABLE sequences DROP COLUMN max_lease;
