-- The database the statements in this folder run against (the oid 16727
-- in them is pez.s's: replace it with what `SELECT 'pez.s'::regclass::oid`
-- prints in yours).
CREATE SCHEMA pez;
CREATE SEQUENCE pez.s INCREMENT BY 1 CACHE 1 CYCLE;
CREATE TABLE pez.sequences (name text PRIMARY KEY, generation bigint, laps bigint DEFAULT 0);
INSERT INTO pez.sequences VALUES ('s', 1, 0);
