ALTER TABLE sequences DROP COLUMN laps;
