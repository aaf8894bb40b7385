ALTER TABLE moved_to DROP COLUMN finished_at;
