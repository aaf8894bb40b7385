DROP TABLE pez.instances;
ALTER TABLE pez.sequences DROP COLUMN relation_floor_generation;
ALTER TABLE pez.sequences DROP COLUMN relation_floor;
ALTER TABLE pez.sequences DROP COLUMN relation_mark;
ALTER TABLE pez.sequences DROP COLUMN laps;
