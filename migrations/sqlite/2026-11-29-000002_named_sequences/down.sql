ALTER TABLE sequences DROP COLUMN generation;
ALTER TABLE sequences DROP COLUMN mode;
ALTER TABLE sequences DROP COLUMN start_value;
