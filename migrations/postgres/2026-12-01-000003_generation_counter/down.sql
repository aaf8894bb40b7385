ALTER TABLE pez.sequences ALTER COLUMN generation SET DEFAULT 0;
DROP SEQUENCE pez.generations;
