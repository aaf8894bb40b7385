-- Generations come from one counter that only goes up, shared by every
-- sequence: a restart or a creation takes its next value. A sequence that
-- is deleted and created again therefore never repeats a generation, and
-- every instance that saw the old one notices the change.
CREATE SEQUENCE pez.generations AS bigint MINVALUE 1 NO CYCLE CACHE 1;
SELECT setval('pez.generations', COALESCE((SELECT max(generation) FROM pez.sequences), 0) + 1, false);
-- Existing sequences get fresh generations: instances still running an
-- older PEZ see a change and drop the blocks they hold (a gap, never a
-- duplicate).
UPDATE pez.sequences SET generation = nextval('pez.generations');
ALTER TABLE pez.sequences ALTER COLUMN generation SET DEFAULT nextval('pez.generations');
