ALTER TABLE pez.sequences
    DROP CONSTRAINT relation_whole,
    DROP COLUMN relation_oid,
    DROP COLUMN relation_name,
    DROP COLUMN relation_schema;
